// Integration: the failover cluster on real etcd (3 members, Debian's etcd-server) and real QEMU.
// One lab, tests in order: status; refusals; power loss of the manager's host (HA restart, new
// manager, failback); a host cut off (fencing, restart, heal); an agent dead while its QEMUs live
// (the watchdog fences); a restart that fails on its host (placed elsewhere); etcd losing quorum
// (nothing placed, nothing stopped); an HA VM whose record is gone (running: registered again, its policies kept;
// stopped: not started unless `--register`; deleted keeping its disk); etcd rebuilt empty.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterStatus } from '../src/agent/cluster-link.js';
import type { VmView } from '../src/agent/views.js';
import { labStatus } from '../src/lab/index.js';
import { switchNsName } from '../src/lab/plan.js';
import { hostTlsPaths } from '../src/security/pki.js';
import { clusterKeys, type KeptPolicies } from '../src/cluster/model.js';
import { HaPolicyMemory } from '../src/agent/ha-policies.js';
import { labDir } from '../src/util/paths.js';
import { ferry, guestGet, processAlive, waitFor } from './support/cli.js';
import { agentCall, agentGet, assertRunsOnce, qemuPids, vmsByHost, waitGuest } from './support/invariants.js';
import { labSuite } from './support/suite.js';

const TTL_SEC = 10;
const suite = labSuite('cl', { lab: { cluster: true, clusterTiming: { leaseTtlSec: TTL_SEC }, readyTimeoutMs: 60_000 } });
const LAB = suite.name;
const track = suite.track;

