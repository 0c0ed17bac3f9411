// Integration: `ferry cluster leave` against a real etcd (Debian's etcd-server) on loopback, no lab:
// the store's one guarded transaction, and leaveCluster() (src/agent/cluster-leave.ts) with real
// ClusterNodes whose hosts run nothing: a host that leaves itself, one removed by a member once its
// lease is gone, and the refusals, each changing nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { leaveCluster, type LeaveParts } from '../src/agent/cluster-leave.js';
import { ClusterNode, ClusterStore, createConfig, type ClusterConfig, type ClusterHost, type HaRecord } from '../src/cluster/index.js';
import { FerryError } from '../src/errors/index.js';
import { waitFor } from './support/cli.js';
import { loopbackEtcd, type LoopbackEtcd } from './support/etcd.js';

let etcd: LoopbackEtcd | undefined;
let cfg: ClusterConfig;
let store: ClusterStore;
const nodes = new Map<string, ClusterNode>();

before(async () => {
  etcd = await loopbackEtcd();
  cfg = { name: 'leave', endpoints: [etcd.url], leaseTtlSec: 5, fenceMarginSec: 4, createdAt: new Date().toISOString() };
  await createConfig(cfg);
  store = new ClusterStore(cfg);
});

after(async () => {
  for (const n of nodes.values()) await n.stop();
  store?.close();
  etcd?.stop();
});

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

const rec = (name: string, owner: string, home: string, o: Partial<HaRecord> = {}): HaRecord => ({
  name, owner, home, priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '',
  spec: { name, uuid: name, memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '', ip: '', prefixLength: 16, disks: [], ha: true },
  ...o,
});

/** A member whose host runs, of the HA VMs, exactly those etcd says it owns (so nothing is started or moved). */
function startNode(name: string, more: Partial<ClusterHost> = {}): ClusterNode {
  const host: ClusterHost = {
    name, url: `https://${name}`, log: pino({ level: 'silent' }),
    facts: () => ({ memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false }),
    localHa: () => [{ name: 'v1', uuid: 'v1', running: name === 'h1', busy: false, qemu: name === 'h1' }, { name: 'v3', uuid: 'v3', running: name === 'h3', busy: false, qemu: name === 'h3' }],
    startHa: () => Promise.resolve(), fence: () => Promise.resolve(), forget: () => Promise.resolve(), define: () => Promise.resolve(),
    arrivedFrom: () => undefined, leftTo: () => undefined, peerLeases: () => Promise.resolve([]), moveVm: () => Promise.resolve(),
    peerVms: (hosts) => Promise.resolve(hosts.map((h) => ({ host: h.name, vms: [] }))),
    ...more,
  };
  const node = new ClusterNode(cfg, host);
  node.start();
  nodes.set(name, node);
  return node;
}

/**
 * leaveCluster() as `by`'s agent runs it, its host running no VM and drained unless `states` says
 * otherwise; `forgotten` lists the hosts that forgot the cluster, `detached` those whose membership
 * row is gone now (a leave that did not happen puts it back).
 */
const forgotten: string[] = [];
const detached = new Set<string>();
const states = new Map<string, string>();
function leave(by: string, host: string, o: { localVms?: () => string[] } = {}): ReturnType<typeof leaveCluster> {
  const node = nodes.get(by);
  assert.ok(node);
  const parts: LeaveParts = {
    host: by, node, localVms: o.localVms ?? (() => []), localRun: () => null, localState: () => states.get(by) ?? 'drained', localHa: () => [],
    detach: () => { detached.add(by); }, keep: () => { detached.delete(by); },
    forget: async () => { forgotten.push(by); nodes.delete(by); await node.revoke(); },
  };
  return leaveCluster(parts, host);
}

const members = async (): Promise<string[]> => (await store.members()).map((m) => m.name).sort();
const snapshot = async (): Promise<string> => JSON.stringify([await store.drains(), (await store.haEntries()).map((e) => [e.rec.name, e.rev])]);

test('the store takes a host out in one transaction guarded by revisions: a stale revision or a member key back writes nothing', async () => {
  await store.createHa(rec('s1', 'h7', 'h8'));
  assert.equal(await store.putDrain('h8', '{"state":"drained","running":null}', { rev: '0' }), true);
  const e = await store.haEntry('s1');
  const drain = (await store.drains()).find((d) => d.host === 'h8');
  assert.ok(e && drain);
  const plan = { deleteDrainRev: drain.rev, rehome: [{ rec: { ...e.rec, home: 'h7' }, rev: e.rev }] };
  const before = await snapshot();
  assert.equal(await store.removeHost('h8', { ...plan, deleteDrainRev: String(Number(drain.rev) - 1) }, true), false, 'a stale drain revision');
  const lease = store.lease();
  await store.putMember(lease, { name: 'h8', url: 'https://h8', memoryMiB: 1, freeMemoryMiB: 1, cpus: 1, maintenance: false, updatedAt: '' });
  assert.equal(await store.removeHost('h8', plan, true), false, 'h8 holds a lease again');
  assert.equal(await snapshot(), before, 'nothing was written');
  await lease.revoke();
  assert.equal(await store.removeHost('h8', { rehome: plan.rehome }, true), false, 'a drain record that was not read is there');
  assert.equal(await snapshot(), before, 'nothing was written');
  assert.equal(await store.removeHost('h8', plan, true), true);
  assert.equal((await store.drains()).some((d) => d.host === 'h8'), false, 'the drain record is gone');
  assert.equal((await store.haEntry('s1'))?.rec.home, 'h7');
  await store.deleteHa('s1');
});

