import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FerryError } from '../errors/index.js';
import { openDb, type Db } from '../util/index.js';
import type { VmSpec } from '../vm/index.js';
import { askAddresses, ASK_ALL_DEADLINE_MS, IpAllocator, type IpAllocatorDeps, type PeerAgent } from './ip-allocator.js';
import type { PeerAddresses } from './ipam.js';

const U = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const spec = (n: number, ip: string): VmSpec => ({
  name: `vm${n}`, uuid: U(n), memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'q35', mac: '52:54:00:00:00:01', ip, prefixLength: 16, disks: [], ha: false,
});

/** A host h1 of range 10.77.1.1–4 whose peers answer what `world` says (absent: unreachable). */
function allocator(db: Db, world: { local?: VmSpec[]; arriving?: string[]; peers?: Record<string, PeerAddresses>; cluster?: IpAllocatorDeps['cluster']; asked?: string[] } = {}): IpAllocator {
  return new IpAllocator({
    host: 'h1', range: { rangeStart: '10.77.1.1', rangeEnd: '10.77.1.4' }, db, log: pino({ level: 'silent' }),
    peers: [{ name: 'h2', url: 'https://h2' }, { name: 'h3', url: 'https://h3' }],
    local: () => (world.local ?? []).map((s) => ({ uuid: s.uuid, name: s.name, ip: s.ip, arriving: world.arriving?.includes(s.uuid) ?? false })),
    cluster: world.cluster ?? (async () => null),
    ask: async (p: PeerAgent) => {
      world.asked?.push(p.name);
      const a = world.peers?.[p.name];
      if (!a) throw new FerryError('HOST_UNREACHABLE', `The agent of host ${p.name} did not answer.`);
      return a;
    },
  });
}

const answer = (host: string, vms: VmSpec[], reservations: PeerAddresses['reservations'] = []): PeerAddresses => ({ host, vms: vms.map((s) => ({ uuid: s.uuid, ip: s.ip })), reservations });

async function next(a: IpAllocator): Promise<string> {
  const l = await a.allocate();
  l.release();
  return l.ip;
}

test('a VM that moved to a peer keeps its address: the peer says so, or the reservation does when the peer is away', async () => {
  const db = openDb(':memory:');
  const s1 = spec(1, '10.77.1.1');
  // No reservation (a VM moved before this release): the peer's answer alone keeps the address.
  assert.equal(await next(allocator(db, { peers: { h2: answer('h2', [s1]) } })), '10.77.1.2');
  allocator(db).left(s1, 'h2');
  assert.equal(await next(allocator(db)), '10.77.1.2', 'every peer unreachable: the reservation keeps 10.77.1.1');
  assert.equal(await next(allocator(db, { peers: { h2: answer('h2', [s1]) } })), '10.77.1.2');
  assert.equal(allocator(db).reservations.list().length, 1, 'its host runs it: the reservation stays');
  assert.equal(await next(allocator(db, { peers: { h2: answer('h2', []) } })), '10.77.1.1', 'deleted on h2: the address is free again');
  assert.deepEqual(allocator(db).reservations.list(), []);
});

test('a reservation follows the VM on to a third host, and ends when the VM is back here (not while it arrives)', async () => {
  const db = openDb(':memory:');
  const s1 = spec(1, '10.77.1.1');
  allocator(db).left(s1, 'h2');
  await next(allocator(db, { peers: { h2: answer('h2', [], [{ uuid: s1.uuid, ip: s1.ip, host: 'h3' }]) } }));
  assert.equal(allocator(db).reservations.list()[0]?.host, 'h3', 'h2 sent it to h3: the reservation follows');
  assert.equal(await next(allocator(db, { peers: { h2: answer('h2', []) } })), '10.77.1.2', 'h2\'s word no longer ends it');
  assert.equal(await next(allocator(db, { local: [s1], arriving: [s1.uuid] })), '10.77.1.2');
  assert.equal(allocator(db).reservations.list().length, 1, 'an incoming move may still fail: the reservation stays');
  assert.equal(await next(allocator(db, { local: [s1] })), '10.77.1.2', 'it runs here: its own address is taken by it');
  assert.deepEqual(allocator(db).reservations.list(), [], 'back here: the reservation ended');
});

test('reservations survive an agent restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ipam-'));
  try {
    const db = openDb(join(dir, 'ferry.db'));
    allocator(db).left(spec(1, '10.77.1.1'), 'h2');
    db.close();
    const again = openDb(join(dir, 'ferry.db'));
    assert.equal(await next(allocator(again)), '10.77.1.2');
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two creations at once get two addresses; a released one is free again', async () => {
  const a = allocator(openDb(':memory:'));
  const [x, y] = await Promise.all([a.allocate(), a.allocate()]);
  assert.notEqual(x.ip, y.ip);
  x.release();
  assert.equal((await a.allocate()).ip, x.ip);
});

