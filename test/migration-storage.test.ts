// Integration: shared-nothing moves (`ferry move --include-storage`) and moves on shared storage,
// on real QEMU in a 2-host lab, with the guest writing a verifiable record to its disk every
// 100 ms throughout. Checks DESIGN.md's invariants after every move and every failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { VmView } from '../src/agent/views.js';
import { labStatus } from '../src/lab/index.js';
import { labDir } from '../src/util/paths.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRolledBack, assertRunsOnce, beforeMove, guestState, waitGuest } from './support/invariants.js';

const suite = labSuite('ms', { beforeStop: () => { try { execFileSync('umount', [SMALL]); } catch { /* not mounted */ } } });
const LAB = suite.name;
/**
 * A 16 MiB filesystem inside h2's default pool, for the "pool full" case. Mounted before the lab
 * starts: each agent runs in a mount namespace of its own (ip netns exec), copied at its start.
 */
const SMALL = join(labDir(LAB), 'h2', 'pools', 'default', 'small');
mkdirSync(SMALL, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', SMALL]);
const { track } = suite;

interface MoveJson {
  id: string; status: string; totalMs: number | null; downtimeMs: number | null; transferredBytes: number | null;
  diskBytes: number | null; diskMs: number | null; phaseMs: Record<string, number>;
  error?: { code: string; message: string; details?: { incompatibilities?: { code: string }[] } };
}

const pool = (host: string, name = 'default'): string => (name === 'shared' ? join(labDir(LAB), 'shared') : join(labDir(LAB), host, 'pools', name));
const MiB = 1048576;

async function createVm(name: string, disk: string, poolName = 'default'): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--disk', disk, '--pool', poolName, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

/** The guest's own view of its disk: records written so far (they only grow) and whether all verify. */
async function diskState(ip: string): Promise<{ records: number; verify: string }> {
  const stats = JSON.parse(await guestGet(LAB, ip, '/stats')) as { diskRecords: number };
  return { records: stats.diskRecords, verify: (await guestGet(LAB, ip, '/disk/verify', 20)).trim() };
}

/** The move was refused before any job by the compatibility report, which named `code` (prepare keeps the same check behind it). */
function assertRefusedWith(r: { code: number; json: MoveJson }, code: string): void {
  assert.notEqual(r.code, 0);
  assert.equal(r.json.error?.code, 'INCOMPATIBLE', JSON.stringify(r.json));
  assert.deepEqual(r.json.error.details?.incompatibilities?.map((p) => p.code), [code], JSON.stringify(r.json));
}

async function move(name: string, to: string, extra: string[] = []): Promise<{ code: number; json: MoveJson }> {
  const r = await ferry<MoveJson>(['move', name, '--to', to, ...extra, '--json']);
  return { code: r.code, json: r.json };
}

const fmt = (j: MoveJson): string =>
  `${j.status} in ${j.totalMs} ms: disks ${((j.diskBytes ?? 0) / MiB).toFixed(0)} MiB in ${j.diskMs} ms, memory ` +
  `${((j.transferredBytes ?? 0) / MiB).toFixed(1)} MiB, downtime ${j.downtimeMs} ms${j.error ? `, ${j.error.code}: ${j.error.message}` : ''}`;

test('a VM with a 1 GiB local disk moves h1 → h2 → h1 with --include-storage while it writes', track(async (t) => {
  const vm = await createVm('st-rt', '1G');
  let disk = await diskState(vm.ip);
  let guest = await guestState(LAB, vm.ip);
  for (const [from, to] of [['h1', 'h2'], ['h2', 'h1']] as const) {
    const srcImage = join(pool(from), 'st-rt', 'st-rt-disk0.qcow2');
    assert.ok(existsSync(srcImage), `the image is on ${from}`);
    const r = await move('st-rt', to, ['--include-storage']);
    t.diagnostic(`${from} → ${to}: ${fmt(r.json)}`);
    assert.equal(r.code, 0, JSON.stringify(r.json));
    assert.equal(r.json.status, 'completed');
    assert.ok((r.json.diskBytes ?? 0) >= 1024 * MiB, 'the whole 1 GiB disk was mirrored');
    await assertRunsOnce(LAB, 'st-rt', to);
    guest = await assertGuestIntact(LAB, vm.ip, guest);
    assert.equal((await guestGet(LAB, vm.ip, '/verify')).trim(), 'ok');
    const after = await diskState(vm.ip);
    assert.equal(after.verify, 'ok', 'every record the guest wrote reads back intact from the copied image');
    assert.ok(after.records > disk.records, `the record sequence went on (${disk.records} → ${after.records})`);
    disk = after;
    assert.equal(existsSync(srcImage), false, `the source image ${srcImage} is deleted`);
    assert.ok(existsSync(join(pool(to), 'st-rt', 'st-rt-disk0.qcow2')), `the image is on ${to}`);
  }
  const later = await waitFor('more records', async () => { const d = await diskState(vm.ip); return d.records > disk.records ? d : undefined; });
  assert.equal(later.verify, 'ok');
  assert.equal((await ferry(['vm', 'delete', 'st-rt'])).code, 0);
}));

test('a local disk without --include-storage is refused with the report\'s STORAGE_NOT_SHARED; nothing changes', track(async () => {
  await createVm('st-local', '64M');
  const b = await beforeMove(LAB, 'st-local', 'h2');
  const r = await move('st-local', 'h2');
  assertRefusedWith(r, 'STORAGE_NOT_SHARED');
  await assertRolledBack(LAB, 'st-local', b);
  assert.equal((await ferry(['vm', 'delete', 'st-local'])).code, 0);
}));

test('a VM on the shared pool moves without copying its disk, which stays consistent', track(async (t) => {
  const vm = await createVm('st-shared', '256M', 'shared');
  const before = await diskState(vm.ip);
  const guest = await guestState(LAB, vm.ip);
  const r = await move('st-shared', 'h2');
  t.diagnostic(fmt(r.json));
  assert.equal(r.code, 0, JSON.stringify(r.json));
  assert.equal(r.json.diskBytes, null, 'no disk was copied');
  assert.ok((r.json.transferredBytes ?? 0) < 256 * MiB, 'only memory went over (less than the 256 MiB guest)');
  await assertRunsOnce(LAB, 'st-shared', 'h2');
  await assertGuestIntact(LAB, vm.ip, guest);
  const after = await diskState(vm.ip);
  assert.equal(after.verify, 'ok');
  assert.ok(after.records > before.records);
  assert.ok(existsSync(join(pool('h1', 'shared'), 'st-shared', 'st-shared-disk0.qcow2')), 'the one image stays where it was');
  assert.equal((await ferry(['vm', 'delete', 'st-shared'])).code, 0);
}));

/**
 * A VM whose 1 GiB disk holds 256 MiB of real data past the guest's records, so that over the
 * 100 Mbit/s link {@link slowLink} gives, its copy takes about 20 s.
 */
async function vmWithData(name: string): Promise<VmView> {
  const vm = await createVm(name, '1G');
  assert.equal((await ferry(['vm', 'stop', name, '--force'])).code, 0);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 512M 256M', join(pool('h1'), name, `${name}-disk0.qcow2`)], { stdio: 'ignore' });
  assert.equal((await ferry(['vm', 'start', name])).code, 0);
  await waitGuest(LAB, vm.ip);
  return vm;
}

async function slowLink<T>(fn: () => Promise<T>): Promise<T> {
  const up = await suite.lab(['up', '--bandwidth', '100mbit', '--json']);
  assert.equal(up.code, 0, up.stderr);
  try { return await fn(); } finally { await suite.lab(['up', '--bandwidth', 'none', '--json']); }
}

/** Starts a storage move with --no-wait and waits until h2 has begun receiving the disk. */
async function startCopying(name: string): Promise<{ id: string; target: string }> {
  const start = await ferry<{ id: string }>(['move', name, '--to', 'h2', '--include-storage', '--no-wait', '--json']);
  assert.equal(start.code, 0, start.stderr);
  const target = join(pool('h2'), name, `${name}-disk0.qcow2`);
  await waitFor('the target image on h2', async () => existsSync(target), 60_000);
  await new Promise((r) => setTimeout(r, 2000));
  return { id: start.json.id, target };
}

const ended = (id: string, timeoutMs = 120_000): Promise<MoveJson> => waitFor(`move ${id} ended`, async () => {
  const j = await ferry<MoveJson>(['migration', 'show', id, '--json']);
  return j.json.status !== 'running' && j.json.status !== 'queued' ? j.json : undefined;
}, timeoutMs);

test('cancel during the disk copy: cancelled, the VM runs on the source with its disk, the partial copy is deleted', track(async (t) => {
  const vm = await vmWithData('st-cancel');
  await slowLink(async () => {
    const b = await beforeMove(LAB, 'st-cancel', 'h2');
    const { id, target } = await startCopying('st-cancel');
    const c = await ferry<MoveJson>(['migration', 'cancel', id, '--json']);
    assert.equal(c.code, 0, c.stderr || c.stdout);
    const end = await ended(id);
    t.diagnostic(fmt(end));
    assert.equal(end.status, 'cancelled', JSON.stringify(end));
    await assertRolledBack(LAB, 'st-cancel', b);
    assert.equal(existsSync(target), false, 'the partial copy on h2 is deleted');
    assert.equal((await diskState(vm.ip)).verify, 'ok');
  });
  assert.equal((await ferry(['vm', 'delete', 'st-cancel'])).code, 0);
}));

test('network cut during the disk copy: fails with a code, the VM keeps running on the source, h2 cleans up once back', track(async (t) => {
  const vm = await vmWithData('st-cut');
  await slowLink(async () => {
    const b = await beforeMove(LAB, 'st-cut', 'h2');
    const { id, target } = await startCopying('st-cut');
    assert.equal((await suite.lab(['isolate', 'h2'])).code, 0);
    let end: MoveJson;
    try {
      end = await ended(id, 240_000);
    } finally {
      assert.equal((await suite.lab(['heal', 'h2'])).code, 0);
    }
    t.diagnostic(fmt(end));
    assert.equal(end.status, 'failed', JSON.stringify(end));
    assert.ok(['STORAGE_FAILED', 'HOST_UNREACHABLE', 'MIGRATION_FAILED'].includes(end.error?.code ?? ''), JSON.stringify(end.error));
    assert.equal((await diskState(vm.ip)).verify, 'ok', 'the source disk is untouched');
    await waitFor('h2 cleaned up after the heal', async () => !existsSync(target) && !existsSync(join(labDir(LAB), 'h2', 'vms', 'st-cut')), 90_000);
    await assertRolledBack(LAB, 'st-cut', b);
  });
  assert.equal((await ferry(['vm', 'delete', 'st-cut'])).code, 0);
}));

test('destination agent killed during the disk copy: after its restart the VM runs on exactly one host, disk intact', track(async (t) => {
  const vm = await vmWithData('st-kill');
  const guest = await guestState(LAB, vm.ip);
  await slowLink(async () => {
    const { id, target } = await startCopying('st-kill');
    const h2 = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2');
    assert.ok(h2?.agentPid, 'h2 has an agent');
    process.kill(h2.agentPid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await suite.lab(['up', '--json'])).code, 0, 'the agent restarts');
    const end = await ended(id, 240_000);
    t.diagnostic(fmt(end));
    const where = await assertRunsOnce(LAB, 'st-kill');
    t.diagnostic(`the VM runs on ${where.host}`);
    await assertGuestIntact(LAB, vm.ip, guest);
    assert.equal((await diskState(vm.ip)).verify, 'ok');
    const source = join(pool('h1'), 'st-kill', 'st-kill-disk0.qcow2');
    if (where.host === 'h1') {
      assert.notEqual(end.status, 'completed');
      await waitFor('the partial copy on h2 deleted', async () => !existsSync(target), 60_000);
      assert.ok(existsSync(source));
    } else {
      assert.equal(end.status, 'completed');
      assert.equal(existsSync(source), false, 'the source image is deleted');
    }
  });
  assert.equal((await ferry(['vm', 'delete', 'st-kill'])).code, 0);
}));

test('destination pool full: refused with INSUFFICIENT_DISK before anything starts; a path outside the pools with INVALID_PATH', track(async () => {
  await createVm('st-full', '256M');
  const b = await beforeMove(LAB, 'st-full', 'h2');
  const r = await move('st-full', 'h2', ['--include-storage', '--storage-path', SMALL]);
  assertRefusedWith(r, 'INSUFFICIENT_DISK');
  await assertRolledBack(LAB, 'st-full', b);
  assert.deepEqual(readdirSync(SMALL), [], 'nothing was written to the full pool');
  const out = await move('st-full', 'h2', ['--include-storage', '--storage-path', '/etc']);
  assertRefusedWith(out, 'INVALID_PATH');
  await assertRolledBack(LAB, 'st-full', b);
  assert.equal((await ferry(['vm', 'delete', 'st-full'])).code, 0);
}));
