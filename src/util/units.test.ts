import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, parseSize } from './index.js';

test('parseSize: table', () => {
  const ok: [string, number][] = [['256M', 256 * 1024 ** 2], ['1G', 1024 ** 3], ['1.5G', 1.5 * 1024 ** 3], ['999G', 999 * 1024 ** 3], ['512', 512], ['2GiB', 2 * 1024 ** 3], ['4k', 4096]];
  for (const [s, n] of ok) assert.equal(parseSize(s), n, s);
  for (const bad of ['', 'abc', '-1G', '0', '1X', '1 G G', '0M']) assert.throws(() => parseSize(bad), { code: 'INVALID_SIZE' }, bad);
});

test('formatBytes', () => {
  assert.equal(formatBytes(256 * 1024 ** 2), '256 MiB');
  assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5 GiB');
  assert.equal(formatBytes(12), '12 B');
});
