// Integration: the cluster's etcd store against a real etcd (Debian's etcd-server) on loopback,
// no lab: guarded writes, slots, leases that expire, the quorum check; a node's failback retry.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { ClusterNode, ClusterStore, createConfig, FAILBACK_RETRY_MS, holdGraceMs, quorum, readConfig, type ClusterConfig, type ClusterHost, type EtcdTls, type HaRecord } from '../src/cluster/index.js';
import { initCa, issueHostCert } from '../src/security/index.js';
import { FerryError } from '../src/errors/index.js';
import { HaPolicyMemory } from '../src/agent/ha-policies.js';
import { openDb } from '../src/util/db.js';
import { freePort } from '../src/util/net.js';
import { waitFor } from './support/cli.js';
import { loopbackEtcd, type LoopbackEtcd } from './support/etcd.js';

let etcd: LoopbackEtcd | undefined;
let url = '';
let cfg: ClusterConfig;
let store: ClusterStore;

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

before(async () => {
  etcd = await loopbackEtcd();
  url = etcd.url;
  cfg = { name: 'itest', endpoints: [url], leaseTtlSec: 2, fenceMarginSec: 1, maxMigrations: 2, createdAt: new Date().toISOString() };
  await createConfig(cfg);
  store = new ClusterStore(cfg);
});

after(() => {
  store?.close();
  etcd?.stop();
});

const rec = (name: string, owner: string): HaRecord => ({
  name, owner, home: owner, priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '',
  spec: { name, uuid: name, memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '', ip: '', prefixLength: 16, disks: [], ha: true },
});

/** A ClusterHost with nothing of its own: no HA VMs, every action a no-op; `over` replaces parts. */
const fakeHost = (name: string, over: Partial<ClusterHost> = {}): ClusterHost => ({
  name, url: `https://${name}`, log: pino({ level: 'silent' }),
  facts: () => ({ memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false }),
  localHa: () => [], startHa: () => Promise.resolve(), fence: () => Promise.resolve(), forget: () => Promise.resolve(), define: () => Promise.resolve(),
  arrivedFrom: () => undefined, leftTo: () => undefined, peerLeases: () => Promise.resolve([]), moveVm: () => Promise.resolve(),
  peerVms: (hosts) => Promise.resolve(hosts.map((h) => ({ host: h.name, vms: [] }))),
  ...over,
});

test('a cluster is created once; joining reads its config; an unknown one is CLUSTER_NOT_FOUND', async () => {
  await assert.rejects(createConfig(cfg), isCode('CLUSTER_EXISTS'));
  assert.equal((await readConfig('itest', [url])).leaseTtlSec, 2);
  await assert.rejects(readConfig('nope', [url]), isCode('CLUSTER_NOT_FOUND'));
});

test('an HA record changes only at the revision its writer read: of two writers, one wins', async () => {
  await store.createHa(rec('v1', 'h1'));
  await assert.rejects(store.createHa(rec('v1', 'h2')), isCode('VM_EXISTS'));
  const e = await store.haEntry('v1');
  assert.ok(e);
  const [a, b] = await Promise.all([store.updateHa({ ...e.rec, owner: 'h2' }, e.rev), store.updateHa({ ...e.rec, owner: 'h3' }, e.rev)]);
  assert.equal([a, b].filter(Boolean).length, 1, 'exactly one guarded write succeeds');
  assert.equal((await store.haEntry('v1'))?.rec.owner, a ? 'h2' : 'h3');
});

test('a placement also needs the old owner still without a lease: one that came back wins', async () => {
  await store.createHa(rec('v2', 'h7'));
  const e = await store.haEntry('v2');
  assert.ok(e);
  const lease = store.lease();
  await store.putMember(lease, { name: 'h7', url: 'https://h7', memoryMiB: 1, freeMemoryMiB: 1, cpus: 1, maintenance: false, updatedAt: '' });
  assert.equal(await store.updateHa({ ...e.rec, owner: 'h8' }, e.rev, { ownerGone: 'h7' }), false, 'h7 holds a lease again: no placement');
  await lease.revoke();
  assert.equal(await store.updateHa({ ...e.rec, owner: 'h8' }, e.rev, { ownerGone: 'h7' }), true, 'h7 gone: the placement lands');
});

