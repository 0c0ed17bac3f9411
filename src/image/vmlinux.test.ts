import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { bzImagePayload, hasPvhNote, pvhKernel } from './vmlinux.js';

/** A minimal ELF64 with one PT_NOTE segment holding one note. */
function elf(noteOwner: string, noteType: number): Buffer {
  const b = Buffer.alloc(160);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little endian
  b.writeBigUInt64LE(64n, 0x20); // e_phoff
  b.writeUInt16LE(56, 0x36); // e_phentsize
  b.writeUInt16LE(1, 0x38); // e_phnum
  b.writeUInt32LE(4, 64); // PT_NOTE
  b.writeBigUInt64LE(120n, 64 + 8); // p_offset
  b.writeBigUInt64LE(20n, 64 + 32); // p_filesz
  b.writeUInt32LE(noteOwner.length + 1, 120);
  b.writeUInt32LE(4, 124);
  b.writeUInt32LE(noteType, 128);
  b.write(noteOwner, 132, 'latin1');
  return b;
}

/** A bzImage-shaped buffer: setup header with payload offset and length (boot protocol 2.15). */
function bzImage(payload: Buffer): Buffer {
  const setupSects = 1;
  const start = (setupSects + 1) * 512;
  const b = Buffer.alloc(start + 16 + payload.length + 32);
  b[0x1f1] = setupSects;
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x20f, 0x206);
  b.writeUInt32LE(16, 0x248);
  b.writeUInt32LE(payload.length, 0x24c);
  payload.copy(b, start + 16);
  return b;
}

void test('hasPvhNote: finds the Xen PHYS32_ENTRY note, and nothing else', () => {
  assert.equal(hasPvhNote(elf('Xen', 18)), true);
  assert.equal(hasPvhNote(elf('Xen', 17)), false);
  assert.equal(hasPvhNote(elf('GNU', 18)), false);
  assert.equal(hasPvhNote(Buffer.from('not an elf at all, not at all, not at all, not at all, not at all.')), false);
});

void test('bzImagePayload: finds the payload; strips the size appended to xz streams', () => {
  const gz = gzipSync(Buffer.from('kernel'));
  const p = bzImagePayload(bzImage(gz));
  assert.equal(p?.format, 'gzip');
  assert.deepEqual(p?.data, gz);
  const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from('stream'), Buffer.from([1, 2, 3, 4])]);
  const q = bzImagePayload(bzImage(xz));
  assert.equal(q?.format, 'xz');
  assert.equal(q?.data.length, xz.length - 4);
  assert.equal(bzImagePayload(Buffer.alloc(4096)), undefined);
});

void test('pvhKernel: returns the vmlinux only when it can boot through PVH', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-vmlinux-'));
  try {
    const good = elf('Xen', 18);
    assert.deepEqual(await pvhKernel(bzImage(gzipSync(good)), dir), good);
    assert.equal(await pvhKernel(bzImage(gzipSync(elf('GNU', 3))), dir), undefined);
    assert.equal(await pvhKernel(Buffer.alloc(4096), dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
