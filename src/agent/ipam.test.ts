import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateIp, parseAddresses, reconcile, takenAddresses, type PeerAddresses, type Reservation } from './ipam.js';

test('allocateIp picks the first free address and fails when the range is full', () => {
  assert.equal(allocateIp('10.77.1.1', '10.77.1.3', []), '10.77.1.1');
  assert.equal(allocateIp('10.77.1.1', '10.77.1.3', ['10.77.1.1', '10.77.1.2']), '10.77.1.3');
  assert.equal(allocateIp('10.77.1.255', '10.77.2.1', ['10.77.1.255']), '10.77.2.0');
  assert.throws(() => allocateIp('10.77.1.1', '10.77.1.2', ['10.77.1.1', '10.77.1.2']), { code: 'NO_FREE_IP' });
});

const res = (uuid: string, host: string, ip = '10.77.1.1'): Reservation => ({ uuid, vm: `vm-${uuid}`, ip, host, since: '2026-01-01T00:00:00.000Z' });
const peer = (host: string, vms: string[], reservations: [string, string][] | null): PeerAddresses => ({
  host, vms: vms.map((uuid) => ({ uuid, ip: '10.77.9.9' })), reservations: reservations?.map(([uuid, to]) => ({ uuid, ip: '10.77.9.9', host: to })) ?? null,
});

test('reconcile: what the peers\' answers and the inventory do to a reservation', () => {
  const cases: { name: string; answers: PeerAddresses[]; here?: string[]; want: ReturnType<typeof reconcile> }[] = [
    { name: 'its host was not asked (unreachable): kept', answers: [], want: [] },
    { name: 'another host answered, not its last known one: kept', answers: [peer('h3', [], [])], want: [] },
    { name: 'its host runs it: kept', answers: [peer('h2', ['a'], [])], want: [] },
    { name: 'its host has neither the VM nor a reservation (deleted there): ends', answers: [peer('h2', [], [])], want: [{ uuid: 'a', action: 'end', why: 'h2 no longer has it' }] },
    { name: 'its host is of an older release (keeps no reservations): kept', answers: [peer('h2', [], null)], want: [] },
    { name: 'its host sent it on to h3: follows', answers: [peer('h2', [], [['a', 'h3']])], want: [{ uuid: 'a', action: 'follow', host: 'h3' }] },
    { name: 'its host sent it back here, and it is gone here: ends', answers: [peer('h2', [], [['a', 'h1']])], want: [{ uuid: 'a', action: 'end', why: 'h2 sent it here and it is gone' }] },
    { name: 'it runs here again: ends whatever the peers say', answers: [], here: ['a'], want: [{ uuid: 'a', action: 'end', why: 'it runs on h1 again' }] },
  ];
  for (const c of cases) {
    const answers = new Map(c.answers.map((a) => [a.host, a]));
    const here = new Set(c.here ?? []);
    assert.deepEqual(reconcile('h1', [res('a', 'h2')], answers, (u) => here.has(u)), c.want, c.name);
  }
});

test('takenAddresses: local, reserved, every answer\'s VMs and reservations, and the extra ones', () => {
  const a: PeerAddresses = { host: 'h2', vms: [{ uuid: 'x', ip: '10.77.1.5' }], reservations: [{ uuid: 'y', ip: '10.77.2.7', host: 'h3' }] };
  const old: PeerAddresses = { host: 'h3', vms: [{ uuid: 'z', ip: '10.77.1.6' }], reservations: null };
  const t = takenAddresses(['10.77.1.2'], [res('r', 'h2', '10.77.1.3')], [a, old], ['10.77.1.4']);
  assert.deepEqual([...t].sort(), ['10.77.1.2', '10.77.1.3', '10.77.1.4', '10.77.1.5', '10.77.1.6', '10.77.2.7']);
});

test('parseAddresses reads the addresses reply and an older peer\'s overview; refuses a malformed answer', () => {
  const uuid = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  assert.deepEqual(parseAddresses({ protocol: 1, host: 'h2', vms: [{ uuid, name: 's1', ip: '10.77.1.1' }], reservations: [{ uuid, vm: 's1', ip: '10.77.1.1', host: 'h3', since: 'x' }] }, 'h2'),
    { host: 'h2', vms: [{ uuid, ip: '10.77.1.1' }], reservations: [{ uuid, ip: '10.77.1.1', host: 'h3' }] });
  // GET /v1/peer/overview: {host: HostView, vms: VmView[], …}, no reservations.
  assert.deepEqual(parseAddresses({ host: { name: 'h2' }, vms: [{ name: 's1', uuid, ip: '10.77.1.1', state: 'running' }], migrations: [] }, 'h2'),
    { host: 'h2', vms: [{ uuid, ip: '10.77.1.1' }], reservations: null });
  for (const bad of [null, 'x', {}, { vms: [{ uuid, ip: '10.77.1.300' }] }, { vms: [{ ip: '10.77.1.1' }] }, { vms: [], reservations: [{ uuid, ip: '10.77.1.1' }] }, { vms: [], reservations: 3 }]) {
    assert.equal(parseAddresses(bad, 'h2'), null, JSON.stringify(bad));
  }
});
