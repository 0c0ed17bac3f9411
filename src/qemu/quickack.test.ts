import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QUICKACK_PROTO, quickAckRouteArgs } from './quickack.js';

test('a quick-ACK route copies the route the peer is reached by now, into the same table', () => {
  assert.deepEqual(quickAckRouteArgs('10.77.0.12', { type: 'unicast', dst: '10.77.0.12', dev: 'br0', prefsrc: '10.77.0.11', table: 'main' }),
    ['route', 'replace', '10.77.0.12/32', 'dev', 'br0', 'src', '10.77.0.11', 'table', 'main', 'proto', QUICKACK_PROTO, 'quickack', '1']);
  assert.deepEqual(quickAckRouteArgs('192.0.2.9', { type: 'unicast', gateway: '10.0.0.1', dev: 'eth1', table: '100' }),
    ['route', 'replace', '192.0.2.9/32', 'via', '10.0.0.1', 'dev', 'eth1', 'table', '100', 'proto', QUICKACK_PROTO, 'quickack', '1']);
});

test('no quick-ACK route to a local address or over a route that is not plain unicast', () => {
  assert.equal(quickAckRouteArgs('127.0.0.1', { type: 'local', dev: 'lo', table: 'local' }), undefined);
  assert.equal(quickAckRouteArgs('10.0.0.5', { type: 'unicast', dev: 'lo' }), undefined);
  assert.equal(quickAckRouteArgs('10.0.0.5', { type: 'blackhole' }), undefined);
  assert.equal(quickAckRouteArgs('10.0.0.5', { type: 'unicast' }), undefined);
});
