import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FALLBACK_DEPENDS, GUEST_MODULES, loadOrder, moduleName } from './modules.js';

const deps = new Map(Object.entries(FALLBACK_DEPENDS).map(([k, v]) => [k, [...v]]));

void test('loadOrder: every module after its dependencies, each once', () => {
  const order = loadOrder(GUEST_MODULES, deps);
  assert.deepEqual([...order].sort(), Object.keys(FALLBACK_DEPENDS).sort());
  for (const [m, ds] of deps) for (const d of ds) assert.ok(order.indexOf(d) < order.indexOf(m), `${d} before ${m}`);
});

void test('loadOrder: the order known to work with busybox insmod is a valid one', () => {
  const order = loadOrder(GUEST_MODULES, deps);
  assert.deepEqual(order, [
    'virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio', 'virtio_pci',
    'failover', 'net_failover', 'virtio_net', 'virtio_blk', 'button', 'evdev',
  ]);
});

void test('loadOrder: a cycle is an IMAGE_BUILD_FAILED error', () => {
  assert.throws(() => loadOrder(['a'], new Map([['a', ['b']], ['b', ['a']]])), { code: 'IMAGE_BUILD_FAILED' });
});

void test('moduleName: strips folders and compression suffixes; dashes read as underscores', () => {
  assert.equal(moduleName('kernel/drivers/virtio/virtio_pci.ko'), 'virtio_pci');
  assert.equal(moduleName('net/core/failover.ko.xz'), 'failover');
  assert.equal(moduleName('drivers/net/net-failover.ko.zst'), 'net_failover');
});