/** What host `host` kept of the policies of the VM of this uuid, read from its SQLite as its agent reads it. */
const keptOn = (host: string, uuid: string): KeptPolicies | undefined => {
  const db = new Database(join(labDir(LAB), host, 'ferry.db'), { readonly: true, fileMustExist: true });
  try {
    return new HaPolicyMemory(db, pino({ level: 'silent' })).recall(uuid);
  } finally {
    db.close();
  }
};
const status = async (): Promise<ClusterStatus> => {
  const r = await ferry<ClusterStatus>(['cluster', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json;
};

/** What the guest at `ip` says: its boot id, and whether its disk records all verify. */
async function guest(ip: string): Promise<{ bootId: string; disk: string }> {
  const bootId = (await guestGet(LAB, ip, '/boot-id', 2)).trim();
  return { bootId, disk: bootId ? (await guestGet(LAB, ip, '/disk/verify', 20)).trim() : '' };
}

/** Waits until the guest at `ip` answers with a boot id other than `old`; resolves with the seconds since `t0`. */
async function rebooted(ip: string, old: string, t0: number, timeoutMs: number): Promise<number> {
  await waitFor(`${ip} answering with a new boot id`, async () => {
    const b = (await guestGet(LAB, ip, '/boot-id', 1)).trim();
    return b !== '' && b !== old;
  }, timeoutMs);
  return (Date.now() - t0) / 1000;
}

/** Waits until `host` alone (others may be down) lists every VM of `names` with a QEMU; resolves with the seconds since `t0`. */
async function placedOn(host: string, names: string[], t0: number, timeoutMs: number): Promise<number> {
  const socket = (await labStatus(LAB)).hosts.find((h) => h.name === host)?.socket ?? '';
  await waitFor(`${names.join(', ')} started on ${host}`, async () => {
    const vms = await agentGet<VmView[]>(socket, '/v1/vms', 5_000);
    return names.every((n) => vms.some((v) => v.name === n && v.pid !== null && v.state === 'running'));
  }, timeoutMs);
  return (Date.now() - t0) / 1000;
}

/** Waits until `host` no longer lists `vm` (it forgot a VM another host took over). */
const forgotten = (host: string, vm: string): Promise<boolean> => waitFor(`${host} to forget ${vm}`, async () => {
  const byHost = await vmsByHost(LAB);
  return !(byHost.get(host) ?? []).some((v) => v.name === vm);
}, 60_000);

/** etcdctl against the lab's etcd, with h1's certificate; its output. */
async function etcdctl(...args: string[]): Promise<string> {
  const etcd = (await labStatus(LAB)).etcd ?? [];
  const tls = hostTlsPaths(join(labDir(LAB), 'h1', 'tls'));
  return execFileSync('ip', ['netns', 'exec', switchNsName(LAB), 'etcdctl', '--endpoints', etcd.map((m) => m.url).join(','),
    '--cacert', tls.caCert, '--cert', tls.cert, '--key', tls.key, ...args], { env: { ...process.env, ETCDCTL_API: '3' } }).toString();
}

let ha1: VmView;
let ha2: VmView;
const boot = new Map<string, string>();

test('a cluster of the lab\'s hosts on a 3-member etcd: members, manager, healthy quorum', track(async (t) => {
  const s = await waitFor('both members', async () => { const x = await status(); return x.members.length === 2 ? x : undefined; });
  t.diagnostic(`manager ${s.manager}, members ${s.members.map((m) => m.name).join(', ')}, etcd ${s.quorum.endpoints.map((e) => `${e.url}${e.leader ? ' (leader)' : ''}`).join(', ')}`);
  assert.equal(s.name, 'lab');
  assert.equal(s.leaseTtlSec, TTL_SEC);
  assert.equal(s.quorum.healthy, true);
  assert.equal(s.quorum.endpoints.filter((e) => e.ok).length, 3);
  assert.equal(s.degraded, null);
  assert.ok(s.manager === 'h1' || s.manager === 'h2', `a manager is elected: ${s.manager}`);
}));

test('an HA VM needs shared storage; nothing is created when refused', track(async () => {
  const r = await ferry(['vm', 'create', 'ha-local', '--host', 'h1', '--memory', '128M', '--disk', '64M', '--ha', '--json']);
  assert.notEqual(r.code, 0);
  assert.equal((r.json as { error: { code: string } }).error.code, 'HA_NEEDS_SHARED_STORAGE');
  assert.ok(!(await status()).haVms.some((v) => v.name === 'ha-local'));
  assert.ok(!(await vmsByHost(LAB)).get('h1')?.some((v) => v.name === 'ha-local'));
}));

test('power loss of the manager\'s host: both HA VMs run on the other host within TTL + 30 s, each once; a new manager; failback on return', track(async (t) => {
  const mk = async (name: string, extra: string[]): Promise<VmView> => {
    const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '160M', '--disk', '64M', '--pool', 'shared', '--ha', ...extra, '--json']);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    return r.json;
  };
  ha1 = await mk('ha1', ['--priority', '10']);
  ha2 = await mk('ha2', ['--failback', 'immediate']);
  for (const v of [ha1, ha2]) boot.set(v.name, (await guest(v.ip)).bootId);
  // Make h1 the manager if it is not: kill-host of the manager is the harder case.
  const before = await status();
  const victim = before.manager ?? 'h1';
  assert.equal(victim, 'h1', 'h1 (the first to join) manages the cluster');
  const t0 = Date.now();
  assert.equal((await suite.lab(['kill-host', 'h1'])).code, 0);
  // What Ferry controls is asserted: both QEMUs started on h2 within TTL + 30 s. The guest's boot
  // under TCG on a loaded machine is not (the issue's target, answering within TTL + 30 s boot
  // included, is reported here and measured by bench:ha on a quiet machine).
  const placed = await placedOn('h2', ['ha1', 'ha2'], t0, 120_000);
  assert.ok(placed <= TTL_SEC + 30, `both HA VMs started on h2 within ${TTL_SEC + 30} s of the power loss, not ${placed.toFixed(1)} s`);
  const [s1, s2] = await Promise.all([rebooted(ha1.ip, boot.get('ha1') ?? '', t0, 180_000), rebooted(ha2.ip, boot.get('ha2') ?? '', t0, 180_000)]);
  t.diagnostic(`QEMUs started on h2 ${placed.toFixed(1)} s after the power loss; ha1 answered again after ${s1.toFixed(1)} s, ha2 after ${s2.toFixed(1)} s (lease TTL ${TTL_SEC} s, target ${TTL_SEC + 30} s)`);
  const after = await status();
  assert.equal(after.manager, 'h2', 'h2 was elected manager');
  for (const v of after.haVms) assert.equal(v.owner, 'h2', `${v.name} is owned by h2`);
  for (const v of [ha1, ha2]) {
    const g = await guest(v.ip);
    assert.equal(g.disk, 'ok', `${v.name}'s disk records verify`);
    boot.set(v.name, g.bootId);
  }
  // h1 comes back (its agent restarts; its QEMUs died with it): it forgets what h2 runs now, and
  // ha2 (failback immediate) moves home live: same boot id, no second copy.
  assert.equal((await suite.lab(['up'])).code, 0);
  await forgotten('h1', 'ha1');
  await waitFor('ha2 back on h1', async () => (await status()).haVms.find((v) => v.name === 'ha2')?.owner === 'h1', 90_000);
  await assertRunsOnce(LAB, 'ha1', 'h2');
  await assertRunsOnce(LAB, 'ha2', 'h1');
  assert.equal((await guest(ha2.ip)).bootId, boot.get('ha2'), 'ha2 moved back live, without a reboot');
  assert.equal((await guest(ha1.ip)).bootId, boot.get('ha1'), 'ha1 was started once on h2');
}));

