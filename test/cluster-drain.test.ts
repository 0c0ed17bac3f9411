// Integration: a drain in a cluster goes through the manager (issue 7, point 4). Three hosts on a
// 3-member etcd; h1 (the first to join) manages the cluster. h2 runs three VMs (one HA on the
// shared pool, two of one anti-affinity group). `ferry host drain h2` (asking h2's agent, as
// standalone) is recorded in etcd and run by h1: the VMs end on h1 and h3, each running once
// with the same boot id, the group apart, the HA record following; `host resume --failback`
// brings them back from the same ledger; a resume while the manager drains h2 stops the drain.
// Then h1, the manager, loses power (`lab kill-host`) while a drain move goes to it: that move
// fails and leaves its VM on h2, and the next manager plans it anew (to h3) and finishes the
// drain. Last, the
// drained h2 leaves the cluster (`ferry cluster leave`): with its agent down, another member
// removes its drain record; back and rejoined, h2 leaves by itself; h3's VMs run on untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LeaveResult } from '../src/agent/cluster-leave.js';
import type { ClusterStatus } from '../src/agent/cluster-link.js';
import type { HostView, VmView } from '../src/agent/views.js';
import type { MaintenanceView } from '../src/agent/maintenance.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labStatus } from '../src/lab/index.js';
import { ferry, guestGet, processAlive, waitFor } from './support/cli.js';
import { assertRunsOnce, waitGuest } from './support/invariants.js';
import { labSuite } from './support/suite.js';

const suite = labSuite('cd', { hosts: 3, lab: { cluster: true, readyTimeoutMs: 60_000 } });
const LAB = suite.name;
const { track } = suite;
const VMS = ['d1', 'd2', 'd3'];
const ip = new Map<string, string>();
const boot = new Map<string, string>();

/** The hosts whose agent log says it ran, as cluster manager, a drain of `drained` (with `continuing` when it took one up). */
function drainRunners(drained: string, continuing?: boolean): string[] {
  return ['h1', 'h2', 'h3'].filter((h) => readFileSync(join(suite.home, 'labs', LAB, h, 'ferryd.log'), 'utf8').split('\n')
    .some((l) => l.includes('"msg":"cluster manager: running a drain"') && l.includes(`"host":"${drained}"`)
      && (continuing === undefined || l.includes(`"continuing":${String(continuing)}`))));
}

