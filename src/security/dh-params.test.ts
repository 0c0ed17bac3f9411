import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DH_PARAMS_FILE, ensureDhParams, FFDHE3072_PEM } from './dh-params.js';

/** p and g of a PKCS#3 DHParameter (SEQUENCE { INTEGER p, INTEGER g }), as hex without leading zero bytes. */
function pkcs3(pem: string): { p: string; g: string } {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
  let i = 0;
  const len = (): number => {
    const b = der[i++] ?? 0;
    if (b < 0x80) return b;
    let n = 0;
    for (let k = 0; k < (b & 0x7f); k++) n = n * 256 + (der[i++] ?? 0);
    return n;
  };
  assert.equal(der[i++], 0x30);
  len();
  const int = (): string => {
    assert.equal(der[i++], 0x02);
    const n = len();
    const v = der.subarray(i, i + n);
    i += n;
    return v.toString('hex').replace(/^(00)+/, '');
  };
  return { p: int(), g: int() };
}

void test('the shipped group is RFC 7919 ffdhe3072: a 3072-bit prime of the ffdhe family, generator 2', () => {
  const { p, g } = pkcs3(FFDHE3072_PEM);
  assert.equal(p.length * 4, 3072);
  // Every RFC 7919 prime is 2^n - 2^(n-64) + {[2^(n-130) e] + X} * 2^64 - 1: 64 one bits, then e's digits, 64 one bits at the end.
  assert.ok(p.startsWith('ffffffffffffffffadf85458a2bb4a9aafdc5620273d3cf1'), p.slice(0, 48));
  assert.ok(p.endsWith('ffffffffffffffff'));
  assert.equal(g, '02');
});

void test('ensureDhParams writes the file once, keeps one that is there, and reports a folder it cannot write', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-dh-'));
  try {
    assert.deepEqual(ensureDhParams(dir), { kind: 'written' });
    const path = join(dir, DH_PARAMS_FILE);
    assert.equal(readFileSync(path, 'utf8'), FFDHE3072_PEM);
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.deepEqual(ensureDhParams(dir), { kind: 'present' });
    writeFileSync(path, 'the operator\'s own\n');
    assert.deepEqual(ensureDhParams(dir), { kind: 'present' });
    assert.equal(readFileSync(path, 'utf8'), 'the operator\'s own\n');
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    const r = ensureDhParams(notADir);
    assert.equal(r.kind, 'failed');
    assert.equal(r.kind === 'failed' && (r.error as NodeJS.ErrnoException).code, 'ENOTDIR');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