test('a member key and its slots vanish when the lease is no longer renewed; the manager key goes with it', async () => {
  const lease = store.lease();
  await store.putMember(lease, { name: 'h1', url: 'https://h1', memoryMiB: 1, freeMemoryMiB: 1, cpus: 1, maintenance: false, updatedAt: '' });
  assert.equal(await store.campaign(lease, 'h1'), 'h1');
  assert.equal(await store.takeSlot(lease, 'job-a', 2), true);
  assert.equal(await store.takeSlot(lease, 'job-b', 2), true);
  assert.equal(await store.takeSlot(lease, 'job-c', 2), false, 'the cluster-wide limit holds');
  await store.releaseSlot('job-a');
  assert.equal(await store.takeSlot(lease, 'job-c', 2), true, 'a released slot is taken again');
  const other = store.lease();
  assert.equal(await store.campaign(other, 'h2'), 'h1', 'a second candidate sees the manager');
  assert.deepEqual((await store.members()).map((m) => m.name), ['h1']);
  // Stop renewing (as a dead host would): everything bound to the lease goes after the TTL.
  lease.release();
  await waitFor('the member key to expire', async () => (await store.members()).length === 0, 10_000);
  assert.equal(await store.campaign(other, 'h2'), 'h2', 'the next candidate becomes manager');
  assert.equal(await store.takeSlot(other, 'job-d', 2), true);
  await other.revoke();
});

test('a drain record written as manager holds only in the term it was read in: the same host elected again writes only with its new term', async () => {
  const first = store.lease();
  assert.equal(await store.campaign(first, 'h5'), 'h5');
  const t1 = await store.managerTerm();
  assert.equal(t1?.name, 'h5');
  assert.equal(await store.putDrain('h9', '{"v":1}', { manager: 'h5', term: t1?.term ?? '' }), true);
  await first.revoke();
  const second = store.lease();
  assert.equal(await store.campaign(second, 'h5'), 'h5', 'h5 is elected again');
  const t2 = await store.managerTerm();
  assert.notEqual(t2?.term, t1?.term);
  assert.equal(await store.putDrain('h9', '{"v":2}', { manager: 'h5', term: t1?.term ?? '' }), false, 'the old term\'s run is refused');
  assert.equal(await store.putDrain('h9', '{"v":3}', { manager: 'h5', term: t2?.term ?? '' }), true);
  assert.equal((await store.drains()).find((d) => d.host === 'h9')?.value, '{"v":3}');
  await second.revoke();
});

test('a failback refused before its move started is asked again soon, not after the 2 minutes meant for a move under way', async () => {
  await store.createHa({ ...rec('fb1', 'h7'), home: 'h8', failback: 'immediate', moveTo: 'h8' });
  const asked: string[] = [];
  const host = fakeHost('h7', {
    localHa: () => [{ name: 'fb1', uuid: 'fb1', running: true, busy: false, qemu: true }],
    moveVm: (name, to) => { asked.push(`${name} → ${to}`); return Promise.reject(new FerryError('VM_BUSY', 'busy')); },
  });
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, host);
  node.start();
  try {
    const r = await waitFor('the refused failback recorded', async () => {
      const x = (await store.haEntry('fb1'))?.rec;
      return x?.failbackAt !== undefined && x.failbackAt < Date.now() - 60_000 ? x : undefined;
    }, 15_000);
    assert.deepEqual(asked, ['fb1 → h8']);
    assert.equal(r.moveTo, undefined, 'the request was taken');
    const wait = (r.failbackAt ?? 0) + FAILBACK_RETRY_MS - Date.now();
    assert.ok(wait > 5_000 && wait <= 15_000, `asked again in ${wait} ms`);
  } finally {
    await node.stop();
  }
});

