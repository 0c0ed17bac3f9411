// Integration: host drain and maintenance (issue 7, point 1, standalone). h1 runs three VMs: two
// small ones of one anti-affinity group and one too big for h2 (a ballast VM on h2 leaves it less
// memory free than the big one needs). `ferry host drain h1` moves the two, reports the third
// with INSUFFICIENT_MEMORY, leaves h1 draining and exits non-zero; `--force` stops the third and
// h1 is drained; the drained h1 refuses a new VM, starting a VM and an incoming move; `ferry host
// resume h1 --failback` starts the stopped VM again and moves the other two back. Then h1's agent
// is killed during a drain: h1 stays draining, and draining again continues. Last, a resume while a
// drain runs stops it: its moves are cancelled and --force stops none of those VMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostView, VmView } from '../src/agent/views.js';
import type { MaintenanceView } from '../src/agent/maintenance.js';
import { labSuite } from './support/suite.js';
import { ferry, processAlive, waitFor } from './support/cli.js';
import { labStatus } from '../src/lab/index.js';
import { assertGuestIntact, assertRunsOnce, guestState, waitGuest, type GuestState } from './support/invariants.js';

const suite = labSuite('hd');
const LAB = suite.name;
const { track } = suite;

type Failure = { error: { code: string; message: string; details?: { maintenance?: MaintenanceView; incompatibilities?: { code: string }[] } } };
type DrainJson = { host: string } & MaintenanceView;

const guests = new Map<string, { ip: string; before: GuestState }>();

async function createVm(name: string, host: string, memory: string, extra: string[] = []): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', host, '--memory', memory, ...extra, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  guests.set(name, { ip: r.json.ip, before: await guestState(LAB, r.json.ip) });
  return r.json;
}

const statusOf = (m: MaintenanceView): Record<string, string> => Object.fromEntries(m.vms.map((e) => [e.vm, `${e.status}${e.destination ? ` ${e.destination}` : ''}`]));

