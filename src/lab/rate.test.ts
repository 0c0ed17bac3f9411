import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRate, tbfArgs, tbfBurstBytes } from './rate.js';

void test('parseRate reads tc rates and "none"', () => {
  const table: [string, number | null][] = [
    ['1gbit', 1e9], ['100mbit', 1e8], ['1.5Gbit', 1.5e9], ['64kbit', 64_000], ['10mbps', 8e7], [' 2gbit ', 2e9],
    ['none', null], ['off', null], ['0', null],
  ];
  for (const [input, bits] of table) assert.equal(parseRate(input)?.bitsPerSecond ?? null, bits, input);
  for (const bad of ['', 'fast', '1', '1gb', '-1gbit', '1kbit', 'gbit']) {
    assert.throws(() => parseRate(bad), { code: 'INVALID_INPUT' }, bad);
  }
});

void test('the token bucket holds 10 ms of data, at least 32 KiB', () => {
  assert.equal(tbfBurstBytes(1e9), 1_250_000);
  assert.equal(tbfBurstBytes(1e6), 32 * 1024);
  const r = parseRate('100mbit');
  assert.ok(r);
  assert.deepEqual(tbfArgs(r), ['tbf', 'rate', '100000000bit', 'burst', '125000', 'latency', '50ms']);
});