test('a cluster-wide slot its host holds for a move that no longer runs there is released (a release that failed, a take whose answer was lost)', async () => {
  const host = fakeHost('h6', { moveHoldsSlot: (job) => job === 'job-live' });
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4, maxMigrations: 8 }, host);
  node.start();
  try {
    await waitFor('a lease', () => node.takeMigrationSlot('job-live'), 10_000);
    assert.equal(await node.takeMigrationSlot('job-gone'), true);
    const held = async (): Promise<string[]> => Object.values(await store.client.getAll().prefix(store.keys.slots).strings()).sort();
    assert.deepEqual(await held(), ['job-gone', 'job-live']);
    await waitFor('the slot of the move that is gone released', async () => !(await held()).includes('job-gone'), 15_000);
    assert.deepEqual(await held(), ['job-live'], 'the live move keeps its slot');
  } finally {
    await node.stop();
  }
});

test('a user\'s start claims the HA record first: refused when another host owns it; else placing, its failed starts forgotten', async () => {
  const host = fakeHost('h4');
  await store.createHa({ ...rec('us1', 'h4'), state: 'failed', failedOn: ['h4', 'h5'] });
  await store.createHa(rec('us2', 'h5'));
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, host);
  await assert.rejects(node.claimForStart(rec('us2', 'h4').spec), (e: unknown) => isCode('VM_BAD_STATE')(e) && /runs on h5 now/.test((e as Error).message));
  assert.equal((await store.haEntry('us2'))?.rec.owner, 'h5', 'nothing changed');
  await node.claimForStart(rec('us1', 'h4').spec);
  const r = (await store.haEntry('us1'))?.rec;
  assert.equal(r?.state, 'placing', 'the manager no longer places it elsewhere');
  assert.equal(r?.failedOn, undefined);
  node.store.close();
});