async function hostShow(name: string): Promise<HostView> {
  const r = await ferry<HostView>(['host', 'show', name, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

test('drain of 3 VMs where one cannot move: two move, the third is reported, h1 stays draining, exit non-zero', track(async (t) => {
  await createVm('ballast', 'h2', '4608M');
  await createVm('da', 'h1', '192M', ['--group', 'web']);
  await createVm('db', 'h1', '192M', ['--group', 'web']);
  await createVm('big', 'h1', '4096M');
  const t0 = Date.now();
  const r = await ferry<Failure>(['host', 'drain', 'h1', '--json']);
  t.diagnostic(`drain took ${Date.now() - t0} ms, exit ${r.code}: ${r.stdout.slice(0, 400)}`);
  assert.notEqual(r.code, 0, 'a drain that leaves a VM behind fails');
  assert.equal(r.json.error.code, 'DRAIN_INCOMPLETE', r.stdout);
  assert.match(r.json.error.message, /big: INSUFFICIENT_MEMORY/);
  const m = r.json.error.details?.maintenance;
  assert.ok(m);
  assert.deepEqual(statusOf(m), { big: 'blocked', da: 'moved h2', db: 'moved h2' });
  assert.equal(m.vms.find((e) => e.vm === 'big')?.error?.code, 'INSUFFICIENT_MEMORY');
  assert.equal(m.state, 'draining');
  await assertRunsOnce(LAB, 'da', 'h2');
  await assertRunsOnce(LAB, 'db', 'h2');
  await assertRunsOnce(LAB, 'big', 'h1');
  for (const n of ['da', 'db']) { const g = guests.get(n); assert.ok(g); await assertGuestIntact(LAB, g.ip, g.before); }
  const h1 = await hostShow('h1');
  assert.equal(h1.state, 'draining');
  assert.equal(h1.maintenance.state, 'draining');
  const list = await ferry<HostView[]>(['host', 'list', '--json']);
  assert.deepEqual(list.json.map((h) => [h.name, h.state]), [['h1', 'draining'], ['h2', 'ready']]);
}));

test('drain --force stops the VM that cannot move; h1 is drained and refuses new VMs, starts and incoming moves', track(async () => {
  const r = await ferry<DrainJson>(['host', 'drain', 'h1', '--force', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.state, 'drained');
  assert.deepEqual(statusOf(r.json), { big: 'stopped', da: 'moved h2', db: 'moved h2' });
  const big = await ferry<VmView>(['vm', 'show', 'big', '--json']);
  assert.equal(big.json.state, 'stopped');
  assert.equal(big.json.host, 'h1');
  assert.equal((await hostShow('h1')).state, 'drained');

  const create = await ferry<Failure>(['vm', 'create', 'late', '--host', 'h1', '--memory', '128M', '--json']);
  assert.notEqual(create.code, 0);
  assert.equal(create.json.error.code, 'HOST_IN_MAINTENANCE', create.stdout);
  const start = await ferry<Failure>(['vm', 'start', 'big', '--json']);
  assert.equal(start.json.error.code, 'HOST_IN_MAINTENANCE', start.stdout);

  const move = await ferry<Failure>(['move', 'da', '--to', 'h1', '--json']);
  assert.notEqual(move.code, 0);
  assert.equal(move.json.error.code, 'INCOMPATIBLE', move.stdout);
  assert.deepEqual(move.json.error.details?.incompatibilities?.map((p) => p.code), ['HOST_IN_MAINTENANCE']);
  const cmp = await ferry<{ compatible: boolean; incompatibilities: { code: string }[] }>(['compare', 'da', '--to', 'h1', '--json']);
  assert.equal(cmp.code, 1);
  assert.deepEqual(cmp.json.incompatibilities.map((p) => p.code), ['HOST_IN_MAINTENANCE']);
  await assertRunsOnce(LAB, 'da', 'h2');
}));

test('resume --failback: h1 takes VMs again, the stopped VM starts, the moved ones come back', track(async () => {
  const r = await ferry<DrainJson>(['host', 'resume', 'h1', '--failback', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.state, 'active');
  assert.deepEqual(statusOf(r.json), { big: 'returned', da: 'returned h2', db: 'returned h2' });
  for (const n of ['da', 'db', 'big']) await assertRunsOnce(LAB, n, 'h1');
  for (const n of ['da', 'db']) { const g = guests.get(n); assert.ok(g); await assertGuestIntact(LAB, g.ip, g.before); }
  assert.equal((await hostShow('h1')).state, 'ready');
}));

test('the agent restarts mid-drain: h1 stays draining, and draining again continues', track(async (t) => {
  assert.equal((await ferry(['host', 'settings', 'h1', '--max-migrations', '1', '--json'])).code, 0);
  const r = await ferry<DrainJson>(['host', 'drain', 'h1', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.state, 'draining');
  // Killed while the first move runs (one at a time: the other waits queued).
  await waitFor('a drain move under way', async () => (await hostShow('h1')).maintenance.vms.some((e) => e.status === 'moving' && e.jobId), 60_000);
  const pid = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.agentPid;
  assert.ok(pid, 'h1 has an agent');
  process.kill(pid, 'SIGKILL');
  await waitFor('h1\'s agent gone', async () => !processAlive(pid), 15_000);
  assert.equal((await suite.lab(['up', '--json'])).code, 0);
  const after = await hostShow('h1');
  t.diagnostic(`after the restart: ${after.state}, ${JSON.stringify(statusOf(after.maintenance))}`);
  assert.equal(after.state, 'draining', 'the state survives the restart');
  assert.equal(after.maintenance.running, null);
  // Migration recovery settles the interrupted move (forward or back) before the VM moves again.
  await waitFor('no VM migrating', async () => {
    const vms = await ferry<VmView[]>(['vm', 'list', '--json']);
    return vms.code === 0 && vms.json.every((v) => v.state !== 'migrating');
  }, 120_000);
  const again = await ferry<Failure>(['host', 'drain', 'h1', '--json']);
  assert.equal(again.json.error.code, 'DRAIN_INCOMPLETE', again.stdout);
  const m = again.json.error.details?.maintenance;
  assert.ok(m);
  assert.deepEqual(statusOf(m), { big: 'blocked', da: 'moved h2', db: 'moved h2' });
  await assertRunsOnce(LAB, 'da', 'h2');
  await assertRunsOnce(LAB, 'db', 'h2');
  await assertRunsOnce(LAB, 'big', 'h1');
  for (const n of ['da', 'db']) { const g = guests.get(n); assert.ok(g); await assertGuestIntact(LAB, g.ip, g.before); }
  assert.equal((await ferry(['host', 'resume', 'h1', '--json'])).code, 0);
  for (const n of ['da', 'db', 'big', 'ballast']) assert.equal((await ferry(['vm', 'delete', n])).code, 0);
}));

test('a resume while the drain runs stops it: moves not past their switch-over are cancelled, --force stops none of those VMs, h1 is back in service', track(async (t) => {
  for (const n of ['ra', 'rb', 'rc']) await createVm(n, 'h1', '160M');
  assert.equal((await ferry(['host', 'settings', 'h1', '--max-migrations', '1', '--json'])).code, 0);
  const r = await ferry<DrainJson>(['host', 'drain', 'h1', '--force', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitFor('a drain move under way', async () => (await hostShow('h1')).maintenance.vms.some((e) => e.status === 'moving' && e.jobId), 60_000);
  const back = await ferry<DrainJson>(['host', 'resume', 'h1', '--json']);
  assert.equal(back.code, 0, back.stderr || back.stdout);
  assert.equal(back.json.state, 'active');
  const ledger = statusOf(back.json);
  t.diagnostic(`ledger after the resume: ${JSON.stringify(ledger)}`);
  const kept = back.json.vms.filter((e) => e.status === 'blocked');
  assert.ok(kept.length >= 1, 'at least the queued moves were cancelled');
  for (const e of back.json.vms) {
    assert.ok(e.status === 'moved' || (e.status === 'blocked' && e.error?.code === 'MIGRATION_CANCELLED'), `${e.vm}: ${e.status} ${e.error?.code ?? ''}`);
    await assertRunsOnce(LAB, e.vm, e.status === 'moved' ? 'h2' : 'h1');
    const g = guests.get(e.vm);
    assert.ok(g);
    await assertGuestIntact(LAB, g.ip, g.before);
  }
  const h1 = await hostShow('h1');
  assert.equal(h1.state, 'ready');
  assert.equal(h1.maintenance.running, null);
  assert.ok((await ferry(['vm', 'create', 'rd', '--host', 'h1', '--memory', '128M', '--json'])).code === 0, 'h1 takes new VMs again');
  for (const n of ['ra', 'rb', 'rc', 'rd']) assert.equal((await ferry(['vm', 'delete', n])).code, 0);
}));
