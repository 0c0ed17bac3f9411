import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, parseBandwidth, parseMemoryMiB, parseSize } from './index.js';

test('parseSize: table', () => {
  const ok: [string, number][] = [['256M', 256 * 1024 ** 2], ['1G', 1024 ** 3], ['1.5G', 1.5 * 1024 ** 3], ['999G', 999 * 1024 ** 3], ['512', 512], ['2GiB', 2 * 1024 ** 3], ['4k', 4096]];
  for (const [s, n] of ok) assert.equal(parseSize(s), n, s);
  for (const bad of ['', 'abc', '-1G', '0', '1X', '1 G G', '0M']) assert.throws(() => parseSize(bad), { code: 'INVALID_SIZE' }, bad);
});

test('parseMemoryMiB: a bare number is MiB, as QEMU reads -m; sizes must be whole MiB', () => {
  const ok: [string, number][] = [['256', 256], [' 512 ', 512], ['512.0', 512], ['256M', 256], ['1G', 1024], ['1.5G', 1536], ['2048MiB', 2048]];
  for (const [s, n] of ok) assert.equal(parseMemoryMiB(s), n, s);
  for (const bad of ['', '0', '1.5', '100K', '1.0001G', 'lots', '-256', '9'.repeat(30)]) {
    assert.throws(() => parseMemoryMiB(bad), (e: Error & { code?: string }) => e.code === 'INVALID_SIZE' && e.message.includes(`"${bad}"`), bad);
  }
});

test('formatBytes', () => {
  assert.equal(formatBytes(256 * 1024 ** 2), '256 MiB');
  assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5 GiB');
  assert.equal(formatBytes(12), '12 B');
});

test('parseBandwidth: bit rates, sizes per second, no cap', () => {
  const ok: [string, number | null][] = [
    ['1gbit', 125_000_000], ['100mbit', 12_500_000], ['2.5Gbit', 312_500_000], ['100M/s', 100 * 1024 ** 2], ['1G/s', 1024 ** 3],
    ['none', null], ['off', null], ['0', null],
  ];
  for (const [s, n] of ok) assert.equal(parseBandwidth(s), n, s);
  for (const bad of ['', 'fast', '1gb', '100M', '-1gbit', '0mbit', '/s', '1X/s']) assert.throws(() => parseBandwidth(bad), { code: 'INVALID_INPUT' }, bad);
});