test('a user\'s start of an HA VM the cluster does not know (no record, or the record is another VM of that name) is refused and writes nothing; with register, one without a record is registered again once every other member says it runs no VM of that name', async () => {
  // Another member, h8: what it answers when h4 asks for its VMs (null: it does not answer).
  let h8Vms: { name: string; state: string }[] | null = [];
  const asked: string[][] = [];
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, fakeHost('h4', {
    peerVms: (hosts) => { asked.push(hosts.map((h) => h.name)); return Promise.resolve(hosts.map((h) => ({ host: h.name, vms: h.name === 'h8' ? h8Vms : [] }))); },
    // What h4 kept of gone1's last record (src/agent/ha-policies.ts).
    recallPolicies: (uuid) => (uuid === 'gone1' ? { priority: 3, restart: 'never', failback: 'immediate', home: 'h8', asOf: '2026-11-20T10:00:00.000Z' } : undefined),
  }));
  const h8 = store.lease();
  await store.putMember(h8, { name: 'h8', url: 'https://h8', memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false, updatedAt: '' });
  await assert.rejects(node.claimForStart(rec('gone1', 'h4').spec, true), isCode('CLUSTER_UNAVAILABLE'), 'no lease: no record made for itself');
  node.start();
  await waitFor('h4 a member', async () => (await store.members()).some((m) => m.name === 'h4') && node.renewing(), 10_000);
  await node.pause(); // its lease lives on; no tick acts on the records meanwhile
  await assert.rejects(node.claimForStart(rec('gone1', 'h4').spec), (e: unknown) =>
    isCode('VM_BAD_STATE')(e) && /no record in the cluster.*does not start a copy the cluster does not know.*ferry vm start gone1 --register. registers it again.*ferry vm delete gone1. forgets this copy and keeps its disks/.test((e as Error).message));
  assert.equal(await store.haEntry('gone1'), undefined, 'nothing registered');
  // The user says it is safe (etcd's data was lost), but h8 runs a VM of that name, then h8 does not answer.
  h8Vms = [{ name: 'gone1', state: 'running' }];
  await assert.rejects(node.claimForStart(rec('gone1', 'h4').spec, true), (e: unknown) => isCode('VM_BAD_STATE')(e) && /runs on h8; --register would give the cluster a second copy/.test((e as Error).message));
  assert.ok(asked.every((a) => a.includes('h8') && !a.includes('h4')), `h4 asks the other members: ${JSON.stringify(asked)}`);
  h8Vms = null;
  await assert.rejects(node.claimForStart(rec('gone1', 'h4').spec, true), (e: unknown) => isCode('AGENT_UNREACHABLE')(e) && /h8 did not answer/.test((e as Error).message));
  assert.equal(await store.haEntry('gone1'), undefined, 'nothing registered');
  // h8 has only a stopped VM of that name: registered here, placing until it runs.
  h8Vms = [{ name: 'gone1', state: 'stopped' }];
  await node.claimForStart(rec('gone1', 'h4').spec, true);
  await h8.revoke();
  const again = (await store.haEntry('gone1'))?.rec;
  assert.deepEqual([again?.owner, again?.state, again?.spec.uuid], ['h4', 'placing', 'gone1']);
  assert.deepEqual([again?.priority, again?.restart, again?.failback, again?.home], [3, 'never', 'immediate', 'h8'], 'the policies and home h4 kept');
  assert.match(again?.note ?? '', /registered again by a user's start on h4/);
  await store.createHa({ ...rec('same1', 'h4'), state: 'stopped' });
  const other = { ...rec('same1', 'h4').spec, uuid: 'uuid-other' };
  await assert.rejects(node.claimForStart(other, true), isCode('VM_BAD_STATE'), '--register never replaces another VM\'s record');
  await assert.rejects(node.claimForStart(other), (e: unknown) =>
    isCode('VM_BAD_STATE')(e) && /Another VM named "same1" \(uuid same1\) is registered in the cluster, owned by h4; this copy on h4 \(uuid uuid-other\) is not it/.test((e as Error).message));
  assert.equal((await store.haEntry('same1'))?.rec.state, 'stopped', 'the record is untouched');
  await node.stop();
});

test('a local VM of an HA record\'s name with another uuid is never taken for its copy: not fenced or forgotten for an owner elsewhere', async () => {
  await store.createHa(rec('twin1', 'h5'));
  await store.createHa(rec('twin2', 'h5'));
  const fenced: string[] = [];
  const forgotten: string[] = [];
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, {
    ...fakeHost('h4'),
    localHa: () => [{ name: 'twin1', uuid: 'uuid-mine', running: true, busy: false, qemu: true }, { name: 'twin2', uuid: 'uuid-mine2', running: false, busy: false, qemu: false }],
    fence: (names) => { fenced.push(...names); return Promise.resolve(); },
    forget: (name) => { forgotten.push(name); return Promise.resolve(); },
  });
  node.start();
  try {
    await waitFor('h4 a member', async () => (await store.members()).some((m) => m.name === 'h4') && node.renewing(), 10_000);
    await new Promise((r) => setTimeout(r, 2_500));
    assert.deepEqual([fenced, forgotten], [[], []], 'the running twin1 and the stopped twin2 here are other VMs than h5\'s');
  } finally {
    await node.stop();
  }
});

