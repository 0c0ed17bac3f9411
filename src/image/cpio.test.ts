import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newcArchive } from './cpio.js';

interface Parsed { name: string; mode: number; size: number; rdevMajor: number; rdevMinor: number; data: Buffer }

/** Reads a newc archive back, as the kernel's initramfs unpacker does. */
function parse(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    assert.equal(buf.toString('ascii', off, off + 6), '070701');
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const name = buf.toString('latin1', off + 110, off + 110 + namesize - 1);
    const dataOff = align(off + 110 + namesize);
    out.push({ name, mode: field(1), size, rdevMajor: field(9), rdevMinor: field(10), data: buf.subarray(dataOff, dataOff + size) });
    off = align(dataOff + size);
    if (name === 'TRAILER!!!') return out;
  }
}

void test('newcArchive: directories, files, symlinks and device nodes round-trip', () => {
  const data = Buffer.from('hello, initramfs\n');
  const arc = newcArchive([
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'init', data, mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  ]);
  assert.equal(arc.length % 4, 0);
  const p = parse(arc);
  assert.deepEqual(p.map((e) => e.name), ['bin', 'init', 'bin/sh', 'dev/console', 'TRAILER!!!']);
  assert.equal(p[0]?.mode, 0o040755);
  assert.equal(p[1]?.mode, 0o100755);
  assert.deepEqual(p[1]?.data, data);
  assert.equal(p[2]?.mode, 0o120777);
  assert.equal(p[2]?.data.toString(), 'busybox');
  assert.equal(p[3]?.mode, 0o020600);
  assert.deepEqual([p[3]?.rdevMajor, p[3]?.rdevMinor], [5, 1]);
});

void test('newcArchive: identical inputs give identical bytes (no times, no owners)', () => {
  const mk = (): Buffer => newcArchive([{ type: 'file', path: 'a', data: Buffer.from('x') }]);
  assert.deepEqual(mk(), mk());
});