test('a host cut off fences itself; the other restarts its HA VM; after the heal it runs once', track(async (t) => {
  const on = await assertRunsOnce(LAB, 'ha1', 'h2');
  const t0 = Date.now();
  assert.equal((await suite.lab(['isolate', 'h2'])).code, 0);
  try {
    await waitFor('h2 to fence ha1 (its QEMU gone)', async () => !processAlive(on.pid), (TTL_SEC + 5) * 1000);
    const fencedAt = (Date.now() - t0) / 1000;
    const placed = await placedOn('h1', ['ha1'], t0, 120_000);
    const back = await rebooted(ha1.ip, boot.get('ha1') ?? '', t0, 180_000);
    t.diagnostic(`h2 fenced ha1 after ${fencedAt.toFixed(1)} s; h1 started it after ${placed.toFixed(1)} s; it answered after ${back.toFixed(1)} s`);
    // The survivors wait for the lease to expire (TTL) plus the fence margin: the fence came first.
    assert.ok(fencedAt < placed, `fenced (${fencedAt.toFixed(1)} s) before h1 started it (${placed.toFixed(1)} s)`);
  } finally {
    assert.equal((await suite.lab(['heal', 'h2'])).code, 0);
  }
  await forgotten('h2', 'ha1');
  await assertRunsOnce(LAB, 'ha1', 'h1');
  await assertRunsOnce(LAB, 'ha2', 'h1');
  const g = await guest(ha1.ip);
  assert.equal(g.disk, 'ok');
  assert.equal(qemuPids(on.vm.uuid).length, 1);
}));