test('a move\'s arrival, a user\'s stop and a delete change only the record of that very VM (its uuid), never another VM\'s of the same name', async () => {
  await store.createHa(rec('id1', 'h1'));
  const h1 = store.lease();
  await store.putMember(h1, { name: 'h1', url: 'https://h1', memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false, updatedAt: '' });
  // id1 is busy here (in a move), so the node's own ticks leave its record alone.
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, fakeHost('h3', { localHa: () => [{ name: 'id1', uuid: 'id1', running: false, busy: true, qemu: true }] }));
  node.start();
  try {
    await waitFor('h3 a member', async () => (await store.members()).some((m) => m.name === 'h3') && node.renewing(), 10_000);
    const other = { name: 'id1', uuid: 'uuid-other' };
    const mine = { name: 'id1', uuid: 'id1' };
    const before = await store.haEntry('id1');
    await node.tookOver(other, 'h1');
    assert.equal((await store.haEntry('id1'))?.rev, before?.rev, 'another VM named id1 arriving wrote nothing');
    await node.tookOver(mine, 'h1');
    assert.equal((await store.haEntry('id1'))?.rec.owner, 'h3');
    const owned = await store.haEntry('id1');
    await node.setState(other, 'stopped');
    await node.unregister(other);
    assert.equal((await store.haEntry('id1'))?.rev, owned?.rev, 'another VM named id1 stopped or deleted here wrote nothing');
    await node.setState(mine, 'stopped');
    assert.equal((await store.haEntry('id1'))?.rec.state, 'stopped');
    await node.unregister(other);
    assert.ok(await store.haEntry('id1'), 'still there after another VM\'s delete');
    await node.unregister(mine);
    assert.equal(await store.haEntry('id1'), undefined, 'gone after its own VM\'s delete');
  } finally {
    await node.stop();
    await h1.revoke();
  }
});

test('a running HA VM here without a record (etcd\'s data lost) is registered again after the fence margin, with the policies and home its last record had; a busy or stopped one, or one whose name another VM\'s record holds, is not', async () => {
  await store.createHa({ ...rec('rr4', 'h1'), spec: { ...rec('rr4', 'h1').spec, uuid: 'uuid-theirs' } });
  await store.createHa({ ...rec('rr5', 'h6'), home: 'h1', priority: 9, restart: 'never', failback: 'immediate', updatedAt: '2026-11-20T10:00:00.000Z' });
  const local = [
    { name: 'rr1', uuid: 'rr1', running: true, busy: false, qemu: true },
    { name: 'rr2', uuid: 'rr2', running: true, busy: true, qemu: true },
    { name: 'rr3', uuid: 'rr3', running: false, busy: false, qemu: false },
    { name: 'rr4', uuid: 'rr4', running: true, busy: false, qemu: true },
    { name: 'rr5', uuid: 'rr5', running: true, busy: false, qemu: true },
  ];
  // The agent's own memory of the policies, in SQLite (src/agent/ha-policies.ts).
  const kept = new HaPolicyMemory(openDb(':memory:'), pino({ level: 'silent' }));
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 1 }, fakeHost('h6', {
    localHa: () => local, whileIdle: (name, fn) => fn({ ...rec(name, 'h6').spec }),
    rememberPolicies: (records) => { kept.remember(records, new Set(local.map((v) => v.uuid))); },
    recallPolicies: (uuid) => kept.recall(uuid),
  }));
  const t0 = Date.now();
  node.start();
  try {
    const e = await waitFor('rr1 registered again', async () => store.haEntry('rr1'), 15_000);
    assert.ok(Date.now() - t0 >= 1_000, 'not before the fence margin');
    assert.deepEqual([e.rec.owner, e.rec.home, e.rec.state, e.rec.spec.uuid, e.rec.priority, e.rec.restart, e.rec.failback], ['h6', 'h6', 'running', 'rr1', 0, 'always', 'none']);
    assert.match(e.rec.note ?? '', /registered again by h6/);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(await store.haEntry('rr2'), undefined, 'a VM in a move or an action is left to it');
    assert.equal(await store.haEntry('rr3'), undefined, 'a stopped VM is not registered by itself');
    assert.equal((await store.haEntry('rr4'))?.rec.spec.uuid, 'uuid-theirs', 'another VM\'s record of that name stays');
    // rr5's record, seen by h6's ticks, is lost: it comes back as it was, not with the defaults.
    assert.equal(kept.recall('rr5')?.priority, 9, 'h6 kept what its ticks read');
    assert.equal(kept.recall('rr4'), undefined, 'rr4\'s record is another VM\'s (uuid-theirs): nothing of it kept for h6\'s rr4');
    await store.client.delete().key(store.keys.haVm('rr5')).exec();
    const r5 = await waitFor('rr5 registered again', async () => store.haEntry('rr5'), 15_000);
    assert.deepEqual([r5.rec.owner, r5.rec.home, r5.rec.state, r5.rec.priority, r5.rec.restart, r5.rec.failback], ['h6', 'h1', 'running', 9, 'never', 'immediate']);
    assert.match(r5.rec.note ?? '', /registered again by h6.*the policies and home of its last record seen here \(of 2026-11-20T10:00:00.000Z\)/);
  } finally {
    await node.stop();
  }
});

