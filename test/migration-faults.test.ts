// Integration: an agent SIGKILLed in each phase of a move (the fault-injection hook,
// src/migration/faults.ts), restarted by `ferry lab up`, recovers the job from its persisted
// phase. Whatever the outcome, the VM runs on exactly one host — never twice, never nowhere —
// and the guest is intact. Each case has its own VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findHost, killHost, labStatus } from '../src/lab/index.js';
import { defaultAgentEntry, startAgent } from '../src/lab/agents.js';
import { labDir } from '../src/util/paths.js';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, processAlive, waitFor } from './support/cli.js';
import {
  agentCall, agentGet, armFault, assertGuestIntact, assertRolledBack, assertRunsOnce, beforeMove, qemuPids, runFolder, vmsByHost, waitGuest,
} from './support/invariants.js';

const outcomes: string[] = [];
const suite = labSuite('mf', { beforeStop: () => { if (outcomes.length) process.stdout.write(`# agent SIGKILL outcomes:\n${outcomes.map((o) => `#   ${o}`).join('\n')}\n`); } });
const LAB = suite.name;
const { lab, track } = suite;

interface JobJson {
  id: string; vm: string; source: string; destination: string; status: string; phase: string; role: string;
  totalMs: number | null; downtimeMs: number | null; error?: { code: string; message: string };
}

const POINTS = [
  'source:prepare', 'source:perform', 'source:finish', 'source:confirm',
  'destination:prepare', 'destination:perform', 'destination:finish',
] as const;

const ENDED = (s: string): boolean => s !== 'running' && s !== 'queued';

/** Every host's listing of the VM and every live QEMU carrying its uuid, in one line. */
async function describePlacement(vm: string, uuid: string): Promise<string> {
  const parts: string[] = [];
  for (const [host, vms] of await vmsByHost(LAB).catch(() => new Map<string, VmView[]>())) {
    for (const v of vms.filter((x) => x.name === vm)) parts.push(`${host}: ${v.state} pid ${v.pid}`);
  }
  if (parts.length === 0) parts.push('listed by no host');
  parts.push(`live QEMUs with its uuid: [${qemuPids(uuid).join(', ')}]`);
  return parts.join('; ');
}

/** The job of `vm` as its source reports it (for when the agent died before it answered `move`). */
async function jobOf(vm: string): Promise<JobJson | undefined> {
  const r = await ferry<JobJson[]>(['migration', 'list', '--json']);
  return r.code === 0 ? r.json.find((j) => j.vm === vm) : undefined;
}

/**
 * Makes the next case independent of what an earlier (failed) one left behind: deletes every VM
 * any host still lists, on that host. Returns what it removed, for the diagnostics.
 */
async function cleanLab(): Promise<string[]> {
  const removed: string[] = [];
  for (const h of (await labStatus(LAB)).hosts) {
    if (!h.agentPid) continue;
    for (const v of await agentGet<VmView[]>(h.socket, '/v1/vms')) {
      await agentCall(h.socket, 'DELETE', `/v1/vms/${v.name}`).catch(() => undefined);
      removed.push(`${v.name}@${h.name} (${v.state})`);
    }
  }
  return removed;
}

for (const point of POINTS) {
  test(`agent SIGKILL at ${point}: recovered after restart, the VM runs on exactly one host`, track(async (t) => {
    const leftovers = await cleanLab();
    if (leftovers.length) t.diagnostic(`removed what earlier cases left: ${leftovers.join(', ')}`);
    const name = `k-${point.replace(':', '-')}`;
    const [side] = point.split(':');
    const victim = side === 'source' ? 'h1' : 'h2';
    const created = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--json']);
    assert.equal(created.code, 0, created.stderr || created.stdout);
    const ip = created.json.ip;
    await waitGuest(LAB, ip);
    assert.equal((await guestGet(LAB, ip, '/dirty?mbps=5')).trim(), 'ok');
    const b = await beforeMove(LAB, name, 'h2');
    const agentPid = (await labStatus(LAB)).hosts.find((h) => h.name === victim)?.agentPid;
    assert.ok(agentPid, `${victim} has an agent`);
    const faults = join(labDir(LAB), victim, 'faults.json');
    armFault(LAB, victim, point);
    try {
      const t0 = Date.now();
      const started = await ferry<{ id: string }>(['move', name, '--to', 'h2', '--no-wait', '--json']);
      // The agent may die before it answers (then the CLI cannot reach it); any other error is a failure.
      if (started.code !== 0 && !/AGENT_UNREACHABLE/.test(started.stdout + started.stderr)) {
        assert.fail(`ferry move failed: ${started.stderr}${started.stdout}`);
      }
      const h1Socket = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.socket ?? '';
      for (const end = Date.now() + 60_000; processAlive(agentPid); await new Promise((r) => setTimeout(r, 250))) {
        if (Date.now() > end) assert.fail(`${victim}'s agent did not die at ${point} within 60 s`);
        // The move may end without ever reaching the point: say so at once, with how it ended.
        const j = started.json?.id ? await agentGet<JobJson>(h1Socket, `/v1/migrations/${started.json.id}`).catch(() => undefined) : undefined;
        if (j && ENDED(j.status) && processAlive(agentPid)) {
          assert.fail(`the move ended ${j.status}${j.error ? ` (${j.error.code}: ${j.error.message})` : ''} before reaching ${point}`);
        }
      }
      const diedMs = Date.now() - t0;
      const up = await lab(['up', '--json']);
      assert.equal(up.code, 0, up.stderr);
      const id = started.json?.id ?? (await waitFor(`the job of ${name}`, () => jobOf(name), 15_000)).id;
      // Give the job 60 s to end; whatever happens, report where the VM is before judging.
      const problems: Error[] = [];
      let job = await waitFor(`job ${id} no longer running`, async () => {
        const j = await ferry<JobJson>(['migration', 'show', id, '--json']);
        return j.code === 0 && ENDED(j.json.status) ? j.json : undefined;
      }, 60_000).catch((e: Error) => { problems.push(e); return undefined; });
      job ??= (await ferry<JobJson>(['migration', 'show', id, '--json'])).json;
      // Both ends settle: the other host's record of the job ends too (or it never had one).
      const records: string[] = [];
      for (const h of (await labStatus(LAB)).hosts) {
        const get = (): Promise<JobJson> => agentGet<JobJson>(h.socket, `/v1/migrations/${id}`)
          .catch((e: Error) => (/ 404 /.test(e.message) ? { status: 'none' } as JobJson : Promise.reject(e)));
        const rec = await waitFor(`${h.name}'s record of ${id} ended`, async () => { const j = await get(); return ENDED(j.status) ? j : undefined; }, 30_000)
          .catch(async (e: Error) => { problems.push(e); return get().catch(() => ({ status: 'unreachable' }) as JobJson); });
        records.push(`${h.name} ${rec.status}${rec.phase && !ENDED(rec.status) ? ` in ${rec.phase}` : ''}`);
      }
      const where = await assertRunsOnce(LAB, name).catch((e: Error) => e);
      const placement = where instanceof Error ? `INVARIANT BROKEN: ${where.message.split('\n')[0]} [${await describePlacement(name, created.json.uuid)}]`
        : `${where.host} (${where.pid === b.pid ? 'same QEMU' : 'new QEMU'})`;
      const line = `${point}: agent died ${diedMs} ms after move; job ${job?.status ?? '?'}` +
        `${job?.error ? ` ${job.error.code} "${job.error.message}"` : ''} (in ${job?.phase ?? '?'}); records: ${records.join(', ')}; VM on ${placement}`;
      outcomes.push(line);
      t.diagnostic(line);
      if (where instanceof Error) throw where;
      if (problems.length) throw problems[0];
      assert.ok(job);
      // Where the VM is must agree with what the job says.
      if (job.status === 'completed') {
        assert.equal(where.host, 'h2', 'a completed move leaves the VM on the destination');
        assert.equal(existsSync(runFolder(LAB, 'h1', name)), false, 'the source let go of its run folder');
        await assertGuestIntact(LAB, ip, b.guest);
      } else {
        assert.equal(where.host, 'h1', `a ${job.status} move leaves the VM on the source`);
        assert.match(job.error?.code ?? '', /^[A-Z_]+$/, 'a failed move says why with a code');
        await assertRolledBack(LAB, name, b);
      }
    } finally {
      rmSync(faults, { force: true });
      if (!(await labStatus(LAB)).hosts.every((h) => h.agentPid)) await lab(['up']);
      await ferry(['vm', 'delete', name]);
    }
  }));
}

/** A clean lab with a fresh 256 MiB VM `name` on h1 whose guest answers, and what it was before a move to h2. */
async function freshVmOnH1(name: string, extra: string[] = []): Promise<{ ip: string; uuid: string; b: Awaited<ReturnType<typeof beforeMove>> }> {
  await cleanLab();
  const created = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', ...extra, '--json']);
  assert.equal(created.code, 0, created.stderr || created.stdout);
  const ip = created.json.ip;
  await waitGuest(LAB, ip);
  return { ip, uuid: created.json.uuid, b: await beforeMove(LAB, name, 'h2') };
}

/**
 * Moves `name` (fresh on h1) to h2 and loses h2 right after it resumed the VM: its agent dies at
 * destination:finish-resumed, then the whole host goes, its QEMU that ran the VM too. Then the
 * source's agent dies and comes back alone. The caller's `finally` removes the fault and brings the lab up.
 */
async function loseDestinationAfterResume(name: string, restartSource = true, moveArgs: string[] = []): Promise<{ id: string; h1Socket: string }> {
  const st = await labStatus(LAB);
  const h1Pid = st.hosts.find((h) => h.name === 'h1')?.agentPid;
  const h2Pid = st.hosts.find((h) => h.name === 'h2')?.agentPid;
  assert.ok(h1Pid && h2Pid);
  armFault(LAB, 'h2', 'destination:finish-resumed');
  const started = await ferry<{ id: string }>(['move', name, '--to', 'h2', ...moveArgs, '--no-wait', '--json']);
  assert.equal(started.code, 0, started.stderr || started.stdout);
  await waitFor('h2\'s agent died at destination:finish-resumed', async () => (processAlive(h2Pid) ? undefined : true), 60_000);
  await killHost(LAB, 'h2');
  if (restartSource) {
    process.kill(h1Pid, 'SIGKILL');
    await waitFor('h1\'s agent is gone', async () => (processAlive(h1Pid) ? undefined : true), 10_000);
    await startAgent(findHost(LAB, 'h1').host, { entry: defaultAgentEntry(), timeoutMs: 30_000 });
  }
  return { id: started.json.id, h1Socket: st.hosts.find((h) => h.name === 'h1')?.socket ?? '' };
}

/** Brings h2 back (a rebooted host, its fault removed); resolves once its record of job `id` ended. */
async function bringBackH2(id: string): Promise<{ theirs: JobJson; h2Socket: string }> {
  rmSync(join(labDir(LAB), 'h2', 'faults.json'), { force: true });
  const up = await lab(['up', '--json']);
  assert.equal(up.code, 0, up.stderr);
  const h2Socket = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2')?.socket ?? '';
  const theirs = await waitFor(`h2's record of ${id} ended`, async () => {
    const j = await agentGet<JobJson>(h2Socket, `/v1/migrations/${id}`);
    return ENDED(j.status) ? j : undefined;
  }, 60_000);
  return { theirs, h2Socket };
}

test('the destination goes silent right after it resumed the VM: the source keeps its copy paused until it answers, then lets go', track(async (t) => {
  const name = 'silent-dest';
  const { ip, uuid, b } = await freshVmOnH1(name);
  const h2Pid = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2')?.agentPid;
  assert.ok(h2Pid);
  // h2's agent dies while it answers the source's `finish`, once its QEMU runs the VM.
  armFault(LAB, 'h2', 'destination:finish-resumed');
  try {
    const started = await ferry<{ id: string }>(['move', name, '--to', 'h2', '--no-wait', '--json']);
    assert.equal(started.code, 0, started.stderr || started.stdout);
    const id = started.json.id;
    await waitFor('h2\'s agent died at destination:finish-resumed', async () => (processAlive(h2Pid) ? undefined : true), 60_000);
    const h1Socket = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.socket ?? '';
    // Longer than the source asks `finish` (30 tries) and then tells a failure (15 s): a source that
    // gave up by then would have run its own copy again, beside the one on h2.
    await new Promise((r) => setTimeout(r, 55_000));
    const held = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
    t.diagnostic(`55 s after h2 went silent the job is ${held.status} in ${held.phase}; live QEMUs: ${qemuPids(uuid).length}`);
    assert.equal(held.status, 'running', 'the source has not given up on a destination that may run the VM');
    assert.equal(held.phase, 'finish');
    const h1Vm = (await agentGet<VmView[]>(h1Socket, '/v1/vms')).find((v) => v.name === name);
    assert.equal(h1Vm?.state, 'migrating', 'the source\'s copy is still the paused end of a move');
    assert.equal((await guestGet(LAB, ip, '/health')).trim(), 'ok', 'h2\'s copy runs and answers');
    const up = await lab(['up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const job = await waitFor(`job ${id} ended`, async () => {
      const j = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
      return ENDED(j.status) ? j : undefined;
    }, 60_000);
    assert.equal(job.status, 'completed', `the move completed (${job.error?.code ?? ''} ${job.error?.message ?? ''})`);
    const where = await assertRunsOnce(LAB, name, 'h2');
    assert.notEqual(where.pid, b.pid);
    await assertGuestIntact(LAB, ip, b.guest);
  } finally {
    rmSync(join(labDir(LAB), 'h2', 'faults.json'), { force: true });
    if (!(await labStatus(LAB)).hosts.every((h) => h.agentPid)) await lab(['up']);
    await ferry(['vm', 'delete', name]);
  }
}));

test('the destination host dies right after it resumed the VM and the source agent restarts: the source waits, paused, until an operator cancels, then runs its copy again', track(async (t) => {
  const name = 'dest-dies';
  const { b } = await freshVmOnH1(name);
  try {
    const { id, h1Socket } = await loseDestinationAfterResume(name);
    // Longer than the recovery's first tries: it must not have run the paused copy on its own.
    await new Promise((r) => setTimeout(r, 8_000));
    const held = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
    assert.equal(held.status, 'running', 'the recovered source has not given up on a destination that may run the VM');
    const paused = (await agentGet<VmView[]>(h1Socket, '/v1/vms')).find((v) => v.name === name);
    assert.equal(paused?.state, 'migrating', 'the source\'s copy stays the paused end of the move');
    // The operator knows h2 is gone for good.
    const cancel = await ferry(['migration', 'cancel', id, '--json']);
    assert.equal(cancel.code, 0, cancel.stderr || cancel.stdout);
    const job = await waitFor(`job ${id} ended`, async () => {
      const j = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
      return ENDED(j.status) ? j : undefined;
    }, 30_000);
    t.diagnostic(`after the cancel: ${job.status} ${job.error?.code ?? ''}: ${job.error?.message ?? ''}`);
    assert.equal(job.status, 'cancelled');
    assert.equal(job.error?.code, 'MIGRATION_CANCELLED');
    // h2 comes back (a rebooted host): it cleans up its half and the VM runs once, on h1.
    const { theirs } = await bringBackH2(id);
    t.diagnostic(`h2's record after its restart: ${theirs.status} ${theirs.error?.code ?? ''}`);
    await assertRolledBack(LAB, name, b);
  } finally {
    rmSync(join(labDir(LAB), 'h2', 'faults.json'), { force: true });
    if (!(await labStatus(LAB)).hosts.every((h) => h.agentPid)) await lab(['up']);
    await ferry(['vm', 'delete', name]);
  }
}));

for (const [restartSource, storage] of [[true, false], [false, false], [true, true]] as const) {
  const how = `${restartSource ? 'both agents restart' : 'the source\'s agent waits, paused'}${storage ? ' (a storage move)' : ''}`;
  test(`the destination host dies right after it resumed the VM, ${how}, and the destination's recovery ends its record: the source keeps the VM stopped, neither resumed nor let go, and it boots from its disks`, track(async (t) => {
    const name = `dest-lost${restartSource ? '' : '-live'}${storage ? '-st' : ''}`;
    const { ip, uuid } = await freshVmOnH1(name, storage ? ['--disk', '64M'] : []);
    let keptOnH2: string[] = [];
    const h1Before = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.socket ?? '';
    const disksBefore = (await agentGet<VmView[]>(h1Before, '/v1/vms')).find((v) => v.name === name)?.disks ?? [];
    try {
      const { id, h1Socket } = await loseDestinationAfterResume(name, restartSource, storage ? ['--include-storage'] : []);
      await new Promise((r) => setTimeout(r, 4_000));
      const held = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
      assert.equal(held.status, 'running', 'the source waits for a destination that may run the VM');
      // h2 comes back (a rebooted host): its recovery ends its record, the VM lost there (QEMU_GONE).
      const { theirs, h2Socket } = await bringBackH2(id);
      t.diagnostic(`h2's record after its restart: ${theirs.status} ${theirs.error?.code ?? ''}: ${theirs.error?.message ?? ''}`);
      assert.equal(theirs.status, 'failed');
      assert.equal(theirs.error?.code, 'QEMU_GONE');
      const job = await waitFor(`h1's record of ${id} ended`, async () => {
        const j = await agentGet<JobJson>(h1Socket, `/v1/migrations/${id}`);
        return ENDED(j.status) ? j : undefined;
      }, 60_000);
      t.diagnostic(`h1's record: ${job.status} ${job.error?.code ?? ''}: ${job.error?.message ?? ''}`);
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'MIGRATION_LOST_ON_DESTINATION');
      // Runs nowhere: the older copy on h1 was powered off, not resumed; h2 holds nothing of it.
      assert.deepEqual(qemuPids(uuid), [], 'no QEMU of the VM on either host');
      const kept = (await agentGet<VmView[]>(h1Socket, '/v1/vms')).find((v) => v.name === name);
      assert.equal(kept?.state, 'stopped', 'the source keeps the VM, stopped');
      assert.match(kept?.reason ?? '', /ran on h2 after the switch-over and was lost there.*its copy here on h1 was older and was not run\. Start it/);
      assert.equal((await agentGet<VmView[]>(h2Socket, '/v1/vms')).find((v) => v.name === name), undefined, 'h2 lists no VM of that name');
      assert.deepEqual(kept?.disks, disksBefore, 'the source keeps its disks');
      for (const d of disksBefore) assert.ok(existsSync(d.path), `${d.path} is still there`);
      if (storage) {
        // h2 kept its newer images, names them, and h1's reason points there.
        keptOnH2 = /Its images stay on h2 at (.+)\.$/.exec(theirs.error?.message ?? '')?.[1]?.split(', ') ?? [];
        assert.ok(keptOnH2.length > 0 && keptOnH2.every((p) => existsSync(p)), `h2 kept its images: ${theirs.error?.message ?? ''}`);
        assert.match(kept?.reason ?? '', /as of the switch-over; h2 kept its newer images/);
      }
      // Started, it boots from its disks.
      const start = await ferry(['vm', 'start', name]);
      assert.equal(start.code, 0, start.stderr || start.stdout);
      await waitGuest(LAB, ip);
      assert.equal((await guestGet(LAB, ip, '/health')).trim(), 'ok', 'the guest booted from the disks on h1 answers');
      if (storage) assert.equal((await guestGet(LAB, ip, '/disk/verify', 20)).trim(), 'ok', 'its disk records verify');
      await assertRunsOnce(LAB, name, 'h1');
    } finally {
      // The images h2 kept: the lab leaves nothing behind (their folder only if it is left empty).
      for (const p of keptOnH2) { rmSync(p, { force: true }); try { rmdirSync(dirname(p)); } catch { /* not empty */ } }
      rmSync(join(labDir(LAB), 'h2', 'faults.json'), { force: true });
      if (!(await labStatus(LAB)).hosts.every((h) => h.agentPid)) await lab(['up']);
      await ferry(['vm', 'delete', name]);
    }
  }));
}
