import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideLeave, localRefusal, type LeaveFacts } from './leave.js';
import type { HaEntry, HaRecord, MemberRecord } from './model.js';

const rec = (name: string, o: Partial<HaRecord>): HaEntry => ({
  rev: `r-${name}`,
  rec: {
    name, owner: 'h1', home: 'h1', priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '',
    spec: { name, uuid: name, memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '', ip: '', prefixLength: 16, disks: [], ha: true },
    ...o,
  },
});

const member = (name: string, freeMemoryMiB = 2048, maintenance = false): MemberRecord =>
  ({ name, url: `https://${name}`, memoryMiB: 4096, freeMemoryMiB, cpus: 2, maintenance, updatedAt: '' });
const live = (...names: string[]): MemberRecord[] => names.map((n) => member(n));

const base: LeaveFacts = { cluster: 'lab', host: 'h2', self: true, members: live('h1', 'h2', 'h3'), ha: [], localVms: [], localRun: null, localState: 'drained', localHa: [] };
const drained = { rev: '41', running: null };
const running = { operation: 'drain', startedAt: '2025-01-01T00:00:00Z' };

test('a leave is refused, with a stable code, for each reason it must not happen', () => {
  const cases: [string, Partial<LeaveFacts>, string][] = [
    ['a host without a lease of which etcd keeps nothing', { self: false, members: live('h1', 'h3') }, 'NOT_IN_CLUSTER'],
    ['a live host, asked of another member', { self: false }, 'MEMBER_ALIVE'],
    ['a live host, asked of another member, even with nothing on it', { self: false, drain: drained, localVms: undefined }, 'MEMBER_ALIVE'],
    ['the only live member', { members: live('h2') }, 'CLUSTER_LAST_MEMBER'],
    ['the only live member, its lease lapsing', { members: live() }, 'CLUSTER_LAST_MEMBER'],
    ['a drain the manager runs', { drain: { rev: '7', running } }, 'DRAIN_IN_PROGRESS'],
    ['a drain of a host without a lease, still running', { self: false, members: live('h1', 'h3'), drain: { rev: '7', running } }, 'DRAIN_IN_PROGRESS'],
    ['a resume the host runs itself', { localRun: { operation: 'resume', startedAt: 'x' } }, 'DRAIN_IN_PROGRESS'],
    ['a host in service leaving by itself', { localState: 'active' }, 'HOST_NOT_DRAINED'],
    ['a host in service leaving by itself, even with nothing on it and a drained record in etcd', { localState: 'active', drain: drained }, 'HOST_NOT_DRAINED'],
    ['a host still draining (its drain left VMs behind)', { localState: 'draining', drain: drained }, 'HOST_NOT_DRAINED'],
    ['a host whose agent does not say its state', { localState: undefined }, 'HOST_NOT_DRAINED'],
    ['a VM still runs on the host', { drain: drained, localVms: ['web1'] }, 'HOST_NOT_EMPTY'],
    ['an HA VM is defined on the host (stopped, owned by another host in etcd)', { localHa: ['db'], ha: [rec('db', { owner: 'h1' })] }, 'HOST_NOT_EMPTY'],
    ['a stopped HA VM the host owns', { ha: [rec('db', { owner: 'h2', home: 'h2', state: 'stopped' })] }, 'HOST_NOT_EMPTY'],
    ['a host without a lease whose HA VM the cluster has not restarted yet',
      { self: false, members: live('h1', 'h3'), ha: [rec('db', { owner: 'h2', home: 'h2' })] }, 'HOST_NOT_EMPTY'],
    ['a host without a lease whose HA VM the cluster has not restarted yet, beside one nobody restarts (nothing is handed over)',
      { self: false, members: live('h1', 'h3'), ha: [rec('db', { owner: 'h2', home: 'h2' }), rec('log', { owner: 'h2', restart: 'never' })] }, 'HOST_NOT_EMPTY'],
  ];
  for (const [what, over, code] of cases) {
    const d = decideLeave({ ...base, ...over });
    assert.equal(d.ok ? 'ok' : d.error.code, code, what);
    if (!d.ok) assert.match(d.error.message, /h2/, `${what}: the sentence names the host`);
  }
});

test('what a refusal says: the VMs in the way, and for a dead host whether the cluster still restarts them', () => {
  const d = decideLeave({ ...base, localVms: ['web1'], ha: [rec('db', { owner: 'h2', state: 'stopped' })] });
  assert.ok(!d.ok);
  assert.match(d.error.message, /VMs run on it \(web1\), and it owns HA VMs \(db stopped\)/);
  const dead = decideLeave({ ...base, self: false, members: live('h1'), ha: [rec('a', { owner: 'h2' }), rec('b', { owner: 'h2', state: 'stopped' })] });
  assert.ok(!dead.ok);
  assert.match(dead.error.message, /has not restarted a elsewhere yet/);
  assert.doesNotMatch(dead.error.message, /\bb\b/, 'a stopped VM is no reason to refuse: it would be handed over');
});