test('the manager writes the cluster\'s settings back when etcd lost them, so that a host can join again', async () => {
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, fakeHost('h7'));
  node.start();
  try {
    await waitFor('h7 manages the cluster', async () => node.view().manager === 'h7', 15_000);
    await store.client.delete().key(store.keys.config).exec();
    await assert.rejects(readConfig('itest', [url]), isCode('CLUSTER_NOT_FOUND'));
    const back = await waitFor('the settings written back', async () => readConfig('itest', [url]).catch(() => undefined), 15_000);
    assert.equal(back.leaseTtlSec, 5, 'the manager\'s own copy of them');
  } finally {
    await node.stop();
    await store.client.put(store.keys.config).value(JSON.stringify(cfg)).exec();
  }
});

test('a host that cannot renew while etcd answers fences only the HA VMs etcd has a record of (after etcd lost its data, nobody can place the others)', async () => {
  await store.createHa(rec('fr1', 'h8'));
  const h9 = store.lease();
  await store.putMember(h9, { name: 'h9', url: 'https://h9', memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false, updatedAt: '' });
  const fenced: string[] = [];
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, fakeHost('h8', {
    localHa: () => [{ name: 'fr1', uuid: 'fr1', running: true, busy: true, qemu: true }, { name: 'fr2', uuid: 'fr2', running: true, busy: true, qemu: true }],
    peerLeases: () => Promise.resolve([{ host: 'h9', renewing: true, sinceRenewMs: 0 }]),
    fence: (names) => { fenced.push(...names); return Promise.resolve(); },
  }));
  node.start();
  try {
    await waitFor('h8 a member beside h9', async () => (await store.members()).some((m) => m.name === 'h8') && node.renewing(), 10_000);
    // h8 stops renewing (its lease is gone, no tick grants another) while etcd answers and h9 renews.
    await node.pause();
    const id = (await store.client.get(store.keys.member('h8')).exec()).kvs[0]?.lease;
    assert.ok(id);
    await store.client.leaseClient.leaseRevoke({ ID: id });
    await waitFor('h8 fences', async () => fenced.length > 0, 15_000);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual([...new Set(fenced)], ['fr1'], 'fr2, of which etcd has no record, runs on');
    // Not for ever: with no lease back, fr2 goes too after twice the fence margin.
    await waitFor('h8 fences fr2 as well', async () => fenced.includes('fr2'), 15_000);
    assert.ok(Date.now() - t0 >= 6_000, `fr2 was spared ${Date.now() - t0} ms`);
  } finally {
    await node.stop();
    await h9.revoke();
  }
});