test('the agent of a host dies and its QEMUs live on: its watchdog powers its HA VMs off before the other host starts them; each runs once', track(async (t) => {
  const on = await Promise.all([assertRunsOnce(LAB, 'ha1', 'h1'), assertRunsOnce(LAB, 'ha2', 'h1')]);
  const agent = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.agentPid;
  assert.ok(agent, 'h1 has an agent');
  const t0 = Date.now();
  process.kill(agent, 'SIGKILL');
  // Nothing of ferryd runs on h1 now: only its watchdog (src/agent/watchdog.ts) can stop the QEMUs.
  await waitFor('h1\'s watchdog to power off ha1 and ha2', async () => on.every((p) => !processAlive(p.pid)), (TTL_SEC + 5) * 1000);
  const firedAt = (Date.now() - t0) / 1000;
  const placed = await placedOn('h2', ['ha1', 'ha2'], t0, 120_000);
  const [s1, s2] = await Promise.all([rebooted(ha1.ip, boot.get('ha1') ?? '', t0, 180_000), rebooted(ha2.ip, boot.get('ha2') ?? '', t0, 180_000)]);
  t.diagnostic(`h1's agent killed; its watchdog powered ha1 and ha2 off after ${firedAt.toFixed(1)} s; h2 started them after ${placed.toFixed(1)} s; they answered after ${s1.toFixed(1)} and ${s2.toFixed(1)} s`);
  assert.ok(firedAt < placed, `powered off (${firedAt.toFixed(1)} s) before h2 started them (${placed.toFixed(1)} s)`);
  assert.ok(firedAt < TTL_SEC, `powered off before h1's lease could expire (${firedAt.toFixed(1)} s, TTL ${TTL_SEC} s)`);
  // h1's agent back: the watchdog's record is in its log; it forgets what h2 owns now, and ha2
  // (failback immediate) moves home live.
  assert.equal((await suite.lab(['up'])).code, 0);
  await forgotten('h1', 'ha1');
  await waitFor('ha2 back on h1', async () => (await status()).haVms.find((v) => v.name === 'ha2')?.owner === 'h1', 90_000);
  await assertRunsOnce(LAB, 'ha1', 'h2');
  await assertRunsOnce(LAB, 'ha2', 'h1');
  for (const v of [ha1, ha2]) {
    const g = await guest(v.ip);
    assert.equal(g.disk, 'ok', `${v.name}'s disk records verify: one writer at a time`);
    boot.set(v.name, g.bootId);
  }
  const log = readFileSync(join(labDir(LAB), 'h1', 'ferryd.log'), 'utf8');
  assert.match(log, /the fencing watchdog powered off these HA VMs/, 'the restarted agent says what its watchdog did');
}));

test('an HA VM whose restart fails on its owner (its disk out of reach there) is started on another host; it runs once', track(async (t) => {
  const on = await assertRunsOnce(LAB, 'ha1', 'h2');
  const agent = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2')?.agentPid;
  assert.ok(agent, 'h2 has an agent');
  // Only h2 loses the VM's folder of the shared pool: a tmpfs over it in the mount namespace of
  // h2's agent and its QEMUs. The running QEMU keeps its open image.
  const dir = join(labDir(LAB), 'shared', 'ha1');
  execFileSync('nsenter', ['-t', String(agent), '-m', 'mount', '-t', 'tmpfs', 'tmpfs', dir]);
  try {
    const t0 = Date.now();
    process.kill(on.pid, 'SIGKILL');
    const placed = await placedOn('h1', ['ha1'], t0, 60_000);
    const back = await rebooted(ha1.ip, boot.get('ha1') ?? '', t0, 120_000);
    const rec = (await status()).haVms.find((v) => v.name === 'ha1');
    t.diagnostic(`ha1's QEMU killed on h2; h2's restart failed; h1 started it after ${placed.toFixed(1)} s, it answered after ${back.toFixed(1)} s; ${rec?.note}`);
    assert.equal(rec?.owner, 'h1');
    assert.match(rec?.note ?? '', /start on h2 failed|started on h1/);
  } finally {
    execFileSync('nsenter', ['-t', String(agent), '-m', 'umount', dir]);
  }
  await forgotten('h2', 'ha1');
  await assertRunsOnce(LAB, 'ha1', 'h1');
  const g = await guest(ha1.ip);
  assert.equal(g.disk, 'ok');
  boot.set('ha1', g.bootId);
  assert.match(readFileSync(join(labDir(LAB), 'h2', 'ferryd.log'), 'utf8'), /could not start an HA VM/, 'h2 tried first and said why it failed');
}));

