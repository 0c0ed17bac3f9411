// Integration: the QMP client against a real qemu-system-x86_64 (the installed version), no guest needed.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FerryError } from '../src/errors/index.js';
import { isQmpError, QmpClient, type MigrationStatus, type QmpCommandName } from '../src/qmp/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-qmp-it-'));
const sock = join(dir, 'qmp.sock');
let qemu: ChildProcess | undefined;
let qemuExited: Promise<number | null> = Promise.resolve(null);
let stderr = '';
let qmp: QmpClient;
let failed = false;

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

before(async () => {
  qemu = spawn('qemu-system-x86_64', [
    '-machine', 'q35', '-accel', 'tcg', '-m', '128', '-nodefaults', '-display', 'none', '-S',
    '-qmp', `unix:${sock},server=on,wait=off`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const proc = qemu;
  proc.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  qemuExited = new Promise((res) => proc.once('exit', (code) => res(code)));
  qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000, timeoutMs: 10_000 });
});

after(() => {
  // Only the QEMU this file started, by its PID, whatever happened.
  if (qemu?.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) process.kill(qemu.pid, 'SIGKILL');
  if (failed) console.error(`QEMU stderr:\n${stderr}`);
  rmSync(dir, { recursive: true, force: true });
});

const step = (name: string, fn: () => Promise<void>): void => {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
};

step('negotiates and reports the version from the greeting', async () => {
  const [major, minor] = (/version (\d+)\.(\d+)/.exec(execFileSync('qemu-system-x86_64', ['--version']).toString()) ?? []).slice(1).map(Number);
  assert.deepEqual([qmp.version.qemu.major, qmp.version.qemu.minor], [major, minor], 'the version of the installed QEMU');
  assert.deepEqual(await qmp.execute('query-version'), qmp.version);
});

step('query-status says prelaunch for a VM started with -S', async () => {
  const st = await qmp.execute('query-status');
  assert.equal(st.status, 'prelaunch');
  assert.equal(st.running, false);
});

step('query-cpu-definitions offers qemu64; query-kvm says TCG', async () => {
  const defs = await qmp.execute('query-cpu-definitions');
  assert.ok(defs.some((d) => d.name === 'qemu64'));
  assert.equal((await qmp.execute('query-kvm')).enabled, false);
  const machines = await qmp.execute('query-machines');
  assert.ok(machines.some((m) => m.alias === 'q35'));
});

step('errors keep QEMU\'s class and description', async () => {
  await assert.rejects(qmp.execute('blockdev-del', { 'node-name': 'no-such-node' }), (e: unknown) =>
    isQmpError(e, 'GenericError') && e.desc.includes('no-such-node'));
  await assert.rejects(qmp.execute('no-such-command' as QmpCommandName), (e: unknown) => isQmpError(e, 'CommandNotFound'));
  // The session survives errors.
  assert.equal((await qmp.execute('query-status')).status, 'prelaunch');
});

step('migrate-set-capabilities turns on migration events', async () => {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  const caps = await qmp.execute('query-migrate-capabilities');
  assert.equal(caps.find((c) => c.capability === 'events')?.state, true);
  await qmp.execute('migrate-set-parameters', { 'downtime-limit': 50, 'tls-creds': null });
  assert.equal((await qmp.execute('query-migrate-parameters'))['downtime-limit'], 50);
});

step('cont emits RESUME; stop emits STOP', async () => {
  const resumed = qmp.waitForEvent('RESUME', undefined, { timeoutMs: 5000 });
  await qmp.execute('cont');
  await resumed;
  assert.equal((await qmp.execute('query-status')).status, 'running');
  const stopped = qmp.waitForEvent('STOP', undefined, { timeoutMs: 5000 });
  await qmp.execute('stop');
  await stopped;
  assert.equal((await qmp.execute('query-status')).status, 'paused');
});

step('a migration to a pipe reports MIGRATION events and RAM statistics', async () => {
  const ac = new AbortController();
  const statuses: MigrationStatus[] = [];
  const passes: number[] = [];
  const watching = (async () => {
    for await (const ev of qmp.events(['MIGRATION', 'MIGRATION_PASS'], { signal: ac.signal })) {
      if (ev.event === 'MIGRATION_PASS') passes.push(ev.data.pass);
      else if (statuses.push(ev.data.status) && ev.data.status === 'completed') return;
    }
  })();
  try {
    await qmp.execute('migrate', { uri: 'exec:cat > /dev/null' });
    await Promise.race([watching, new Promise((_, rej) => setTimeout(() => rej(new Error('no completion in 30 s')), 30_000).unref())]);
  } finally {
    ac.abort();
  }
  // QEMU 8.0 and later pass through `device` (the device state being saved) before `completed`.
  assert.deepEqual(statuses.filter((st) => st !== 'device'), ['setup', 'active', 'completed']);
  assert.equal(passes[0], 1);
  const info = await qmp.execute('query-migrate');
  assert.equal(info.status, 'completed');
  assert.ok((info.ram?.total ?? 0) > 0);
  assert.equal(typeof info.downtime, 'number');
  assert.equal(typeof info['total-time'], 'number');
  // MIGRATION completed can arrive while the run state is still finish-migrate: QEMU's main
  // loop moves it to postmigrate a moment later.
  let run = (await qmp.execute('query-status')).status;
  for (let i = 0; i < 100 && run === 'finish-migrate'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    run = (await qmp.execute('query-status')).status;
  }
  assert.equal(run, 'postmigrate');
});

step('quit emits SHUTDOWN, then the connection closes and pending calls reject with QMP_CLOSED', async () => {
  const closed = new Promise<FerryError | undefined>((res) => qmp.on('close', res));
  const shutdown = qmp.waitForEvent('SHUTDOWN', undefined, { timeoutMs: 5000 });
  const quit = qmp.execute('quit');
  // Sent right behind quit: QEMU exits before it reads them.
  const pending = [qmp.execute('query-status'), qmp.execute('query-name')];
  const ev = await shutdown;
  assert.deepEqual(ev.data, { guest: false, reason: 'host-qmp-quit' });
  assert.deepEqual(await quit, {});
  for (const p of pending) await assert.rejects(p, isCode('QMP_CLOSED'));
  assert.equal((await closed)?.code, 'QMP_CLOSED');
  assert.equal(qmp.closed, true);
  await assert.rejects(qmp.execute('query-status'), isCode('QMP_CLOSED'));
  assert.equal(await qemuExited, 0);
});