test('a destination writes its ownership only while the lease it held when it saw the VM run lives: a write that lands after that lease is gone changes nothing', async () => {
  await store.createHa(rec('to1', 'h1'));
  await store.createHa(rec('to2', 'h1'));
  const node = new ClusterNode({ ...cfg, leaseTtlSec: 5, fenceMarginSec: 4 }, fakeHost('h3'));
  node.start();
  try {
    await waitFor('h3 a member', async () => (await store.members()).some((m) => m.name === 'h3'), 10_000);
    await node.tookOver({ name: 'to1', uuid: 'to1' }, 'h1');
    assert.equal((await store.haEntry('to1'))?.rec.owner, 'h3', 'with its lease alive, the destination owns the VM');
    // No more ticks (no new lease), then h3's lease goes (as it expires while h3 is cut off or
    // stalled: its fence or watchdog powers the VM off, its source gives up, the cluster restarts
    // the VM). The hand-over h3 started before that must not land now.
    await node.pause();
    const id = (await store.client.get(store.keys.member('h3')).exec()).kvs[0]?.lease;
    assert.ok(id);
    await store.client.leaseClient.leaseRevoke({ ID: id });
    assert.equal((await store.members()).some((m) => m.name === 'h3'), false);
    const before = await store.haEntry('to2');
    await node.tookOver({ name: 'to2', uuid: 'to2' }, 'h1');
    const after = await store.haEntry('to2');
    assert.equal(after?.rec.owner, 'h1', 'the record still names the source, which runs the VM again');
    assert.equal(after?.rev, before?.rev, 'nothing was written');
  } finally {
    await node.stop();
  }
});