test('etcd loses quorum: nothing is placed, running VMs are left alone, status says degraded; quorum back heals it', track(async (t) => {
  const before = await Promise.all([assertRunsOnce(LAB, 'ha1'), assertRunsOnce(LAB, 'ha2')]);
  const bootIds = await Promise.all([guest(ha1.ip), guest(ha2.ip)]);
  const etcd = (await labStatus(LAB)).etcd ?? [];
  assert.equal(etcd.length, 3);
  for (const m of etcd.slice(0, 2)) if (m.pid) process.kill(m.pid, 'SIGKILL');
  // The checks run before quorum is back, which comes back even when one fails (the next tests need it).
  let up: { code: number } | undefined;
  try {
    await quorumLost(t, before, bootIds);
  } finally {
    up = await suite.lab(['up', '--cluster']);
  }
  assert.equal(up.code, 0);
  const healed = await waitFor('quorum back', async () => { const x = await status(); return x.quorum.healthy && x.degraded === null ? x : undefined; }, 60_000);
  assert.equal(healed.members.length, 2);
  const after = await Promise.all([assertRunsOnce(LAB, 'ha1'), assertRunsOnce(LAB, 'ha2')]);
  assert.deepEqual(after.map((p) => p.pid), before.map((p) => p.pid), 'still the same QEMUs');
}));

/** With 2 of the 3 etcd members dead: degraded, nothing placed or created, the same QEMUs and guests. */
async function quorumLost(t: TestContext, before: { pid: number }[], bootIds: { bootId: string }[]): Promise<void> {
  // Well past the lease TTL and the fence deadline.
  await new Promise((r) => setTimeout(r, (TTL_SEC + 8) * 1000));
  const s = await status();
  t.diagnostic(`degraded: ${s.degraded}`);
  assert.equal(s.quorum.healthy, false);
  assert.ok(s.degraded, 'status says the cluster is degraded');
  const refused = await ferry(['vm', 'create', 'ha3', '--host', 'h2', '--memory', '128M', '--pool', 'shared', '--disk', '64M', '--ha', '--json']);
  assert.notEqual(refused.code, 0, 'no new HA VM without quorum');
  assert.equal((refused.json as { error: { code: string } }).error.code, 'CLUSTER_UNAVAILABLE');
  assert.ok(!(await vmsByHost(LAB)).get('h2')?.some((v) => v.name === 'ha3'), 'nothing was created');
  const during = await Promise.all([assertRunsOnce(LAB, 'ha1'), assertRunsOnce(LAB, 'ha2')]);
  assert.deepEqual(during.map((p) => p.pid), before.map((p) => p.pid), 'the same QEMUs run');
  assert.deepEqual((await Promise.all([guest(ha1.ip), guest(ha2.ip)])).map((g) => g.bootId), bootIds.map((g) => g.bootId));
}

