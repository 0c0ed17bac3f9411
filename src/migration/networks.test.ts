import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseMigrationAddress, inCidr } from './networks.js';

test('inCidr: prefixes, edges, garbage', () => {
  assert.equal(inCidr('10.78.0.11', '10.78.0.0/16'), true);
  assert.equal(inCidr('10.79.0.11', '10.78.0.0/16'), false);
  assert.equal(inCidr('192.168.1.7', '192.168.1.7/32'), true);
  assert.equal(inCidr('1.2.3.4', '0.0.0.0/0'), true);
  assert.equal(inCidr('10.0.0.1', '10.0.0.0/33'), false);
  assert.equal(inCidr('fe80::1', '10.0.0.0/8'), false);
});

test('chooseMigrationAddress: best shared network by priority, the agent address without networks', () => {
  const local = ['10.77.0.12', '10.78.0.12'];
  const peer = ['10.77.0.11', '10.78.0.11'];
  assert.equal(chooseMigrationAddress([], local, peer, '10.77.0.12'), '10.77.0.12');
  const nets = [{ cidr: '10.77.0.0/16', priority: 2 }, { cidr: '10.78.0.0/16', priority: 1 }];
  assert.equal(chooseMigrationAddress(nets, local, peer, '10.77.0.12'), '10.78.0.12');
  assert.equal(chooseMigrationAddress(nets, local, ['10.77.0.11'], '10.77.0.12'), '10.77.0.12', 'the source is not on the better one');
  assert.throws(() => chooseMigrationAddress([{ cidr: '10.99.0.0/16', priority: 1 }], local, peer, '10.77.0.12'), { code: 'NO_MIGRATION_NETWORK' });
});