test('a member leaves by itself: drain record gone, homes rewritten, lease revoked; refusals change nothing; leaving twice is NOT_IN_CLUSTER', async (t) => {
  for (const h of ['h1', 'h2', 'h3']) startNode(h);
  await waitFor('three members', async () => (await members()).length === 3, 15_000);
  // failback none: the manager, asking for failbacks, would change the record's revision under the checks.
  await store.createHa(rec('v1', 'h1', 'h2'));
  await store.createHa(rec('v3', 'h3', 'h3'));
  assert.equal(await store.putDrain('h2', JSON.stringify({ host: 'h2', state: 'drained', running: null, vms: [] }), { rev: '0' }), true);

  // Refusals: each leaves etcd as it was.
  const before = await snapshot();
  await assert.rejects(leave('h3', 'h3'), isCode('HOST_NOT_EMPTY'), 'h3 owns v3');
  await assert.rejects(leave('h1', 'h2'), isCode('MEMBER_ALIVE'), 'h2 holds its lease: only h2 can leave');
  await assert.rejects(leave('h1', 'h9'), isCode('NOT_IN_CLUSTER'));
  states.set('h2', 'active');
  await assert.rejects(leave('h2', 'h2'), isCode('HOST_NOT_DRAINED'), 'h2 is not drained here (its drain record says drained)');
  states.delete('h2');
  assert.equal(await snapshot(), before, 'the refusals changed nothing');
  assert.equal(detached.size, 0, 'a leave that did not happen keeps the membership');
  assert.deepEqual(await members(), ['h1', 'h2', 'h3'], 'and h3, refused, takes part again');

  const t0 = Date.now();
  const r = await leave('h2', 'h2');
  t.diagnostic(`h2 left in ${Date.now() - t0} ms`);
  assert.deepEqual(r, { cluster: 'leave', host: 'h2', by: 'h2', self: true, drainRemoved: true, homes: [{ vm: 'v1', from: 'h2', to: 'h1' }], handedOver: [] });
  assert.deepEqual(forgotten, ['h2']);
  assert.deepEqual(await members(), ['h1', 'h3'], 'the member key went with the revoked lease, at once');
  assert.deepEqual((await store.drains()).map((d) => d.host), []);
  assert.deepEqual((await store.haEntries()).map((e) => `${e.rec.name}:${e.rec.owner}/${e.rec.home}`).sort(), ['v1:h1/h1', 'v3:h3/h3']);
  await assert.rejects(leave('h1', 'h2'), isCode('NOT_IN_CLUSTER'), 'leaving twice: nothing is left to remove');
});

test('a member takes out a host whose lease is gone; the last member cannot leave', async () => {
  const v1 = await store.haEntry('v1');
  assert.ok(v1);
  assert.equal(await store.updateHa({ ...v1.rec, home: 'h3' }, v1.rev), true, 'v1 came to h1 from h3, say by a restart');
  const h3 = nodes.get('h3');
  assert.ok(h3);
  await assert.rejects(leave('h1', 'h3'), isCode('MEMBER_ALIVE'));
  // h3 powered off for good, after its VM went to h1 (h3 stays its home).
  const v3 = await store.haEntry('v3');
  assert.ok(v3);
  assert.equal(await store.updateHa({ ...v3.rec, owner: 'h1' }, v3.rev), true);
  await h3.pause();
  await h3.revoke();
  nodes.delete('h3');
  const r = await leave('h1', 'h3');
  assert.deepEqual(r, { cluster: 'leave', host: 'h3', by: 'h1', self: false, drainRemoved: false, homes: [{ vm: 'v1', from: 'h3', to: 'h1' }, { vm: 'v3', from: 'h3', to: 'h1' }], handedOver: [] });
  assert.deepEqual((await store.haEntries()).map((e) => `${e.rec.name}:${e.rec.owner}/${e.rec.home}`).sort(), ['v1:h1/h1', 'v3:h1/h1']);
  await assert.rejects(leave('h1', 'h3'), isCode('NOT_IN_CLUSTER'));
  // h1 is the only member left: it may not leave, and takes part again.
  await assert.rejects(leave('h1', 'h1'), isCode('CLUSTER_LAST_MEMBER'));
  await new Promise((r) => setTimeout(r, 2_500));
  assert.ok(nodes.get('h1')?.renewing(), 'h1 renews its lease');
  assert.equal(await store.manager(), 'h1', 'and manages the cluster');
});