test('an HA VM whose record is gone from etcd: running, it is registered again with the policies it had; stopped, it is not started unless the user registers it; deleting it keeps its disk', track(async (t) => {
  const on1 = await assertRunsOnce(LAB, 'ha1');
  /** Removes a record behind the cluster's back, as a loss of etcd's data does. */
  const dropRecord = async (vm: string): Promise<void> => { await etcdctl('del', clusterKeys('lab').haVm(vm)); };
  // Policies a user set are kept by the owner from its record (in its SQLite, each tick). At
  // home already, so that failback immediate moves nothing.
  assert.equal((await status()).haVms.find((v) => v.name === 'ha1')?.home, on1.host, 'ha1 is at home');
  assert.equal((await ferry(['vm', 'set', 'ha1', '--priority', '7', '--failback', 'immediate', '--json'])).code, 0);
  const set = await waitFor('ha1\'s new policies in its record', async () => (await status()).haVms.find((v) => v.name === 'ha1' && v.priority === 7), 10_000);
  await waitFor(`${on1.host} kept them`, async () => keptOn(on1.host, on1.vm.uuid)?.priority === 7, 10_000);
  // Running: its host registers it again (after the fence margin), with the policies it had.
  await dropRecord('ha1');
  const t0 = Date.now();
  const back = await waitFor('ha1 registered again', async () => (await status()).haVms.find((v) => v.name === 'ha1'), 30_000);
  t.diagnostic(`ha1's record was back ${((Date.now() - t0) / 1000).toFixed(1)} s after it was removed`);
  assert.deepEqual([back.owner, back.home, back.state, back.priority, back.restart, back.failback], [on1.host, set.home, 'running', 7, 'always', 'immediate']);
  assert.match(back.note ?? '', /registered again by .*the policies and home of its last record seen here \(of \d{4}-/);
  assert.equal((await assertRunsOnce(LAB, 'ha1', on1.host)).pid, on1.pid, 'the same QEMU, untouched');

  const on = await assertRunsOnce(LAB, 'ha2');
  const disk = ha2.disks[0]?.path ?? '';
  assert.ok(disk, 'ha2 has a disk on the shared pool');
  assert.equal((await ferry(['vm', 'stop', 'ha2', '--json'])).code, 0);
  // Stopped: its record vanishes, as when another host deleted the VM while this one was away.
  await dropRecord('ha2');
  await waitFor('ha2 gone from the cluster status', async () => !(await status()).haVms.some((v) => v.name === 'ha2'), 15_000);
  const start = await ferry<{ error?: { code: string; message: string } }>(['vm', 'start', 'ha2', '--json']);
  assert.equal(start.json?.error?.code, 'VM_BAD_STATE', start.stdout);
  assert.match(start.json?.error?.message ?? '', /no record in the cluster.*--register/);
  assert.equal(qemuPids(on.vm.uuid).length, 0, 'nothing started');
  assert.ok(!(await status()).haVms.some((v) => v.name === 'ha2'), 'nothing registered');
  // The agent itself asks the other members (not only the CLI): while another host runs a VM of
  // that name, a --register straight to the API is refused.
  const other = on.host === 'h1' ? 'h2' : 'h1';
  assert.equal((await ferry(['vm', 'create', 'ha2', '--host', other, '--memory', '128M', '--json'])).code, 0);
  const sockets = new Map((await labStatus(LAB)).hosts.map((h) => [h.name, h.socket]));
  await assert.rejects(agentCall(sockets.get(on.host) ?? '', 'POST', '/v1/vms/ha2/start', 15_000, { register: true }), new RegExp(`VM_BAD_STATE.*runs on ${other}; --register would give the cluster a second copy`));
  assert.equal(qemuPids(on.vm.uuid).length, 0, 'nothing started');
  await agentCall(sockets.get(other) ?? '', 'DELETE', '/v1/vms/ha2', 60_000);
  // The user knows no other host has it (etcd's data was lost): --register.
  const reg = await ferry<VmView>(['vm', 'start', 'ha2', '--register', '--json']);
  assert.equal(reg.code, 0, reg.stderr || reg.stdout);
  await assertRunsOnce(LAB, 'ha2', on.host);
  const rec2 = await waitFor('ha2 running in its record', async () => (await status()).haVms.find((v) => v.name === 'ha2' && v.state === 'running'), 15_000);
  assert.equal(rec2.owner, on.host);
  await waitGuest(LAB, ha2.ip);
  assert.equal((await guestGet(LAB, ha2.ip, '/disk/verify', 20)).trim(), 'ok', 'from its own disk');
  // Stopped and its record gone again: deleting the copy forgets it and keeps the disk.
  assert.equal((await ferry(['vm', 'stop', 'ha2', '--json'])).code, 0);
  await dropRecord('ha2');
  await waitFor('ha2 gone from the cluster status', async () => !(await status()).haVms.some((v) => v.name === 'ha2'), 15_000);
  const del = await ferry(['vm', 'delete', 'ha2', '--json']);
  assert.equal(del.code, 0, del.stderr || del.stdout);
  assert.ok(existsSync(disk), 'the disk is kept: it may be another VM\'s now');
  assert.ok(!(await vmsByHost(LAB)).get(on.host)?.some((v) => v.name === 'ha2'), 'the copy is forgotten');
  // A new VM of that name does not overwrite the kept disk.
  const mtime = statSync(disk).mtimeMs;
  const again = await ferry<{ error?: { code: string } }>(['vm', 'create', 'ha2', '--host', 'h1', '--memory', '160M', '--disk', '64M', '--pool', 'shared', '--ha', '--json']);
  assert.equal(again.json?.error?.code, 'DISK_EXISTS', again.stdout);
  assert.equal(statSync(disk).mtimeMs, mtime, 'the kept disk is untouched');
  assert.ok(!(await status()).haVms.some((v) => v.name === 'ha2'), 'nothing registered');
  rmSync(disk, { force: true });
}));

test('etcd rebuilt empty (its data lost): the hosts join it again, their running HA VMs are registered again with their policies, the manager writes the settings back; nothing stops', track(async (t) => {
  // An HA VM on each host: whichever host gets its new lease second sees the first renew.
  const before = await assertRunsOnce(LAB, 'ha1');
  const other = before.host === 'h1' ? 'h2' : 'h1';
  const c = await ferry<VmView>(['vm', 'create', 'ha3', '--host', other, '--memory', '128M', '--disk', '64M', '--pool', 'shared', '--ha', '--json']);
  assert.equal(c.code, 0, c.stderr || c.stdout);
  const before3 = await assertRunsOnce(LAB, 'ha3', other);
  const etcd = (await labStatus(LAB)).etcd ?? [];
  assert.equal(etcd.length, 3);
  for (const m of etcd) if (m.pid) process.kill(m.pid, 'SIGKILL');
  await waitFor('etcd gone', async () => etcd.every((m) => !m.pid || !processAlive(m.pid)), 15_000);
  for (const m of etcd) rmSync(join(labDir(LAB), 'etcd', m.name, 'data'), { recursive: true, force: true });
  // Down well past the fence point (0.6 TTL), as a rebuild takes: when the first host has its new
  // lease, the other sees it renew; it must not fence a VM that etcd has no record of.
  await new Promise((r) => setTimeout(r, (TTL_SEC + 2) * 1000));
  const t0 = Date.now();
  assert.equal((await suite.lab(['up', '--cluster'])).code, 0);
  const s = await waitFor('a new manager, ha1 and ha3 registered again', async () => {
    const x = await status();
    return x.quorum.healthy && x.manager && x.members.length === 2 && x.haVms.filter((v) => v.name === 'ha1' || v.name === 'ha3').length === 2 ? x : undefined;
  }, 60_000);
  t.diagnostic(`${((Date.now() - t0) / 1000).toFixed(1)} s after the new etcd started: manager ${s.manager}, members ${s.members.map((m) => m.name).join(', ')}`);
  const rec = s.haVms.find((v) => v.name === 'ha1');
  assert.deepEqual([rec?.owner, rec?.state, rec?.priority, rec?.failback], [before.host, 'running', 7, 'immediate'], 'the policies the user set before etcd was lost');
  assert.equal((await assertRunsOnce(LAB, 'ha1', before.host)).pid, before.pid, 'the same QEMU ran throughout');
  assert.equal((await assertRunsOnce(LAB, 'ha3', other)).pid, before3.pid, 'the same QEMU ran throughout');
  assert.equal(s.haVms.find((v) => v.name === 'ha3')?.owner, other);
  const config = await waitFor('the cluster\'s settings back in etcd', async () => (await etcdctl('get', clusterKeys('lab').config, '--print-value-only')).trim() || undefined, 30_000);
  assert.equal((JSON.parse(config) as { name: string; leaseTtlSec: number }).leaseTtlSec, TTL_SEC);
}));
