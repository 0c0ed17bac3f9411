import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateIp } from './ipam.js';

test('allocateIp picks the first free address and fails when the range is full', () => {
  assert.equal(allocateIp('10.77.1.1', '10.77.1.3', []), '10.77.1.1');
  assert.equal(allocateIp('10.77.1.1', '10.77.1.3', ['10.77.1.1', '10.77.1.2']), '10.77.1.3');
  assert.equal(allocateIp('10.77.1.255', '10.77.2.1', ['10.77.1.255']), '10.77.2.0');
  assert.throws(() => allocateIp('10.77.1.1', '10.77.1.2', ['10.77.1.1', '10.77.1.2']), { code: 'NO_FREE_IP' });
});