async function status(): Promise<ClusterStatus> {
  const r = await ferry<ClusterStatus>(['cluster', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json;
}

async function hostShow(name: string): Promise<HostView> {
  const r = await ferry<HostView>(['host', 'show', name, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

/** The error code of a CLI run with --json that failed. */
const errorCode = (r: { code: number; json: unknown }): string | undefined => (r.code === 0 ? undefined : (r.json as { error?: { code?: string } } | undefined)?.error?.code);

const ledger = (m: MaintenanceView): Record<string, string> => Object.fromEntries(m.vms.map((e) => [e.vm, `${e.status} ${e.destination ?? ''}`.trim()]));
const bootId = async (vm: string): Promise<string> => (await guestGet(LAB, ip.get(vm) ?? '', '/boot-id', 5)).trim();

/** Each VM runs exactly once, on `where(vm)`, and its guest never rebooted. */
async function runOnce(where: (vm: string) => string): Promise<void> {
  for (const vm of VMS) {
    await assertRunsOnce(LAB, vm, where(vm));
    assert.equal(await bootId(vm), boot.get(vm), `${vm} moved live (same /boot-id)`);
  }
}

test('drain through the manager: h2\'s VMs move to h1 and h3, each once, h2 drained; resume --failback brings them back', track(async (t) => {
  const s = await waitFor('three members and a manager', async () => { const x = await status(); return x.members.length === 3 && x.manager ? x : undefined; });
  assert.equal(s.manager, 'h1', 'h1, the first to join, manages the cluster');
  const mk = async (name: string, extra: string[]): Promise<void> => {
    const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h2', '--memory', '160M', ...extra, '--json']);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    ip.set(name, r.json.ip);
  };
  await mk('d1', ['--pool', 'shared', '--disk', '64M', '--ha']);
  await mk('d2', ['--group', 'web']);
  await mk('d3', ['--group', 'web']);
  for (const vm of VMS) { await waitGuest(LAB, ip.get(vm) ?? ''); boot.set(vm, await bootId(vm)); }

  // `vm set`: an HA VM's policies change in its etcd record; a plain VM has none; a group comes and goes.
  type SetJson = { vm: VmView; ha: { priority: number; restart: string; failback: string } | null };
  const set = await ferry<SetJson>(['vm', 'set', 'd1', '--priority', '7', '--restart', 'never', '--json']);
  assert.equal(set.code, 0, set.stderr || set.stdout);
  assert.deepEqual(set.json.ha, { priority: 7, restart: 'never', failback: 'none' });
  const d1 = (await status()).haVms.find((v) => v.name === 'd1');
  assert.deepEqual([d1?.priority, d1?.restart, d1?.failback], [7, 'never', 'none'], 'the cluster holds the new policies');
  assert.equal((await ferry(['vm', 'set', 'd1', '--priority', '0', '--restart', 'always', '--json'])).code, 0);
  assert.equal(errorCode(await ferry(['vm', 'set', 'd2', '--priority', '1', '--json'])), 'VM_NOT_HA');
  assert.equal((await ferry<SetJson>(['vm', 'set', 'd3', '--no-group', '--json'])).json.vm.group, null);
  assert.equal((await ferry<SetJson>(['vm', 'set', 'd3', '--group', 'web', '--json'])).json.vm.group, 'web');

  const manager = (await status()).manager;
  const t0 = Date.now();
  const r = await ferry(['host', 'drain', 'h2']);
  t.diagnostic(`drain took ${((Date.now() - t0) / 1000).toFixed(1)} s, exit ${r.code}; stderr: ${r.stderr.trim().replace(/\n\s*/g, ' | ')}`);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.match(r.stdout, /h2: drained/);
  assert.deepEqual(drainRunners('h2'), [manager], 'the cluster manager ran the drain, nobody else');
  for (const vm of VMS) assert.match(r.stderr, new RegExp(`${vm}: moved \\(→ h[13]\\)`), 'progress per VM, as standalone');
  const h2 = await hostShow('h2');
  assert.equal(h2.state, 'drained');
  assert.equal(h2.maintenance.running, null);
  assert.equal(h2.maintenance.lastRun?.error, null);
  const to = new Map(h2.maintenance.vms.map((e) => [e.vm, e.destination ?? '']));
  for (const vm of VMS) assert.equal(h2.maintenance.vms.find((e) => e.vm === vm)?.status, 'moved');
  assert.notEqual(to.get('d2'), to.get('d3'), 'the anti-affinity group is kept apart');
  await runOnce((vm) => to.get(vm) ?? '');
  assert.equal((await status()).haVms.find((v) => v.name === 'd1')?.owner, to.get('d1'), 'the HA record follows the move');

  const back = await ferry<MaintenanceView>(['host', 'resume', 'h2', '--failback', '--json']);
  assert.equal(back.code, 0, back.stderr || back.stdout);
  assert.deepEqual(Object.values(ledger(back.json)).map((l) => l.split(' ')[0]), ['returned', 'returned', 'returned']);
  await runOnce(() => 'h2');
  assert.equal((await hostShow('h2')).state, 'ready');
  assert.equal((await status()).haVms.find((v) => v.name === 'd1')?.owner, 'h2');
}));

test('a resume while the manager drains h2 stops the drain: the moves not past their switch-over are cancelled, --force stops none of those VMs', track(async (t) => {
  assert.equal((await ferry(['host', 'settings', 'h2', '--max-migrations', '1', '--json'])).code, 0);
  const r = await ferry<MaintenanceView>(['host', 'drain', 'h2', '--force', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitFor('a drain move under way', async () => (await hostShow('h2')).maintenance.vms.some((e) => e.status === 'moving' && e.jobId), 60_000);
  const back = await ferry<MaintenanceView>(['host', 'resume', 'h2', '--json']);
  assert.equal(back.code, 0, back.stderr || back.stdout);
  t.diagnostic(`ledger after the resume: ${JSON.stringify(ledger(back.json))}`);
  assert.ok(back.json.vms.some((e) => e.status === 'blocked'), 'at least the queued moves were cancelled');
  const h2 = await hostShow('h2');
  assert.equal(h2.state, 'ready');
  assert.equal(h2.maintenance.running, null);
  assert.deepEqual((await status()).drains, [], 'the drain record left etcd');
  for (const e of back.json.vms) {
    assert.ok(e.status === 'moved' || (e.status === 'blocked' && e.error?.code === 'MIGRATION_CANCELLED'), `${e.vm}: ${e.status} ${e.error?.code ?? ''}`);
    await assertRunsOnce(LAB, e.vm, e.status === 'moved' ? e.destination ?? '' : 'h2');
    assert.equal(await bootId(e.vm), boot.get(e.vm), `${e.vm} never rebooted`);
    // Back to h2 for the next test.
    if (e.status === 'moved') assert.equal((await ferry(['move', e.vm, '--to', 'h2', '--json'])).code, 0);
  }
  await runOnce(() => 'h2');
}));

test('the manager\'s host loses power while a drain move goes to it: the move fails, its VM stays on h2, and the next manager plans it anew', track(async (t) => {
  // A ballast of no group leaves h1 less free memory than h3, so d1 and d2 go to h3 and the group
  // web sends d3 to h1, the manager. h2 moves one VM at a time at 20 MiB/s; d3's guest dirties
  // memory faster than that, so its move stays in perform until h1 loses power (agent, QEMUs).
  assert.equal((await ferry(['vm', 'create', 'ballast', '--host', 'h1', '--memory', '4608M', '--json'])).code, 0);
  assert.equal((await ferry(['host', 'settings', 'h2', '--max-migrations', '1', '--max-bandwidth', '20M/s', '--json'])).code, 0);
  assert.equal((await status()).manager, 'h1');
  assert.equal((await guestGet(LAB, ip.get('d3') ?? '', '/dirty?mbps=40')).trim(), 'ok');
  const r = await ferry<MaintenanceView>(['host', 'drain', 'h2', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.state, 'draining');
  assert.equal(r.json.running?.operation, 'drain');
  const toH1 = await waitFor('d3\'s move to h1 in its perform phase', async () => {
    const e = (await hostShow('h2')).maintenance.vms.find((x) => x.vm === 'd3' && x.status === 'moving' && x.jobId);
    if (!e?.jobId) return undefined;
    assert.equal(e.destination, 'h1', 'the group web sends d3 to h1');
    const j = await ferry<{ status: string; phase: string }>(['migration', 'show', e.jobId, '--json']);
    return j.json?.status === 'running' && j.json.phase === 'perform' ? { ...e, jobId: e.jobId } : undefined;
  }, 90_000);
  const t0 = Date.now();
  assert.equal((await suite.lab(['kill-host', 'h1'])).code, 0);
  t.diagnostic(`h1 lost power while d3 moved to it (job ${toH1.jobId}); ledger then ${JSON.stringify(ledger((await hostShow('h2')).maintenance))}`);
  assert.equal((await guestGet(LAB, ip.get('d3') ?? '', '/dirty?mbps=0')).trim(), 'ok', 'd3 still runs on h2');
  const failed = await waitFor('d3\'s move to h1 ended', async () => {
    const j = await ferry<{ status: string; error?: { code: string } }>(['migration', 'show', toH1.jobId, '--json']);
    return j.json?.status === 'failed' || j.json?.status === 'completed' ? j.json : undefined;
  }, 60_000);
  assert.equal(failed.status, 'failed', `the move to the dead host failed: ${JSON.stringify(failed.error)}`);
  const done = await waitFor('h2 drained, its run ended', async () => {
    const h = await hostShow('h2');
    return h.maintenance.running === null ? h : undefined;
  }, 150_000);
  const s = await status();
  t.diagnostic(`the drain ended ${((Date.now() - t0) / 1000).toFixed(1)} s after h1 lost power; manager now ${s.manager}; ledger ${JSON.stringify(ledger(done.maintenance))}`);
  assert.ok(s.manager === 'h2' || s.manager === 'h3', `a new manager: ${s.manager}`);
  assert.ok(drainRunners('h2', true).includes(s.manager ?? ''), 'the new manager took the drain up where the dead one left it');
  assert.equal(done.state, 'drained');
  assert.equal(done.maintenance.lastRun?.error, null);
  assert.deepEqual(ledger(done.maintenance), { d1: 'moved h3', d2: 'moved h3', d3: 'moved h3' }, 'd3, on its way to h1, was placed anew on h3');
  assert.equal(s.haVms.find((v) => v.name === 'd1')?.owner, 'h3');
  assert.equal((await ferry(['host', 'settings', 'h2', '--max-bandwidth', 'none', '--json'])).code, 0);
  // h1 back (rebooted: its ballast did not survive), so that every host answers for the invariant.
  assert.equal((await suite.lab(['up', '--json'])).code, 0);
  await runOnce(() => 'h3');
  assert.equal((await ferry(['vm', 'delete', 'ballast', '--json'])).code, 0);
}));

test('the drained h2 leaves the cluster: down, a member removes its records; back, it leaves by itself; h3\'s VMs run on', track(async (t) => {
  const t0 = Date.now();
  assert.equal(errorCode(await ferry(['cluster', 'leave', 'h3', '--json'])), 'HOST_NOT_DRAINED', 'h3 is in service (it runs VMs and owns d1)');
  // h2 gets an HA VM the cluster does not restart (restart never), stopped by a user, then is drained again.
  assert.equal((await ferry(['host', 'resume', 'h2', '--json'])).code, 0);
  await waitFor('h2 back in service', async () => (await hostShow('h2')).state === 'ready', 30_000);
  const s1 = await ferry<VmView>(['vm', 'create', 's1', '--host', 'h2', '--memory', '160M', '--disk', '64M', '--pool', 'shared', '--ha', '--restart', 'never', '--json']);
  assert.equal(s1.code, 0, s1.stderr || s1.stdout);
  await waitGuest(LAB, s1.json.ip);
  const s1Boot = (await guestGet(LAB, s1.json.ip, '/boot-id', 5)).trim();
  assert.equal((await ferry(['vm', 'stop', 's1', '--json'])).code, 0);
  assert.equal((await ferry(['host', 'drain', 'h2', '--json'])).code, 0);
  await waitFor('h2 drained', async () => (await hostShow('h2')).state === 'drained', 60_000);
  // h2's agent dies (h2 runs no VM). While its lease lives, only h2 itself could leave.
  const pid = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2')?.agentPid;
  assert.ok(pid, 'h2 has an agent');
  process.kill(pid, 'SIGKILL');
  await waitFor('h2\'s agent gone', async () => !processAlive(pid), 15_000);
  assert.equal(errorCode(await ferry(['cluster', 'leave', 'h2', '--json'])), 'MEMBER_ALIVE');
  const before = await waitFor('h2\'s lease expired', async () => { const s = await status(); return s.members.some((m) => m.name === 'h2') ? undefined : s; }, 30_000);
  assert.deepEqual(before.drains.map((d) => `${d.host} ${d.state}`), ['h2 drained'], 'etcd keeps the drain record of h2, which is gone');
  const gone = await ferry<LeaveResult>(['cluster', 'leave', 'h2', '--json']);
  assert.equal(gone.code, 0, gone.stderr || gone.stdout);
  // s1 goes, stopped, to the live member with the most free memory (h1 or h3), not necessarily the one that wrote the leave.
  const taker = gone.json.handedOver[0]?.to ?? '';
  assert.deepEqual({ ...gone.json, by: '' }, { cluster: 'lab', host: 'h2', by: '', self: false, drainRemoved: true, homes: [], handedOver: [{ vm: 's1', from: 'h2', to: taker }] });
  assert.ok(['h1', 'h3'].includes(taker) && ['h1', 'h3'].includes(gone.json.by), `${taker} took s1, ${gone.json.by} wrote the leave`);
  const after = await status();
  assert.deepEqual(after.drains, []);
  assert.deepEqual(after.members.map((m) => m.name).sort(), ['h1', 'h3']);
  assert.ok(after.haVms.every((v) => v.owner !== 'h2' && v.home !== 'h2'), 'no HA record names h2');
  // The member that took s1 over recorded it, stopped; a user starts it there, from its disk on the shared pool.
  await waitFor(`s1 recorded on ${taker}`, async () => (await ferry<VmView>(['vm', 'show', 's1', '--json'])).json?.host === taker, 15_000);
  const started = await ferry<VmView>(['vm', 'start', 's1', '--json']);
  assert.equal(started.code, 0, started.stderr || started.stdout);
  await waitGuest(LAB, s1.json.ip);
  assert.notEqual((await guestGet(LAB, s1.json.ip, '/boot-id', 5)).trim(), s1Boot, 's1 booted anew on its new host');
  assert.equal((await guestGet(LAB, s1.json.ip, '/disk/verify', 5)).trim(), 'ok', 'from the disk it had on h2');
  // h2 comes back: it rejoins the cluster it remembers, drained (its own state), and leaves by itself.
  assert.equal((await suite.lab(['up', '--json'])).code, 0);
  await waitFor('h2 a member again', async () => (await status()).members.some((m) => m.name === 'h2'), 30_000);
  assert.equal((await hostShow('h2')).state, 'drained');
  // h2 forgets its stale copy of s1, which another member owns now (its disk stays: it is that member's).
  await waitFor('h2 forgot s1', async () => !(await ferry<VmView[]>(['vm', 'list', '--json'])).json.some((v) => v.name === 's1' && v.host === 'h2'), 30_000);
  const self = await ferry<LeaveResult>(['cluster', 'leave', 'h2', '--json']);
  assert.equal(self.code, 0, self.stderr || self.stdout);
  assert.deepEqual(self.json, { cluster: 'lab', host: 'h2', by: 'h2', self: true, drainRemoved: false, homes: [], handedOver: [] });
  const last = await status();
  assert.deepEqual([last.members.map((m) => m.name).sort(), last.drains], [['h1', 'h3'], []], 'h2 is no member: its lease was revoked');
  assert.equal(errorCode(await ferry(['cluster', 'status', '--host', 'h2', '--json'])), 'NOT_IN_CLUSTER', 'h2 is standalone');
  assert.equal(errorCode(await ferry(['cluster', 'leave', 'h2', '--json'])), 'NOT_IN_CLUSTER', 'leaving twice');
  t.diagnostic(`the leaves took ${((Date.now() - t0) / 1000).toFixed(1)} s, h2's lease expiry and agent restart included`);
  await runOnce(() => 'h3');
  await assertRunsOnce(LAB, 's1', taker);
  assert.equal((await guestGet(LAB, s1.json.ip, '/disk/verify', 5)).trim(), 'ok');
}));