test('a dead host\'s HA VMs that nobody restarts are handed over, stopped, placed like restarts: home first when it qualifies, else most free memory', () => {
  const ha = [
    rec('s1', { owner: 'h2', home: 'h2', state: 'stopped', moveTo: 'h3', failbackAt: 5, failedOn: ['h3'] }),
    rec('s2', { owner: 'h2', home: 'h1', state: 'stopped' }),
    rec('n1', { owner: 'h2', home: 'h2', restart: 'never', state: 'running' }),
    rec('n2', { owner: 'h2', home: 'h9', restart: 'never', state: 'failed' }),
    rec('v3', { owner: 'h1', home: 'h2' }),
  ];
  // By name (same priority): n1 and n2 (256 MiB each) to h3, which has the most room (1000 MiB,
  // then 744); s1 then to h1 (600 against 488); s2 home to h1, which still has room for it.
  const d = decideLeave({ ...base, self: false, by: 'h1', members: [member('h1', 600), member('h3', 1000)], ha });
  assert.ok(d.ok);
  assert.deepEqual(d.plan.handOver.map((e) => [e.rec.name, e.rev, e.from, e.rec.owner, e.rec.home, e.rec.state, e.rec.handedOverFrom]), [
    ['s1', 'r-s1', 'h2', 'h1', 'h1', 'stopped', 'h2'],
    ['s2', 'r-s2', 'h2', 'h1', 'h1', 'stopped', 'h2'],
    ['n1', 'r-n1', 'h2', 'h3', 'h3', 'stopped', 'h2'],
    ['n2', 'r-n2', 'h2', 'h3', 'h9', 'stopped', 'h2'],
  ]);
  const s1 = d.plan.handOver[0]?.rec;
  assert.ok(s1 && s1.moveTo === undefined && s1.failbackAt === undefined && s1.failedOn === undefined, 'no failback or failed start is carried over');
  assert.equal(s1.note, 'handed over, stopped, from h2, which left the cluster; start it on h1 (ferry vm start s1)');
  assert.deepEqual(d.plan.rehome.map((e) => [e.rec.name, e.rec.home]), [['v3', 'h1']], 'a VM handed over is not rehomed twice');
});

test('a hand-over counts room as it places, skips members in maintenance and keeps an anti-affinity group apart', () => {
  const stopped = (name: string, o: Partial<HaRecord> = {}): HaEntry => rec(name, { owner: 'h2', home: 'h2', state: 'stopped', ...o });
  const to = (members: MemberRecord[], ha: HaEntry[]): (string | undefined)[] => {
    const d = decideLeave({ ...base, self: false, members, ha });
    assert.ok(d.ok);
    return d.plan.handOver.map((e) => e.rec.owner);
  };
  assert.deepEqual(to([member('h1', 600), member('h3', 500)], [stopped('a'), stopped('b')]), ['h1', 'h3'], 'the first took h1\'s room');
  assert.deepEqual(to([member('h1', 600, true), member('h3', 300)], [stopped('a', { home: 'h1' })]), ['h3'], 'its home is in maintenance');
  assert.deepEqual(to([member('h1', 100), member('h3', 300)], [stopped('a', { home: 'h1' })]), ['h3'], 'its home lacks room');
  const grouped = (name: string, owner: string, state: HaRecord['state'] = 'stopped'): HaEntry => {
    const e = rec(name, { owner, home: owner, state });
    return { ...e, rec: { ...e.rec, spec: { ...e.rec.spec, group: 'db' } } };
  };
  assert.deepEqual(to([member('h1', 2000), member('h3', 500)], [grouped('db1', 'h1', 'running'), grouped('db2', 'h2')]), ['h3'], 'away from db1');
});