test('while a leave decides, the node feeds the watchdog and keeps its last renewal; a VM that came during the write keeps the host in', async () => {
  let feeds = 0;
  let ticks = 0;
  // lastRenewal 0: a start() after the pause would rewind the last renewal to it (no longer renewing).
  const h4 = startNode('h4', { armWatchdog: () => { feeds++; }, afterTick: () => { ticks++; return Promise.resolve(); }, lastRenewal: () => 0 });
  await waitFor('h4 a member', async () => (await members()).includes('h4') && h4.renewing(), 15_000);
  await h4.pause();
  const [f0, t0] = [feeds, ticks];
  await new Promise((r) => setTimeout(r, 1_600));
  assert.ok(feeds - f0 >= 2, `the watchdog was fed ${feeds - f0} times in 1.6 s of pause`);
  assert.equal(ticks, t0, 'no tick while paused');
  h4.resume();
  assert.ok(h4.renewing(), 'resume() keeps the last renewal');
  await waitFor('a tick after resume', () => Promise.resolve(ticks > t0), 5_000);

  // A VM that arrives while the transaction is written (a drained host admits none: the last line of defence).
  let asked = 0;
  const late = await leave('h4', 'h4', { localVms: () => (++asked > 2 ? ['late'] : []) }).then(() => null, (e: unknown) => e);
  assert.ok(late instanceof FerryError && late.code === 'HOST_NOT_EMPTY', String(late));
  assert.match(late.message, /late.*stays in the cluster/);
  assert.equal(detached.has('h4'), false, 'its membership is kept');
  const t1 = ticks;
  await waitFor('h4 ticks again', () => Promise.resolve(ticks > t1), 5_000);
  assert.ok(h4.renewing());
  assert.ok((await members()).includes('h4'));
});

test('a member takes out a dead host that owned HA VMs nobody restarts: they are handed over, stopped, to the member with the most room, not the one that asks; it records them and starts none', async () => {
  const defined: string[] = [];
  const started: string[] = [];
  // h5 has the most free memory of the live members, so the hand-over places the VMs there.
  const h5 = startNode('h5', {
    facts: () => ({ memoryMiB: 8192, freeMemoryMiB: 4096, cpus: 2, maintenance: false }),
    define: (spec) => {
      if (spec.name === 'dup1') return Promise.reject(new FerryError('VM_EXISTS', 'Another VM named "dup1" is on h5 (uuid other).'));
      defined.push(spec.name);
      return Promise.resolve();
    },
    startHa: (spec) => { started.push(spec.name); return Promise.resolve(); },
  });
  await waitFor('h5 a member', async () => (await members()).includes('h5') && h5.renewing(), 15_000);
  // h6 never comes back: one VM a user stopped there, one with restart never that ran there.
  await store.createHa(rec('st1', 'h6', 'h6', { state: 'stopped' }));
  await store.createHa(rec('nv1', 'h6', 'h6', { restart: 'never', failback: 'immediate' }));
  // And one whose name h5 already uses for another VM.
  await store.createHa(rec('dup1', 'h6', 'h6', { state: 'stopped' }));
  const r = await leave('h1', 'h6'); // h1 asks; h5, with the most free memory, takes them
  assert.deepEqual(r.handedOver, [{ vm: 'dup1', from: 'h6', to: 'h5' }, { vm: 'nv1', from: 'h6', to: 'h5' }, { vm: 'st1', from: 'h6', to: 'h5' }]);
  const t0 = Date.now();
  await new Promise((res) => setTimeout(res, 1_500));
  assert.deepEqual(defined, [], 'h5 records nothing within the fence margin (4 s here): a cut-off h6 may still be stopping its copies');
  assert.deepEqual(r.homes, [], 'their homes changed with the hand-over, not as a rehome');
  await waitFor('h5 took both over', async () => (await store.haEntries()).filter((e) => ['st1', 'nv1'].includes(e.rec.name)).every((e) => e.rec.handedOverFrom === undefined), 10_000);
  assert.ok(Date.now() - t0 >= cfg.fenceMarginSec * 1000, `taken over ${Date.now() - t0} ms after the leave`);
  assert.deepEqual(defined.sort(), ['nv1', 'st1'], 'h5 recorded each VM once');
  const dup = (await store.haEntry('dup1'))?.rec;
  assert.equal(dup?.handedOverFrom, 'h6', 'a name taken here keeps the mark');
  assert.match(dup?.note ?? '', /h5, which could not record it: Another VM named "dup1"/);
  const after = (await store.haEntries()).filter((e) => ['st1', 'nv1'].includes(e.rec.name)).map((e) => `${e.rec.name}:${e.rec.owner}/${e.rec.home}/${e.rec.state}`).sort();
  assert.deepEqual(after, ['nv1:h5/h5/stopped', 'st1:h5/h5/stopped']);
  await new Promise((res) => setTimeout(res, 2_500));
  assert.deepEqual(started, [], 'nothing was started: a user starts them');
  assert.deepEqual(defined.sort(), ['nv1', 'st1'], 'and the next ticks recorded nothing again');
  await assert.rejects(leave('h5', 'h6'), isCode('NOT_IN_CLUSTER'), 'nothing of h6 is left');
  await store.deleteHa('dup1');
});
