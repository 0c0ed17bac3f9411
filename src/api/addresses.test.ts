// GET /v1/peer/addresses in-process: what a peer creating a VM reads of this host (src/agent/ip-allocator.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testApi } from './test-agent.js';
import { PeerClient, type AddressesReply } from '../migration/index.js';
import { askAddresses } from '../agent/ip-allocator.js';
import type { HostView } from '../agent/views.js';

test('GET /v1/peer/addresses answers the reservations through its schema; a peer reads it back; GET /v1/host shows them', async () => {
  const t = await testApi('addresses');
  try {
    const vm = {
      name: 's1', uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'q35',
      mac: '52:54:00:0f:1e:2d', ip: '10.77.1.1', prefixLength: 16, disks: [], ha: false,
    };
    t.agent.ipam.left(vm, 'h2');
    const r = await t.app.inject({ method: 'GET', url: '/v1/peer/addresses' });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as AddressesReply;
    assert.equal(body.protocol, 1);
    assert.equal(body.host, 'h1');
    assert.deepEqual(body.vms, []);
    assert.deepEqual(body.reservations.map(({ uuid, vm: name, ip, host }) => ({ uuid, name, ip, host })), [{ uuid: vm.uuid, name: 's1', ip: '10.77.1.1', host: 'h2' }]);
    // The operator sees it in GET /v1/host (`ferry host show`), through the Host schema.
    const h = await t.app.inject({ method: 'GET', url: '/v1/host', headers: { authorization: `Bearer ${t.agent.tokens.create('addresses-test', 'viewer').token}` } });
    assert.equal(h.statusCode, 200, h.body);
    const { addresses } = h.json() as HostView;
    assert.equal(typeof addresses.rangeStart, 'string');
    assert.equal(typeof addresses.prefixLength, 'number');
    assert.deepEqual(addresses.reservations.map(({ vm: name, uuid, ip, host }) => ({ name, uuid, ip, host })), [{ name: 's1', uuid: vm.uuid, ip: '10.77.1.1', host: 'h2' }]);
    assert.match(addresses.reservations[0]?.since ?? '', /^\d{4}-\d\d-\d\dT/);
    // Over HTTP as a peer asks (plain HTTP: the test agent has no certificate).
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const seen = await askAddresses(new PeerClient(url, 'h1', 3_000), 'h1');
    assert.deepEqual(seen, { host: 'h1', vms: [], reservations: [{ uuid: vm.uuid, ip: '10.77.1.1', host: 'h2' }] });
  } finally {
    await t.close();
  }
});