test('an etcd that does not answer: a registration while the host waits for its lease is CLUSTER_UNAVAILABLE, never an internal error', async () => {
  // Nobody listens on this port: the lease's grant waits and fails, again and again, as with no quorum.
  const dead: ClusterConfig = { ...cfg, endpoints: [`http://127.0.0.1:${await freePort('127.0.0.1')}`] };
  const node = new ClusterNode(dead, fakeHost('h9'));
  node.start();
  const codes = new Set<string>();
  try {
    for (const t0 = Date.now(); Date.now() - t0 < 8_000;) {
      const e = await node.register(rec('dead1', 'h9').spec, {}).then(() => undefined, (err: unknown) => err);
      codes.add(e instanceof FerryError ? e.code : `not a FerryError: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await node.stop();
  }
  assert.deepEqual([...codes], ['CLUSTER_UNAVAILABLE']);
});

test('a fence check while etcd answers nothing asks etcd and the peers at the same time: a peer slow to answer (1.4 s) does not stop the watchdog feed while the check holds', async () => {
  const frozen = await loopbackEtcd();
  const fcfg: ClusterConfig = { ...cfg, name: 'frozen', endpoints: [frozen.url], leaseTtlSec: 10, fenceMarginSec: 4 };
  await createConfig(fcfg);
  const other = new ClusterStore(fcfg);
  const feeds: { at: number; deadline: number }[] = [];
  const fenced: string[] = [];
  let asked = 0;
  const node = new ClusterNode(fcfg, fakeHost('h11', {
    localHa: () => [{ name: 'q1', uuid: 'q1', running: true, busy: false, qemu: true }],
    // The other member cannot renew either (etcd lost quorum for all), and takes 1.4 s to say so.
    peerLeases: async (hosts) => {
      asked++;
      await new Promise((r) => setTimeout(r, 1_400));
      return hosts.map((h) => ({ host: h.name, renewing: false }));
    },
    fence: (names) => { fenced.push(...names); return Promise.resolve(); },
    armWatchdog: (deadline) => { feeds.push({ at: Date.now(), deadline }); },
  }));
  try {
    await other.putMember(other.lease(), { name: 'h12', url: 'https://h12', memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false, updatedAt: '' });
    node.start();
    await waitFor('h11 renewing and seeing h12', async () => node.renewing() && (await other.members()).length === 2, 15_000);
    await new Promise((r) => setTimeout(r, 2_500)); // a tick reads the members
    frozen.freeze(true);
    const t0 = Date.now();
    // Past FENCE_AT (6 s after the last renewal), fence checks run back to back; watch 5 s of them.
    await new Promise((r) => setTimeout(r, 11_500));
    const during = feeds.filter((f) => f.at - t0 > 6_500);
    assert.ok(asked >= 2, `the peers were asked ${asked} times`);
    assert.ok(during.length >= 8, `fed ${during.length} times`);
    const short = during.filter((f) => f.deadline < f.at + holdGraceMs(fcfg.fenceMarginSec) - 100);
    assert.deepEqual(short.map((f) => f.deadline - f.at), [], 'every feed while the checks hold gives the grace');
    assert.deepEqual(fenced, [], 'nothing fenced: no host can renew');
  } finally {
    frozen.freeze(false);
    await node.stop();
    other.close();
    frozen.stop();
  }
});

test('an etcd that speaks TLS and checks client certificates: a host with a certificate of its CA works, one of another CA is refused', async () => {
  const tdir = mkdtempSync(join(tmpdir(), 'ferry-etcd-tls-'));
  let tlsEtcd: ChildProcess | undefined;
  try {
    await initCa(join(tdir, 'ca'));
    const server = await issueHostCert({ caDir: join(tdir, 'ca'), name: 'etcd-solo', addresses: ['127.0.0.1'], outDir: join(tdir, 'server') });
    const host = await issueHostCert({ caDir: join(tdir, 'ca'), name: 'h1', addresses: ['127.0.0.1'], outDir: join(tdir, 'h1') });
    await initCa(join(tdir, 'other-ca'));
    const stranger = await issueHostCert({ caDir: join(tdir, 'other-ca'), name: 'h1', addresses: ['127.0.0.1'], outDir: join(tdir, 'stranger') });
    const [client, peer] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
    const tlsUrl = `https://127.0.0.1:${client}`;
    tlsEtcd = spawn('etcd', ['--name', 'solo', '--data-dir', join(tdir, 'data'), '--listen-client-urls', tlsUrl, '--advertise-client-urls', tlsUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `solo=http://127.0.0.1:${peer}`,
      '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', server.caCert, '--client-cert-auth'], { stdio: 'ignore' });
    const creds = (t: typeof host): EtcdTls => ({ ca: readFileSync(server.caCert), cert: readFileSync(t.cert), key: readFileSync(t.key) });
    await waitFor('etcd over TLS healthy', async () => (await quorum([tlsUrl], creds(host))).healthy, 30_000);
    const tcfg: ClusterConfig = { ...cfg, name: 'tls', endpoints: [tlsUrl] };
    await createConfig(tcfg, creds(host));
    assert.equal((await readConfig('tls', [tlsUrl], creds(host))).name, 'tls');
    const s = new ClusterStore({ ...tcfg, leaseTtlSec: 2 }, creds(host));
    try {
      await s.createHa(rec('tv1', 'h1'));
      assert.equal((await s.haEntry('tv1'))?.rec.owner, 'h1');
      // A lease is kept alive over TLS, while other clients come and go (quorum checks, config reads).
      const lease = s.lease();
      await s.putMember(lease, { name: 'h1', url: 'https://h1', memoryMiB: 1, freeMemoryMiB: 1, cpus: 1, maintenance: false, updatedAt: '' });
      for (let i = 0; i < 6; i++) {
        assert.equal((await quorum([tlsUrl], creds(host))).healthy, true);
        await readConfig('tls', [tlsUrl], creds(host));
        await new Promise((r) => setTimeout(r, 1_000));
      }
      assert.equal((await s.fenceView('h1', []))?.alive, true, 'the member key outlived 3 TTLs: its lease is renewed');
      await lease.revoke();
    } finally {
      s.close();
    }
    // A client certificate of another CA, or plain HTTP: etcd answers neither.
    assert.equal((await quorum([tlsUrl], creds(stranger))).healthy, false);
    await assert.rejects(readConfig('tls', [tlsUrl], creds(stranger)), isCode('CLUSTER_UNAVAILABLE'));
    assert.equal((await quorum([tlsUrl.replace('https:', 'http:')])).healthy, false);
    // A host with credentials still speaks plain text to an http:// etcd (clusters made before TLS).
    assert.equal((await quorum([url], creds(host))).healthy, true);
    assert.equal((await readConfig('itest', [url], creds(host))).name, 'itest');
  } finally {
    if (tlsEtcd?.pid !== undefined && tlsEtcd.exitCode === null) process.kill(tlsEtcd.pid, 'SIGKILL');
    rmSync(tdir, { recursive: true, force: true });
  }
});
