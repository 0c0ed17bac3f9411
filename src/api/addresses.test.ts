// GET /v1/peer/addresses in-process: what a peer creating a VM reads of this host (src/agent/ip-allocator.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testApi } from './test-agent.js';
import { PeerClient, type AddressesReply } from '../migration/index.js';
import { askAddresses } from '../agent/ip-allocator.js';

test('GET /v1/peer/addresses answers the reservations through its schema; a peer reads it back', async () => {
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
    // Over HTTP as a peer asks (plain HTTP: the test agent has no certificate).
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const seen = await askAddresses(new PeerClient(url, 'h1', 3_000), 'h1');
    assert.deepEqual(seen, { host: 'h1', vms: [], reservations: [{ uuid: vm.uuid, ip: '10.77.1.1', host: 'h2' }] });
  } finally {
    await t.close();
  }
});
