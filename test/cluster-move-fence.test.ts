// Integration: an HA VM in the middle of a live move, on real etcd (3 members) and real QEMU, two
// hosts. First the source of a slow move (capped at 1 MiB/s) is cut off mid-perform: it powers its
// QEMU off (fencing covers a VM that is moving, not only one that runs); the destination, the only
// survivor, rolls its half back once the source's lease is gone and then restarts the VM itself
// from its disk; the move ends failed with MIGRATION_FENCED on both hosts; after the heal the VM
// runs once, its disk records verify, and nothing of the move is left on either host. Then the
// destination of a slow move is cut off mid-perform: it powers off its incoming QEMU (MIGRATION_FENCED
// there), the source keeps running the VM in the same QEMU, and nothing is left on the destination.
// Next, the source's agent hangs right after the switch-over (fault `hold` at source:finish, longer than the
// lease TTL): the destination, which runs the VM already, owns it in etcd at once, so the cluster
// restarts nothing; the source's watchdog powers off its paused copy; when the agent wakes, the move
// completes, and the VM ran once throughout, without a reboot. Last, the destination is cut off
// right after the switch-over (a 3 s hold of the source's agent gives the test the moment): it
// fences the VM it runs; once its lease has been gone for the fence margin the source powers off
// its own paused copy (older than the disks) and ends the move MIGRATION_FENCED; the cluster
// restarts the VM from its disks, exactly once; after the heal the destination ends its record as the
// source did and forgets the VM. Finally the destination is cut off from etcd only (blackhole routes
// to the etcd members in its namespace; the hosts still reach each other): once it cannot renew its
// lease it refuses an incoming move of the HA VM in prepare (CLUSTER_UNAVAILABLE), before anything
// starts there, and the VM runs on in the same QEMU on the source.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterStatus } from '../src/agent/cluster-link.js';
import type { VmView } from '../src/agent/views.js';
import type { JobSummary } from '../src/migration/index.js';
import { labStatus } from '../src/lab/index.js';
import { tunnelName } from '../src/qemu/index.js';
import { labDir } from '../src/util/paths.js';
import { tapName } from '../src/vm/index.js';
import { ferry, guestGet, processAlive, waitFor } from './support/cli.js';
import { agentGet, assertRunsOnce, freeMemoryMiB, qemuPids, runFolder, vmsByHost } from './support/invariants.js';
import { labSuite } from './support/suite.js';

const TTL_SEC = 10;
const MARGIN_SEC = 5;
const suite = labSuite('cf', { lab: { cluster: true, clusterTiming: { leaseTtlSec: TTL_SEC }, readyTimeoutMs: 60_000 } });
const LAB = suite.name;
const { track } = suite;

const host = async (name: string): Promise<{ socket: string; namespace: string }> => {
  const h = (await labStatus(LAB)).hosts.find((x) => x.name === name);
  assert.ok(h, `the lab has ${name}`);
  return h;
};
const agentStatus = async (on: string): Promise<ClusterStatus> => agentGet<ClusterStatus>((await host(on)).socket, '/v1/cluster', 5_000);
const haRecord = async (on: string): Promise<ClusterStatus['haVms'][number] | undefined> => (await agentStatus(on)).haVms.find((v) => v.name === 'mf1');
/**
 * Until a host renews its lease again after an earlier test cut it off or hung its agent, it refuses
 * incoming moves of HA VMs (CLUSTER_UNAVAILABLE): a test's move waits for that first.
 */
const renewsAgain = async (on: string): Promise<void> => {
  await waitFor(`${on} to renew its cluster lease`, async () => (await agentStatus(on).catch(() => undefined))?.node.renewing === true, (TTL_SEC + 20) * 1000);
};
const job = async (on: string, id: string): Promise<JobSummary> => agentGet<JobSummary>((await host(on)).socket, `/v1/migrations/${id}`, 5_000);
const links = async (on: string): Promise<string> => execFileSync('ip', ['netns', 'exec', (await host(on)).namespace, 'ip', '-o', 'link', 'show'], { encoding: 'utf8' });

async function guest(ip: string): Promise<{ bootId: string; disk: string }> {
  const bootId = (await guestGet(LAB, ip, '/boot-id', 2)).trim();
  return { bootId, disk: bootId ? (await guestGet(LAB, ip, '/disk/verify', 20)).trim() : '' };
}

let vm: VmView;
let boot = '';

