import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { readPidFile } from '../util/files.js';
import { ArmTimer, claimPidFile, MAX_ARM_AGE_MS, readArm, watchdogAlive, watchdogFiles, WatchdogFeeder, type WatchdogArm } from './watchdog.js';

const arm = (deadline: number, writtenAt: number, n = 1): WatchdogArm => ({
  deadline, writtenAt, agentPid: 1, renewedAt: 0, vms: Array.from({ length: n }, (_, i) => ({ name: `v${i}`, pid: 100 + i, uuid: `u${i}` })),
});

test('ArmTimer: times each arm on the monotonic clock from when it was seen, fires once, starts over on a new arm', () => {
  const t = new ArmTimer();
  assert.equal(t.due(undefined, 0, 0), false, 'no arm: nothing to do');
  const a = arm(1_500, 1_000); // due 500 ms after it was written
  assert.equal(t.due(a, 10, 1_000), false);
  assert.equal(t.due(a, 509, 1_499), false);
  assert.equal(t.due(a, 510, 1_500), true);
  assert.equal(t.due(a, 600, 1_600), false, 'an arm fires once');
  assert.equal(t.due(arm(2_500, 2_000), 700, 2_000), false, 'a new arm starts over');
  assert.equal(t.due(arm(5_000, 4_000, 0), 10_000, 9_000), false, 'disarmed (no VMs): never');
});

test('ArmTimer: a step of the wall clock moves a deadline by at most MAX_ARM_AGE_MS', () => {
  const jumped = new ArmTimer();
  // Written at 1 000 with 3 s to go; the wall clock stepped an hour ahead before the watchdog saw it.
  assert.equal(jumped.due(arm(4_000, 1_000), 0, 3_601_000), false, 'not fired at once');
  assert.equal(jumped.due(arm(4_000, 1_000), 3_000 - MAX_ARM_AGE_MS - 1, 3_601_000), false);
  assert.equal(jumped.due(arm(4_000, 1_000), 3_000 - MAX_ARM_AGE_MS, 3_601_000), true);
  const late = new ArmTimer();
  // Seen 400 ms after it was written (the watchdog just started): that much sooner.
  assert.equal(late.due(arm(4_000, 1_000), 0, 1_400), false);
  assert.equal(late.due(arm(4_000, 1_000), 2_600, 1_400), true);
});

test('claimPidFile: one watchdog per folder; a dead one\'s pidfile is taken over', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-wd-'));
  const f = watchdogFiles(dir).pid;
  writeFileSync(f, '999999999\n');
  assert.equal(claimPidFile(dir), true, 'a stale pidfile is taken over');
  assert.equal(readPidFile(f), process.pid);
  assert.equal(claimPidFile(dir), true, 'this process holds it already');
  assert.equal(watchdogAlive(process.pid, dir), false, 'this test is no watchdog (its command line does not name watchdog-main)');
  rmSync(dir, { recursive: true, force: true });
});

test('readArm: a missing or damaged file is no arm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-wd-'));
  const f = join(dir, 'watchdog.json');
  assert.equal(readArm(f), undefined);
  writeFileSync(f, '{"deadline": 5, "vm');
  assert.equal(readArm(f), undefined);
  writeFileSync(f, JSON.stringify({ deadline: 'soon', writtenAt: 1, vms: [] }));
  assert.equal(readArm(f), undefined);
  writeFileSync(f, JSON.stringify(arm(5, 1)));
  assert.equal(readArm(f)?.deadline, 5);
  rmSync(dir, { recursive: true, force: true });
});

/** A process standing in for a VM's QEMU: the VM's uuid is in its command line, as in QEMU's. */
function fakeQemu(uuid: string): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '-uuid', uuid], { stdio: 'ignore' });
}
const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the real watchdog: fed, it waits; unfed past the deadline, it kills the listed QEMUs (only those whose uuid matches) once, says so, and ends with its folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-wd-'));
  const files = watchdogFiles(dir);
  const feeder = new WatchdogFeeder(dir, pino({ level: 'silent' }), new URL('./watchdog-main.js', import.meta.url).pathname);
  const [a, b, other] = [randomUUID(), randomUUID(), randomUUID()];
  const qa = fakeQemu(a);
  const qb = fakeQemu(b);
  const bystander = fakeQemu(other);
  await sleep(300);
  try {
    const vms = [{ name: 'a', pid: qa.pid ?? 0, uuid: a }, { name: 'b', pid: qb.pid ?? 0, uuid: b }, { name: 'stale', pid: bystander.pid ?? 0, uuid: randomUUID() }];
    // Fed every 200 ms with a deadline 600 ms ahead, for 2 s: nothing happens.
    for (let i = 0; i < 10; i++) { feeder.arm(Date.now() + 600, vms, 42); await sleep(200); }
    const wd = readPidFile(files.pid);
    assert.ok(watchdogAlive(wd, dir), 'the feeder started a watchdog');
    assert.equal(feeder.lastRenewal(), 42, 'the arm keeps the last renewal for the next agent');
    assert.ok(alive(qa) && alive(qb) && alive(bystander), 'a fed watchdog kills nothing');
    // Unfed: past the deadline it fires.
    await sleep(1200);
    assert.equal(alive(qa) || alive(qb), false, 'both listed QEMUs were killed');
    assert.equal(qa.signalCode, 'SIGKILL');
    assert.ok(alive(bystander), 'a pid whose command line does not hold the listed uuid is left alone');
    assert.ok(existsSync(files.fired), 'what it did is recorded');
    assert.match(readFileSync(files.log, 'utf8'), /powered off its HA VMs/);
    assert.deepEqual(feeder.takeFired()?.killed, ['a', 'b'], 'the next agent hears what was killed (not the stale entry)');
    assert.equal(feeder.takeFired(), undefined, 'and only once');
    rmSync(dir, { recursive: true, force: true });
    await sleep(600);
    assert.equal(watchdogAlive(wd, dir), false, 'the watchdog ends when its state folder is gone');
  } finally {
    for (const c of [qa, qb, bystander]) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