test('cluster: members beyond the config are asked once each, HA VMs\' addresses are taken; etcd away is not an error', async () => {
  const asked: string[] = [];
  const peers = { h2: answer('h2', [spec(1, '10.77.1.1')]), h4: answer('h4', [spec(2, '10.77.1.2')]) };
  const cluster = async () => ({ members: [{ name: 'h1', url: 'x' }, { name: 'h2', url: 'x' }, { name: 'h4', url: 'x' }], haIps: ['10.77.1.3'] });
  assert.equal(await next(allocator(openDb(':memory:'), { peers, cluster, asked })), '10.77.1.4');
  assert.deepEqual(asked.sort(), ['h2', 'h3', 'h4']);
  const away = async (): Promise<never> => { throw new FerryError('CLUSTER_UNAVAILABLE', 'etcd is away.'); };
  assert.equal(await next(allocator(openDb(':memory:'), { peers, cluster: away })), '10.77.1.2', 'config peers still asked');
  await assert.rejects(allocator(openDb(':memory:'), { peers: { h2: answer('h2', [1, 2, 3, 4].map((n) => spec(n, `10.77.1.${n}`))) } }).allocate(), { code: 'NO_FREE_IP' });
});

test('book: this host\'s VMs and reservations, as GET /v1/peer/addresses answers', () => {
  const db = openDb(':memory:');
  const s2 = spec(2, '10.77.1.2');
  allocator(db).left(spec(1, '10.77.1.1'), 'h2');
  const b = allocator(db, { local: [s2] }).book();
  assert.equal(b.host, 'h1');
  assert.deepEqual(b.vms, [{ uuid: s2.uuid, name: 'vm2', ip: '10.77.1.2' }]);
  assert.deepEqual(b.reservations.map((r) => [r.uuid, r.vm, r.ip, r.host]), [[U(1), 'vm1', '10.77.1.1', 'h2']]);
});

test('askAddresses: the addresses route, else an older peer\'s overview; other errors are thrown', async () => {
  const vms = [{ uuid: U(1), name: 'vm1', ip: '10.77.1.1' }];
  const notFound = async (): Promise<never> => { throw new FerryError('NOT_FOUND', 'There is no route GET /v1/peer/addresses.'); };
  assert.deepEqual(await askAddresses({ addresses: async () => ({ protocol: 1, host: 'h2', vms, reservations: [] }), overview: notFound }, 'h2'),
    { host: 'h2', vms: [{ uuid: U(1), ip: '10.77.1.1' }], reservations: [] });
  assert.deepEqual(await askAddresses({ addresses: notFound, overview: async <T>() => ({ vms } as T) }, 'h2'), { host: 'h2', vms: [{ uuid: U(1), ip: '10.77.1.1' }], reservations: null });
  const unreachable = async (): Promise<never> => { throw new FerryError('HOST_UNREACHABLE', 'The agent of host h2 did not answer.'); };
  await assert.rejects(askAddresses({ addresses: unreachable, overview: notFound }, 'h2'), { code: 'HOST_UNREACHABLE' });
});

test('an answer given before a VM moved away does not end the reservation made while the peers were asked', async () => {
  const db = openDb(':memory:');
  const s1 = spec(1, '10.77.1.1');
  const world: { local: VmSpec[] } = { local: [s1] };
  // h2 answers at once that it has no s1 (the move's prepare has not reached it yet); h3 is slow,
  // and while it is asked the move completes: the source reserves s1's address and forgets it.
  const a = new IpAllocator({
    host: 'h1', range: { rangeStart: '10.77.1.1', rangeEnd: '10.77.1.4' }, db, log: pino({ level: 'silent' }),
    peers: [{ name: 'h2', url: 'https://h2' }, { name: 'h3', url: 'https://h3' }],
    local: () => world.local.map((s) => ({ uuid: s.uuid, name: s.name, ip: s.ip, arriving: false })),
    cluster: async () => null,
    ask: async (p: PeerAgent) => {
      if (p.name === 'h2') return answer('h2', []);
      await new Promise((r) => setTimeout(r, 20));
      a.left(s1, 'h2');
      world.local = [];
      return answer('h3', []);
    },
  });
  assert.equal(await next(a), '10.77.1.2', 's1 holds 10.77.1.1 by its reservation');
  assert.equal(a.reservations.list().length, 1, 'the reservation stays until an answer asked for after it says otherwise');
  world.local = [];
  const b = allocator(db, { peers: { h2: answer('h2', []), h3: answer('h3', []) } });
  assert.equal(await next(b), '10.77.1.1', 'a later allocation that hears s1 is gone on h2 ends it');
});

test('peers that do not answer hold an allocation up for one deadline at most', async () => {
  const db = openDb(':memory:');
  const a = new IpAllocator({
    host: 'h1', range: { rangeStart: '10.77.1.1', rangeEnd: '10.77.1.4' }, db, log: pino({ level: 'silent' }),
    peers: [{ name: 'h2', url: 'https://h2' }],
    local: () => [],
    cluster: async () => ({ members: [{ name: 'h3', url: 'https://h3' }], haIps: [] }),
    ask: (p: PeerAgent) => (p.name === 'h2' ? Promise.resolve(answer('h2', [spec(2, '10.77.1.1')])) : new Promise<never>(() => undefined)),
  });
  const t0 = Date.now();
  assert.equal(await next(a), '10.77.1.2', 'h2 answered in time');
  const took = Date.now() - t0;
  assert.ok(took >= ASK_ALL_DEADLINE_MS - 50 && took < ASK_ALL_DEADLINE_MS + 1_000, `took ${took} ms`);
});
