import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildKey, digestSources, type BuildInputs } from './key.js';

const inputs: BuildInputs = {
  builderVersion: 1,
  kernelPackage: 'linux-image-6.1.0-56-amd64',
  kernelPackageVersion: '6.1.192-2',
  busyboxVersion: '1:1.35.0-4+deb12u1+b1',
  guestSources: [{ path: 'init', sha256: 'aa' }, { path: 'workload/main.c', sha256: 'bb' }],
};

void test('buildKey: 16 hex digits, stable for equal inputs whatever the source order', () => {
  const k = buildKey(inputs);
  assert.match(k, /^[0-9a-f]{16}$/);
  assert.equal(buildKey({ ...inputs, guestSources: [...inputs.guestSources].reverse() }), k);
});

void test('buildKey: every input changes the key', () => {
  const k = buildKey(inputs);
  const variants: BuildInputs[] = [
    { ...inputs, builderVersion: 2 },
    { ...inputs, kernelPackage: 'linux-image-6.1.0-57-amd64' },
    { ...inputs, kernelPackageVersion: '6.1.193-1' },
    { ...inputs, busyboxVersion: '1:1.36.0-1' },
    { ...inputs, guestSources: [{ path: 'init', sha256: 'ab' }, { path: 'workload/main.c', sha256: 'bb' }] },
    { ...inputs, guestSources: [...inputs.guestSources, { path: 'workload/x.c', sha256: 'cc' }] },
  ];
  const keys = new Set(variants.map(buildKey));
  assert.equal(keys.size, variants.length);
  assert.ok(!keys.has(k));
});

void test('digestSources: every file, relative paths, sorted, content-sensitive', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-key-'));
  try {
    mkdirSync(join(dir, 'workload'));
    writeFileSync(join(dir, 'workload', 'b.c'), 'int b;');
    writeFileSync(join(dir, 'init'), '#!/bin/sh');
    const d1 = await digestSources(dir);
    assert.deepEqual(d1.map((d) => d.path), ['init', 'workload/b.c']);
    writeFileSync(join(dir, 'workload', 'b.c'), 'int c;');
    const d2 = await digestSources(dir);
    assert.equal(d2[0]?.sha256, d1[0]?.sha256);
    assert.notEqual(d2[1]?.sha256, d1[1]?.sha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