test('the source of a move is cut off mid-perform: it fences the moving QEMU, the destination gives up its half and restarts the VM; it runs once; nothing is left', track(async (t) => {
  await waitFor('both members', async () => (await agentStatus('h1')).members.length === 2);
  const h1Free = await freeMemoryMiB('h1');
  const r = await ferry<VmView>(['vm', 'create', 'mf1', '--host', 'h1', '--memory', '160M', '--disk', '64M', '--pool', 'shared', '--ha', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  vm = r.json;
  const g0 = await guest(vm.ip);
  assert.equal(g0.disk, 'ok');
  boot = g0.bootId;
  const src = await assertRunsOnce(LAB, 'mf1', 'h1');
  // Pages the stream must carry, at a rate the cap cannot keep up with: the move stays in perform.
  assert.equal((await guestGet(LAB, vm.ip, '/dirty?mbps=4')).trim(), 'ok');
  const mv = await ferry<{ id: string }>(['move', 'mf1', '--to', 'h2', '--max-bandwidth', '1M/s', '--no-wait', '--json']);
  assert.equal(mv.code, 0, mv.stderr || mv.stdout);
  const id = mv.json.id;
  await waitFor('the move copying memory', async () => {
    const j = await job('h1', id);
    assert.equal(j.status === 'failed' || j.status === 'cancelled', false, `the move ended early: ${JSON.stringify(j.error)}`);
    return j.phase === 'perform' && (await vmsByHost(LAB)).get('h2')?.some((v) => v.name === 'mf1' && v.pid !== null);
  }, 60_000);
  await new Promise((r) => setTimeout(r, 2_000));
  const incoming = (await vmsByHost(LAB)).get('h2')?.find((v) => v.name === 'mf1');
  assert.ok(incoming?.pid, 'h2 runs an incoming QEMU for the move');
  assert.equal(incoming.state, 'migrating');
  const t0 = Date.now();
  assert.equal((await suite.lab(['isolate', 'h1'])).code, 0);
  try {
    await waitFor('h1 to fence the moving QEMU', async () => !processAlive(src.pid), (TTL_SEC + 5) * 1000);
    const fencedAt = (Date.now() - t0) / 1000;
    await waitFor('h2 to give up its incoming QEMU', async () => !processAlive(incoming.pid ?? 0), (TTL_SEC + MARGIN_SEC + 30) * 1000);
    const abandonedAt = (Date.now() - t0) / 1000;
    const dj = (await agentGet<JobSummary[]>((await host('h2')).socket, `/v1/migrations?vm=mf1&limit=1`))[0];
    assert.equal(dj?.id, id);
    assert.equal(dj.status, 'failed');
    assert.equal(dj.error?.code, 'MIGRATION_FENCED', dj.error?.message);
    const placed = await waitFor('mf1 restarted on h2', async () => {
      const v = (await vmsByHost(LAB)).get('h2')?.find((x) => x.name === 'mf1');
      return v?.state === 'running' && v.pid !== null && v.pid !== incoming.pid ? (Date.now() - t0) / 1000 : undefined;
    }, 120_000);
    await waitFor('mf1 answering with a new boot id', async () => { const b = (await guestGet(LAB, vm.ip, '/boot-id', 1)).trim(); return b !== '' && b !== boot; }, 180_000);
    t.diagnostic(`h1 fenced the moving QEMU after ${fencedAt.toFixed(1)} s; h2 gave up its incoming QEMU after ${abandonedAt.toFixed(1)} s and started mf1 after ${placed.toFixed(1)} s (TTL ${TTL_SEC} s, margin ${MARGIN_SEC} s); h2's job: ${dj.error?.message}`);
    assert.ok(fencedAt < placed, `fenced (${fencedAt.toFixed(1)} s) before h2 started the VM (${placed.toFixed(1)} s)`);
    assert.ok(fencedAt < TTL_SEC + MARGIN_SEC, `fenced before the survivors may restart the VM (${fencedAt.toFixed(1)} s)`);
    assert.ok(abandonedAt >= fencedAt, 'the destination gave up only after the source had fenced');
  } finally {
    assert.equal((await suite.lab(['heal', 'h1'])).code, 0);
  }
  const sj = await waitFor('h1 to end the move', async () => { const j = await job('h1', id).catch(() => undefined); return j && j.status !== 'running' ? j : undefined; }, 60_000);
  assert.equal(sj.status, 'failed');
  assert.equal(sj.error?.code, 'MIGRATION_FENCED', sj.error?.message);
  t.diagnostic(`h1's job: ${sj.error?.message}`);
  await waitFor('h1 to forget mf1', async () => !(await vmsByHost(LAB)).get('h1')?.some((v) => v.name === 'mf1'), 60_000);
  const on = await assertRunsOnce(LAB, 'mf1', 'h2');
  assert.equal(qemuPids(vm.uuid).length, 1);
  const g = await guest(vm.ip);
  assert.equal(g.disk, 'ok', 'mf1\'s disk records verify: one writer at a time');
  boot = g.bootId;
  const rec = await haRecord('h2');
  assert.equal(rec?.owner, 'h2');
  assert.equal(rec?.restarts, 1, 'the cluster restarted it once');
  // Nothing of the move is left: no run folder, tap or tunnel on h1; no tunnel on h2; no job running.
  assert.equal(existsSync(runFolder(LAB, 'h1', 'mf1')), false, 'h1 has no run folder of mf1');
  assert.equal(await freeMemoryMiB('h1'), h1Free, 'h1\'s free memory is what it was before the VM');
  assert.doesNotMatch(await links('h1'), new RegExp(`${tapName(vm.uuid)}|${tunnelName(id)}`), 'h1 has neither the VM\'s tap nor the move\'s tunnel');
  assert.doesNotMatch(await links('h2'), new RegExp(tunnelName(id)), 'h2 has no tunnel of the move');
  for (const h of ['h1', 'h2']) {
    const running = (await agentGet<JobSummary[]>((await host(h)).socket, '/v1/migrations')).filter((j) => j.status === 'running' || j.status === 'queued');
    assert.deepEqual(running.map((j) => j.id), [], `${h} runs no move`);
  }
  assert.equal(on.vm.state, 'running');
}));

test('the destination of a move is cut off mid-perform: it fences its incoming QEMU, the source keeps the VM; nothing is left on the destination', track(async (t) => {
  const src = await assertRunsOnce(LAB, 'mf1', 'h2');
  const h1Free = await freeMemoryMiB('h1');
  assert.equal((await guestGet(LAB, vm.ip, '/dirty?mbps=4')).trim(), 'ok');
  await renewsAgain('h1');
  const mv = await ferry<{ id: string }>(['move', 'mf1', '--to', 'h1', '--max-bandwidth', '1M/s', '--no-wait', '--json']);
  assert.equal(mv.code, 0, mv.stderr || mv.stdout);
  const id = mv.json.id;
  const incoming = await waitFor('the move copying memory', async () => {
    const j = await job('h2', id);
    assert.equal(j.status === 'failed' || j.status === 'cancelled', false, `the move ended early: ${JSON.stringify(j.error)}`);
    const v = (await vmsByHost(LAB)).get('h1')?.find((x) => x.name === 'mf1' && x.pid !== null);
    return j.phase === 'perform' && v ? v : undefined;
  }, 60_000);
  await new Promise((r) => setTimeout(r, 2_000));
  const t0 = Date.now();
  assert.equal((await suite.lab(['isolate', 'h1'])).code, 0);
  try {
    await waitFor('h1 to fence its incoming QEMU', async () => !processAlive(incoming.pid ?? 0), (TTL_SEC + 5) * 1000);
    const fencedAt = (Date.now() - t0) / 1000;
    const dj = await waitFor('h1 to end its half of the move', async () => { const j = await job('h1', id); return j.status !== 'running' ? j : undefined; }, 20_000);
    assert.equal(dj.status, 'failed');
    assert.equal(dj.error?.code, 'MIGRATION_FENCED', dj.error?.message);
    t.diagnostic(`h1 fenced its incoming QEMU after ${fencedAt.toFixed(1)} s; its job: ${dj.error?.message}`);
    assert.ok(processAlive(src.pid), 'the source\'s QEMU runs on');
  } finally {
    assert.equal((await suite.lab(['heal', 'h1'])).code, 0);
  }
  const sj = await waitFor('h2 to end the move', async () => { const j = await job('h2', id); return j.status !== 'running' ? j : undefined; }, 90_000);
  assert.equal(sj.status, 'failed');
  t.diagnostic(`h2's job: ${sj.error?.code}: ${sj.error?.message}`);
  const on = await assertRunsOnce(LAB, 'mf1', 'h2');
  assert.equal(on.pid, src.pid, 'the same QEMU runs the VM on the source');
  assert.equal((await guestGet(LAB, vm.ip, '/dirty?mbps=0')).trim(), 'ok');
  const g = await guest(vm.ip);
  assert.equal(g.bootId, boot, 'the guest never rebooted');
  assert.equal(g.disk, 'ok');
  assert.equal((await guestGet(LAB, vm.ip, '/verify', 30)).trim(), 'ok', 'guest memory intact');
  assert.equal((await haRecord('h2'))?.owner, 'h2');
  assert.equal(existsSync(runFolder(LAB, 'h1', 'mf1')), false, 'h1 has no run folder of mf1');
  assert.equal(await freeMemoryMiB('h1'), h1Free, 'h1\'s free memory is back to what it was');
  assert.doesNotMatch(await links('h1'), new RegExp(`${tapName(vm.uuid)}|${tunnelName(id)}`), 'h1 has neither the VM\'s tap nor the move\'s tunnel');
  assert.doesNotMatch(await links('h2'), new RegExp(tunnelName(id)), 'h2 has no tunnel of the move');
}));

test('the source\'s agent hangs right after the switch-over: the destination owns the VM in etcd at once, nothing restarts it, the move completes; it ran once, live', track(async (t) => {
  const src = await assertRunsOnce(LAB, 'mf1', 'h2');
  const before = await haRecord('h1');
  assert.equal((await guestGet(LAB, vm.ip, '/dirty?mbps=0')).trim(), 'ok');
  const faults = join(labDir(LAB), 'h2', 'faults.json');
  writeFileSync(faults, `${JSON.stringify({ 'source:finish': `hold:${(TTL_SEC + MARGIN_SEC + 10) * 1000}` })}\n`);
  await renewsAgain('h1');
  const mv = await ferry<{ id: string }>(['move', 'mf1', '--to', 'h1', '--no-wait', '--json']);
  assert.equal(mv.code, 0, mv.stderr || mv.stdout);
  await waitFor('h2\'s agent to hang after the switch-over', async () => !existsSync(faults), 120_000);
  const t0 = Date.now();
  // h1 runs the VM since the stream completed and writes its ownership without waiting for h2.
  const owned = await waitFor('h1 to own mf1 in etcd', async () => ((await haRecord('h1').catch(() => undefined))?.owner === 'h1' ? (Date.now() - t0) / 1000 : undefined), 10_000);
  await waitFor('h2\'s watchdog to power off the paused source QEMU', async () => !processAlive(src.pid), (TTL_SEC + 5) * 1000);
  const firedAt = (Date.now() - t0) / 1000;
  t.diagnostic(`h1 owned mf1 in etcd ${owned.toFixed(1)} s after h2's agent hung; h2's watchdog powered off its paused copy after ${firedAt.toFixed(1)} s`);
  // Past h2's lease and the fence margin: the manager (h1 now) restarts nothing, h1 runs it.
  await new Promise((r) => setTimeout(r, Math.max(0, (TTL_SEC + MARGIN_SEC + 3) * 1000 - (Date.now() - t0))));
  const mid = await haRecord('h1');
  assert.equal(mid?.owner, 'h1');
  assert.equal(mid?.restarts, before?.restarts, 'the cluster restarted nothing');
  assert.equal((await guest(vm.ip)).bootId, boot, 'the guest runs on, never rebooted');
  const sj = await waitFor('h2 to complete the move once awake', async () => { const j = await job('h2', mv.json.id).catch(() => undefined); return j && j.status !== 'running' ? j : undefined; }, 90_000);
  assert.equal(sj.status, 'completed', JSON.stringify(sj.error));
  await waitFor('h1\'s record of the move completed', async () => (await job('h1', mv.json.id)).status === 'completed', 30_000);
  await assertRunsOnce(LAB, 'mf1', 'h1');
  const g = await guest(vm.ip);
  assert.equal(g.bootId, boot, 'moved live: same boot id');
  assert.equal(g.disk, 'ok');
  const rec = await haRecord('h1');
  assert.equal(rec?.owner, 'h1');
  assert.equal(rec?.home, 'h1');
  assert.equal(rec?.restarts, before?.restarts);
  // Links are deleted in the background once the move ended (src/qemu/links.ts): within seconds.
  await waitFor('h2 without the VM\'s tap and the move\'s tunnel', async () => !new RegExp(`${tapName(vm.uuid)}|${tunnelName(mv.json.id)}`).test(await links('h2')), 10_000);
  await waitFor('h1 without the move\'s tunnel', async () => !new RegExp(tunnelName(mv.json.id)).test(await links('h1')), 10_000);
  const log = readFileSync(join(labDir(LAB), 'h2', 'ferryd.log'), 'utf8');
  assert.match(log, /fencing watchdog powered off these HA VMs|fencing: stopping HA VMs/, 'h2 says its QEMU was powered off');
}));

test('the destination is cut off right after the switch-over: it fences the VM, the source powers off its paused copy once the destination\'s lease has been gone for the fence margin, the cluster restarts the VM; after the heal it runs once', track(async (t) => {
  const src = await assertRunsOnce(LAB, 'mf1', 'h1');
  const before = await haRecord('h1');
  const h2Free = await freeMemoryMiB('h2');
  const faults = join(labDir(LAB), 'h1', 'faults.json');
  // h1 hangs 4 s right after its stream completed: h2 runs the VM by then, and is cut off meanwhile.
  // (Under 0.75 TTL − TTL/3 after h1's last renewal, so h1's own watchdog stays quiet.)
  writeFileSync(faults, `${JSON.stringify({ 'source:finish': 'hold:4000' })}\n`);
  await renewsAgain('h2');
  const mv = await ferry<{ id: string }>(['move', 'mf1', '--to', 'h2', '--no-wait', '--json']);
  assert.equal(mv.code, 0, mv.stderr || mv.stdout);
  const id = mv.json.id;
  await waitFor('h1\'s agent to hang after the switch-over', async () => !existsSync(faults), 120_000);
  // h2 owns the VM in etcd from the moment it runs it: the restart below is then the manager's
  // placement, the one way the cluster restarts a VM whose owner lost its lease, counted in the record.
  await waitFor('h2 to own mf1 in etcd', async () => (await haRecord('h2'))?.owner === 'h2', 1_500);
  assert.equal((await suite.lab(['isolate', 'h2'])).code, 0);
  const t0 = Date.now();
  try {
    const dest = (await vmsByHost(LAB)).get('h2')?.find((v) => v.name === 'mf1');
    assert.ok(dest?.pid, 'h2 runs the VM since the switch-over');
    await waitFor('h2 to fence the VM', async () => !processAlive(dest.pid ?? 0), (TTL_SEC + 5) * 1000);
    const fencedAt = (Date.now() - t0) / 1000;
    await waitFor('h1 to power off its paused copy', async () => !processAlive(src.pid), (TTL_SEC + MARGIN_SEC + 30) * 1000);
    const gaveUpAt = (Date.now() - t0) / 1000;
    const sj = await waitFor('h1 to end the move', async () => { const j = await job('h1', id); return j.status !== 'running' ? j : undefined; }, 90_000);
    assert.equal(sj.status, 'failed');
    assert.equal(sj.error?.code, 'MIGRATION_FENCED', sj.error?.message);
    const placed = await waitFor('mf1 restarted on h1', async () => {
      const v = (await agentGet<VmView[]>((await host('h1')).socket, '/v1/vms', 5_000)).find((x) => x.name === 'mf1');
      return v?.state === 'running' && v.pid !== null && v.pid !== src.pid ? (Date.now() - t0) / 1000 : undefined;
    }, 120_000);
    await waitFor('mf1 answering with a new boot id', async () => { const b = (await guestGet(LAB, vm.ip, '/boot-id', 1)).trim(); return b !== '' && b !== boot; }, 180_000);
    t.diagnostic(`h2 fenced the VM after ${fencedAt.toFixed(1)} s; h1 powered off its paused copy after ${gaveUpAt.toFixed(1)} s and restarted the VM after ${placed.toFixed(1)} s; h1's job: ${sj.error?.message}`);
    assert.ok(fencedAt < gaveUpAt, `h2 fenced (${fencedAt.toFixed(1)} s) before h1 gave up (${gaveUpAt.toFixed(1)} s)`);
    // h2's member key expires no sooner than 2/3 of the TTL after the cut (a renewal every TTL/3), and
    // h1 then waits the fence margin, as the manager would: h2's fence may still be under way at expiry.
    assert.ok(gaveUpAt >= TTL_SEC * 0.6 + MARGIN_SEC, `h1 gave up (${gaveUpAt.toFixed(1)} s) only once h2 had been without a lease for the fence margin`);
  } finally {
    assert.equal((await suite.lab(['heal', 'h2'])).code, 0);
  }
  const dj = await waitFor('h2 to end its record of the move', async () => { const j = await job('h2', id); return j.status !== 'running' ? j : undefined; }, 60_000);
  assert.equal(dj.status, 'failed');
  t.diagnostic(`h2's job: ${dj.error?.code}: ${dj.error?.message}`);
  await waitFor('h2 to forget mf1', async () => !(await vmsByHost(LAB)).get('h2')?.some((v) => v.name === 'mf1'), 60_000);
  await assertRunsOnce(LAB, 'mf1', 'h1');
  assert.equal(qemuPids(vm.uuid).length, 1);
  const g = await guest(vm.ip);
  assert.equal(g.disk, 'ok', 'mf1\'s disk records verify: one writer at a time');
  const rec = await haRecord('h1');
  assert.equal(rec?.owner, 'h1');
  assert.equal(rec?.restarts, (before?.restarts ?? 0) + 1, 'the cluster restarted the VM exactly once');
  assert.equal(existsSync(runFolder(LAB, 'h2', 'mf1')), false, 'h2 has no run folder of mf1');
  assert.equal(await freeMemoryMiB('h2'), h2Free, 'h2\'s free memory is back to what it was');
  assert.doesNotMatch(await links('h2'), new RegExp(`${tapName(vm.uuid)}|${tunnelName(id)}`), 'h2 has neither the VM\'s tap nor the move\'s tunnel');
  assert.doesNotMatch(await links('h1'), new RegExp(tunnelName(id)), 'h1 has no tunnel of the move');
}));

test('a destination cut off from etcd refuses an incoming move of an HA VM in prepare (CLUSTER_UNAVAILABLE); the VM runs on, untouched, on the source', track(async (t) => {
  await waitFor('both members', async () => (await agentStatus('h1')).members.length === 2, 60_000);
  const src = await assertRunsOnce(LAB, 'mf1', 'h1');
  const g0 = await guest(vm.ip);
  const ns = (await host('h2')).namespace;
  const etcd = ((await labStatus(LAB)).etcd ?? []).map((m) => new URL(m.url).hostname);
  assert.equal(etcd.length, 3);
  const route = (op: 'add' | 'del', a: string): void => { execFileSync('ip', ['netns', 'exec', ns, 'ip', 'route', op, 'blackhole', `${a}/32`], { stdio: 'ignore' }); };
  try {
    for (const a of etcd) route('add', a);
    // h2's last renewal is at most TTL/3 old at the cut; it counts as not renewing half a TTL after it.
    await new Promise((r) => setTimeout(r, (TTL_SEC * 0.5 + 2) * 1000));
    const mv = await ferry<{ id: string }>(['move', 'mf1', '--to', 'h2', '--no-wait', '--json']);
    assert.equal(mv.code, 0, mv.stderr || mv.stdout);
    const sj = await waitFor('h1 to end the move', async () => { const j = await job('h1', mv.json.id); return j.status !== 'running' && j.status !== 'queued' ? j : undefined; }, 60_000);
    t.diagnostic(`h1's job: ${sj.error?.code}: ${sj.error?.message}`);
    assert.equal(sj.status, 'failed');
    assert.equal(sj.error?.code, 'CLUSTER_UNAVAILABLE', sj.error?.message);
    assert.match(sj.error?.message ?? '', /h2 has not renewed its cluster lease/);
    assert.equal(sj.phase, 'prepare', 'refused in prepare');
    // Nothing started on h2: no job record, no VM, no QEMU.
    await assert.rejects(job('h2', mv.json.id), /404/, 'h2 recorded no job');
    assert.equal((await vmsByHost(LAB)).get('h2')?.some((v) => v.name === 'mf1') ?? false, false, 'h2 has no mf1');
  } finally {
    for (const a of etcd) { try { route('del', a); } catch { /* not added */ } }
  }
  const on = await assertRunsOnce(LAB, 'mf1', 'h1');
  assert.equal(on.pid, src.pid, 'the same QEMU runs the VM on the source');
  assert.equal(on.vm.state, 'running');
  assert.equal(qemuPids(vm.uuid).length, 1);
  const g = await guest(vm.ip);
  assert.equal(g.bootId, g0.bootId, 'the guest never rebooted');
  assert.equal(g.disk, 'ok');
  await waitFor('h2 to renew its lease again', async () => (await agentStatus('h1')).members.length === 2, 60_000);
}));
