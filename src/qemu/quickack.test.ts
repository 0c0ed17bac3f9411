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

test('a quick-ACK route keeps the MTU of the route it copies; a route with a metric it cannot copy gets none', () => {
  // Without `mtu 1400` the copy would send 1500-byte segments on a path that needs smaller ones.
  assert.deepEqual(quickAckRouteArgs('10.98.0.7', { type: 'unicast', gateway: '10.99.0.254', dev: 'd0', prefsrc: '10.99.0.1', table: 'main', metrics: [{ mtu: 1400, advmss: 1360 }] }),
    ['route', 'replace', '10.98.0.7/32', 'via', '10.99.0.254', 'dev', 'd0', 'src', '10.99.0.1', 'mtu', '1400', 'advmss', '1360', 'table', 'main', 'proto', QUICKACK_PROTO, 'quickack', '1']);
  assert.equal(quickAckRouteArgs('10.98.0.7', { type: 'unicast', dev: 'd0', metrics: [{ mtu: 1400, congestion: 'cubic' }] }), undefined);
  assert.equal(quickAckRouteArgs('10.98.0.7', { type: 'unicast', dev: 'd0', metrics: [{ ecn: null }] }), undefined);
});