test('a hand-over nobody has room for still goes somewhere: a member outside maintenance first (home, asker, most free memory), and the note says why', () => {
  const stopped = (name: string, home: string): HaEntry => rec(name, { owner: 'h2', home, state: 'stopped' });
  const handOver = (members: MemberRecord[], ha: HaEntry[], by?: string): [string, string][] => {
    const d = decideLeave({ ...base, self: false, members, ha, ...(by ? { by } : {}) });
    assert.ok(d.ok);
    return d.plan.handOver.map((e) => [e.rec.owner, /\(([^()]*)\)$/.exec(e.rec.note ?? '')?.[1] ?? '']);
  };
  assert.deepEqual(handOver([member('h1', 100), member('h3', 50)], [stopped('a', 'h3'), stopped('b', 'h2')], 'h1'), [
    ['h3', 'no live host outside maintenance has 256 MiB free, so it went to its home'],
    ['h1', 'no live host outside maintenance has 256 MiB free, so it went to the member that asked'],
  ]);
  assert.deepEqual(handOver([member('h1', 100), member('h3', 2000, true)], [stopped('a', 'h3')], 'h1'), [
    ['h1', 'no live host outside maintenance has 256 MiB free, so it went to the member that asked'],
  ], 'not to its home in maintenance, where it could not be started');
  assert.deepEqual(handOver([member('h1', 2000, true), member('h3', 100), member('h4', 200)], [stopped('b', 'h2')], 'h1'), [
    ['h4', 'no live host outside maintenance has 256 MiB free, so it went to the member with the most free memory'],
  ], 'nor to the asker in maintenance');
  assert.deepEqual(handOver([member('h1', 2000, true), member('h3', 2000, true)], [stopped('a', 'h3'), stopped('b', 'h2')], 'h1'), [
    ['h3', 'no live host outside maintenance, so it went to its home'],
    ['h1', 'no live host outside maintenance, so it went to the member that asked'],
  ], 'all in maintenance');
  assert.deepEqual(handOver([member('h1', 0), member('h3', 10)], [stopped('n1', 'h2')]), [
    ['h3', 'no live host outside maintenance has 256 MiB free, so it went to the member with the most free memory'],
  ], 'without the asking member');
});

test('a handed-over VM\'s home that holds its anti-affinity group loses to a member that does not', () => {
  const grouped = (name: string, owner: string, home: string, state: HaRecord['state']): HaEntry => {
    const e = rec(name, { owner, home, state });
    return { ...e, rec: { ...e.rec, spec: { ...e.rec.spec, group: 'db' } } };
  };
  const d = decideLeave({ ...base, self: false, by: 'h1', members: [member('h1', 2000), member('h3', 500)], ha: [grouped('db1', 'h1', 'h1', 'running'), grouped('db2', 'h2', 'h1', 'stopped')] });
  assert.ok(d.ok);
  assert.deepEqual(d.plan.handOver.map((e) => [e.rec.name, e.rec.owner, e.rec.home]), [['db2', 'h3', 'h1']], 'its home stays h1 (failback goes there)');
});

test('a leave deletes the drain record and gives each VM whose home was the host its current host as home', () => {
  const ha = [
    rec('v1', { owner: 'h3', home: 'h2', failback: 'immediate', moveTo: 'h2', failbackAt: 5 }),
    rec('v2', { owner: 'h1', home: 'h1' }),
    rec('v3', { owner: 'h1', home: 'h2' }),
    rec('v4', { owner: 'h3', home: 'h1', moveTo: 'h2' }),
  ];
  for (const f of [{ ...base, drain: drained, ha }, { ...base, self: false, members: live('h1', 'h3'), drain: drained, ha }]) {
    const d = decideLeave(f);
    assert.ok(d.ok, `self ${f.self}`);
    assert.equal(d.plan.deleteDrainRev, '41');
    assert.deepEqual(d.plan.rehome.map((e) => [e.rec.name, e.rev, e.from, e.rec.home, e.rec.moveTo]), [
      ['v1', 'r-v1', 'h2', 'h3', undefined],
      ['v3', 'r-v3', 'h2', 'h1', undefined],
      ['v4', 'r-v4', 'h1', 'h1', undefined],
    ]);
    assert.equal(d.plan.rehome[0]?.rec.failbackAt, 5, 'the rest of the record is kept');
  }
});

test('a host with nothing in etcd may still leave when its own agent asks; a dead one known only as a home is taken out', () => {
  const d = decideLeave(base);
  assert.deepEqual(d.ok && d.plan, { rehome: [], handOver: [] });
  const dead = decideLeave({ ...base, self: false, members: live('h1'), ha: [rec('v', { owner: 'h1', home: 'h2' })] });
  assert.ok(dead.ok);
  assert.equal(dead.plan.deleteDrainRev, undefined);
  assert.deepEqual(dead.plan.rehome.map((e) => e.rec.home), ['h1']);
});

test('a host without a lease need not be drained: its agent runs nothing the cluster could send it', () => {
  const d = decideLeave({ ...base, self: false, members: live('h1', 'h3'), drain: { rev: '9', running: null }, localState: undefined });
  assert.ok(d.ok);
  assert.equal(d.plan.deleteDrainRev, '9');
});

test('localRefusal, asked again before the host forgets the cluster: what came meanwhile, or a resume, keeps it in', () => {
  const ok = { localState: 'drained', localVms: [], localHa: [] };
  assert.equal(localRefusal('h2', 'lab', ok), null);
  assert.equal(localRefusal('h2', 'lab', { ...ok, localState: 'active' })?.code, 'HOST_NOT_DRAINED');
  const e = localRefusal('h2', 'lab', { ...ok, localVms: ['web1'], localHa: ['web1', 'db'] });
  assert.equal(e?.code, 'HOST_NOT_EMPTY');
  assert.match(e?.message ?? '', /VMs run on it \(web1\), and HA VMs are defined on it \(db\)/);
});
