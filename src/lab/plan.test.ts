import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agentConfig, checkAccel, checkHostCount, checkLabName, hostIndex, hostPlan, isLabNamespace, labPlan, nsName,
  planNamespaces, vmMemoryMiB,
} from './plan.js';

void test('the address plan: client .2, host hK at .(10+K), its VMs in 10.77.K.0/24', () => {
  const p = labPlan('ferry', 3, '/x/labs/ferry');
  assert.equal(p.client.address, '10.77.0.2');
  assert.equal(p.client.namespace, 'ferry-client');
  assert.equal(p.switchNs, 'ferry-sw');
  assert.deepEqual(p.hosts.map((h) => h.address), ['10.77.0.11', '10.77.0.12', '10.77.0.13']);
  assert.deepEqual(p.hosts.map((h) => h.url), ['https://10.77.0.11:7700', 'https://10.77.0.12:7700', 'https://10.77.0.13:7700']);
  assert.deepEqual(p.hosts[1]?.vmRange, { start: '10.77.2.1', end: '10.77.2.254' });
  assert.deepEqual(planNamespaces(p), ['ferry-sw', 'ferry-client', 'ferry-h1', 'ferry-h2', 'ferry-h3']);
});

void test('a host keeps its files in labDir/hK', () => {
  const h = hostPlan('t', '/l/t', 2);
  assert.deepEqual(
    [h.name, h.namespace, h.stateDir, h.configPath, h.socketPath, h.logPath, h.pidPath],
    ['h2', 't-h2', '/l/t/h2', '/l/t/h2/ferryd.json', '/l/t/h2/api.sock', '/l/t/h2/ferryd.log', '/l/t/h2/ferryd.pid'],
  );
});

void test('the agent config names its peers, pools and VM range', () => {
  const p = labPlan('t', 3, '/l/t');
  const h = p.hosts[1];
  assert.ok(h);
  const c = agentConfig(p, h, { accel: 'tcg', imageDir: '/img', memoryMiB: 512 });
  assert.equal(c.hostName, 'h2');
  assert.deepEqual(c.listen, { host: '10.77.0.12', port: 7700 });
  assert.equal(c.bridge, 'br0');
  assert.deepEqual(c.vmNetwork, { prefixLength: 16, rangeStart: '10.77.2.1', rangeEnd: '10.77.2.254' });
  assert.deepEqual(c.pools, [
    { name: 'default', path: '/l/t/h2/pools/default' },
    { name: 'shared', path: '/l/t/shared', sharedId: 'lab-t' },
  ]);
  assert.deepEqual(c.peers, [{ name: 'h1', url: 'https://10.77.0.11:7700' }, { name: 'h3', url: 'https://10.77.0.13:7700' }]);
  assert.deepEqual(c.tls, {
    caCert: '/l/t/h2/tls/ca-cert.pem', cert: '/l/t/h2/tls/server-cert.pem', key: '/l/t/h2/tls/server-key.pem', dir: '/l/t/h2/tls',
  }, 'the host certificate from the lab CA, in QEMU\'s tls-creds-x509 layout');
  assert.equal(c.accel, 'tcg');
  assert.equal(c.memoryMiB, 512);
});

void test('VM memory per host: 80% of the machine shared out, at most 8 GiB', () => {
  for (const [kib, hosts, mib] of [
    [4 * 1024 * 1024, 2, 1638], [4 * 1024 * 1024, 1, 3276], [64 * 1024 * 1024, 2, 8192], [1024, 4, 1],
  ] as const) {
    assert.equal(vmMemoryMiB(kib, hosts), mib, `${kib} KiB / ${hosts}`);
  }
});

void test('names: lab names, host names, and which namespaces a lab owns', () => {
  for (const ok of ['ferry', 'labt123', 'a', 'my-lab2']) assert.equal(checkLabName(ok), ok);
  for (const bad of ['', 'Ferry', '1lab', 'lab-', 'a/b', 'a b', 'x'.repeat(32)]) {
    assert.throws(() => checkLabName(bad), { code: 'INVALID_INPUT' }, bad);
  }
  assert.equal(hostIndex('h7'), 7);
  for (const bad of ['h0', 'h', 'h01', 'x1', 'h1a']) assert.equal(hostIndex(bad), undefined, bad);
  assert.equal(nsName('a', 'h1'), 'a-h1');
  assert.equal(isLabNamespace('a', 'a-h12'), true);
  assert.equal(isLabNamespace('a', 'a-sw'), true);
  assert.equal(isLabNamespace('a', 'a-client'), true);
  // Another lab's namespaces are never claimed, even when its name starts like this one.
  for (const other of ['a-h1-h1', 'a-h1-sw', 'a-client-client', 'ab-h1', 'a-', 'a-h0']) {
    assert.equal(isLabNamespace('a', other), false, other);
  }
});

void test('host counts and accelerators are checked', () => {
  assert.equal(checkHostCount(1), 1);
  assert.equal(checkHostCount(64), 64);
  for (const bad of [0, -1, 65, 1.5, NaN]) assert.throws(() => checkHostCount(bad), { code: 'INVALID_INPUT' });
  assert.equal(checkAccel('kvm'), 'kvm');
  assert.throws(() => checkAccel('hvf'), { code: 'INVALID_INPUT' });
});
