// Integration: storage moves on one host (`ferry vm move-storage`) on real QEMU, with the guest
// writing a record to its disk every 100 ms throughout. Checks DESIGN.md's invariants 2 and 3 for
// the disk: a refused move changes nothing; after a move every record is intact and the guest did
// not reboot; the old image is gone; stop/start and delete follow the new path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import type { HostView, VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRunsOnce, guestState, waitGuest } from './support/invariants.js';

const suite = labSuite('sm');
const LAB = suite.name;
const { track } = suite;

/** `ferry vm move-storage --json`. */
interface MoveStorageJson {
  vm: VmView; live: boolean; totalMs: number;
  disks: { index: number; from: string; to: string; pool: string; sizeBytes: number; allocatedBytes: number }[];
}
interface Stats { diskRecords: number; diskWriteErrors: number; bootId: string }

const stats = async (ip: string): Promise<Stats> => JSON.parse(await guestGet(LAB, ip, '/stats')) as Stats;

async function poolPath(host: string, pool: string): Promise<string> {
  const r = await ferry<HostView>(['host', 'show', host, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const p = r.json.pools.find((x) => x.name === pool);
  assert.ok(p, `${host} has a pool "${pool}"`);
  return p.path;
}

async function show(name: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'show', name, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json;
}

async function diskVerified(ip: string): Promise<void> {
  const v = (await guestGet(LAB, ip, '/disk/verify', 60)).trim();
  assert.equal(v, 'ok', `the guest's disk records are intact (/disk/verify said: ${v.slice(0, 300)})`);
}

/** Polls the guest's record count every 250 ms until stopped; fails if it ever goes back or errors appear. */
function watchRecords(ip: string): { stop(): Promise<{ first: number; last: number; samples: number }> } {
  let running = true;
  let first = -1;
  let last = -1;
  let samples = 0;
  let problem: string | undefined;
  const loop = (async () => {
    while (running) {
      try {
        const s = await stats(ip);
        if (first < 0) first = s.diskRecords;
        if (s.diskRecords < last) problem ??= `diskRecords went back from ${last} to ${s.diskRecords}`;
        if (s.diskWriteErrors > 0) problem ??= `the guest saw ${s.diskWriteErrors} disk write errors`;
        last = s.diskRecords;
        samples += 1;
      } catch { /* a slow answer under load is not what this checks */ }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      assert.equal(problem, undefined, problem);
      return { first, last, samples };
    },
  };
}

async function moveStorage(name: string, toPath: string): Promise<MoveStorageJson> {
  const r = await ferry<MoveStorageJson>(['vm', 'move-storage', name, '--to-path', toPath, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

async function refused(args: string[], code: string): Promise<void> {
  const r = await ferry<{ error: { code: string; message: string } }>(['vm', 'move-storage', ...args, '--json']);
  assert.notEqual(r.code, 0, `move-storage ${args.join(' ')} should fail`);
  assert.equal(r.json.error.code, code, `move-storage ${args.join(' ')}: ${r.json.error.message}`);
}

const VM = 'sm1';
/** Bytes written past the guest's records, where the guest never writes (it writes 4 KiB from offset 0, 10 a second). */
const FILL = 256 * 1024 * 1024;
const FILL_AT = 768 * 1024 * 1024;
const PATTERN = '0xa5';
const run = promisify(execFile);
let ip = '';
let defaultPool = '';

test('create a VM with a 1G disk whose guest writes records, and FILL bytes of data past them', track(async () => {
  const r = await ferry<VmView>(['vm', 'create', VM, '--host', 'h1', '--memory', '256M', '--disk', '1G', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  ip = r.json.ip;
  await waitGuest(LAB, ip);
  await waitFor('the guest writing disk records', async () => (await stats(ip)).diskRecords > 10, 60_000);
  defaultPool = await poolPath('h1', 'default');
  // Data for the mirrors to copy while the guest writes its records at the start of the disk.
  assert.equal((await ferry(['vm', 'stop', VM])).code, 0);
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -P ${PATTERN} ${FILL_AT} ${FILL}`, r.json.disks[0]?.path ?? '']);
  assert.equal((await ferry(['vm', 'start', VM])).code, 0);
  await waitGuest(LAB, ip);
  const at = (await stats(ip)).diskRecords;
  await waitFor('the guest writing disk records again', async () => (await stats(ip)).diskRecords > at + 5, 60_000);
}));

test('refusals change nothing: bad paths, the same folder, an image in the way, an unknown VM', track(async () => {
  const before = await show(VM);
  const disk = before.disks[0]?.path ?? '';
  const taken = join(defaultPool, 'taken');
  mkdirSync(taken, { recursive: true });
  writeFileSync(join(taken, `${VM}-disk0.qcow2`), 'not an image of this VM');
  await refused([VM, '--to-path', '/tmp/outside-every-pool'], 'INVALID_PATH');
  await refused([VM, '--to-path', `${defaultPool}/a/../../..`], 'INVALID_PATH');
  await refused([VM, '--to-path', 'relative/dir'], 'INVALID_PATH');
  await refused([VM, '--to-path', dirname(disk)], 'SAME_PATH');
  await refused([VM, '--to-path', taken], 'DISK_EXISTS');
  await refused(['nosuchvm', '--to-path', join(defaultPool, 'x')], 'VM_NOT_FOUND');
  assert.equal(readFileSync(join(taken, `${VM}-disk0.qcow2`), 'utf8'), 'not an image of this VM', 'the image in the way is untouched');
  const after = await show(VM);
  assert.deepEqual(after.disks, before.disks);
  assert.equal(after.pid, before.pid);
  assert.ok(existsSync(disk), 'the disk is where it was');
  await diskVerified(ip);
}));

test('a live move within the pool and then to another pool, the guest writing throughout', track(async (t) => {
  const g0 = await guestState(LAB, ip);
  const { pid } = await assertRunsOnce(LAB, VM, 'h1');
  for (const [pool, sub] of [['default', 'fast'], ['shared', VM]] as const) {
    const before = await show(VM);
    const from = before.disks[0]?.path ?? '';
    const to = join(await poolPath('h1', pool), sub);
    const watch = watchRecords(ip);
    const t0 = Date.now();
    const r = await moveStorage(VM, to);
    const ms = Date.now() - t0;
    const recs = await watch.stop();
    const d = r.disks[0];
    assert.ok(d);
    t.diagnostic(`live move ${from} → ${d.to}: ${d.allocatedBytes} of ${d.sizeBytes} bytes in ${r.totalMs} ms (CLI ${ms} ms); ` +
      `records ${recs.first} → ${recs.last} over ${recs.samples} samples`);
    assert.equal(r.live, true);
    assert.equal(d.from, from);
    assert.equal(d.to, join(to, `${VM}-disk0.qcow2`));
    assert.equal(d.pool, pool);
    assert.deepEqual(r.vm.disks, [{ path: d.to, sizeBytes: 1024 ** 3, pool }]);
    assert.deepEqual((await show(VM)).disks, r.vm.disks, 'vm show lists the new image');
    assert.ok(recs.last > recs.first, `the guest kept writing records during the move (${recs.first} → ${recs.last})`);
    assert.ok(existsSync(d.to), 'the new image exists');
    assert.equal(existsSync(from), false, 'the old image is gone');
    assert.equal(existsSync(dirname(from)), false, 'and so is its folder, now empty');
    const p = await assertRunsOnce(LAB, VM, 'h1');
    assert.equal(p.pid, pid, 'the same QEMU runs the VM');
    await diskVerified(ip);
    await assertGuestIntact(LAB, ip, g0);
    assert.equal((await stats(ip)).bootId, g0.bootId);
  }
}));

test('stop and start use the new image; a stopped VM is moved by a copy', track(async (t) => {
  const cur = (await show(VM)).disks[0]?.path ?? '';
  const records = (await stats(ip)).diskRecords;
  const stop = await ferry(['vm', 'stop', VM, '--json']);
  assert.equal(stop.code, 0, stop.stderr || stop.stdout);
  const to = join(defaultPool, 'cold');
  const r = await moveStorage(VM, to);
  t.diagnostic(`stopped move: ${r.disks[0]?.allocatedBytes} bytes in ${r.totalMs} ms`);
  assert.equal(r.live, false);
  assert.equal(r.vm.state, 'stopped');
  assert.equal(existsSync(cur), false, 'the old image is gone');
  const check = await run('qemu-io', ['-r', '-f', 'qcow2', '-c', `read -P ${PATTERN} ${FILL_AT} ${FILL}`, r.disks[0]?.to ?? '']);
  assert.doesNotMatch(check.stdout + check.stderr, /fail/i, 'the data past the records came through all three moves');
  const start = await ferry<VmView>(['vm', 'start', VM, '--json']);
  assert.equal(start.code, 0, start.stderr || start.stdout);
  const cmdline = readFileSync(`/proc/${start.json.pid}/cmdline`, 'utf8');
  assert.ok(cmdline.includes(join(to, `${VM}-disk0.qcow2`)), 'QEMU opens the image where the move put it');
  await waitGuest(LAB, ip);
  await waitFor('records continuing after the restart', async () => (await stats(ip)).diskRecords > records + 5, 60_000);
  await diskVerified(ip);
}));

test('delete removes the moved image', track(async () => {
  const path = (await show(VM)).disks[0]?.path ?? '';
  assert.ok(existsSync(path));
  const r = await ferry(['vm', 'delete', VM, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(existsSync(path), false, `${path} is deleted with the VM`);
}));
