// Integration: build the test guest (cached) and boot it on real QEMU (TCG, 256 MiB) in a network
// namespace of this test's own; check every endpoint from inside the namespace with curl, the echo
// port, memory verification under dirtying, disk records across a reboot, and the no-disk answer.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { buildImage, GUEST_READY_MARKER, guestKernelArgs, type GuestImage } from '../src/image/index.js';
import { imageDir } from '../src/util/paths.js';

const run = promisify(execFile);
const NS = `ferryimg-${process.pid}`;
const TAP = 'tap0';
const GUEST = '10.77.1.5';
const dir = mkdtempSync(join(tmpdir(), 'ferry-image-it-'));
const disk = join(dir, 'disk.qcow2');
let image: GuestImage;
let failed = false;

interface Guest { proc: ChildProcess; serial: string; stderr: string[]; exited: Promise<void>; readyMs: number }
let guest: Guest | undefined;
const serialLogs: string[] = [];

const ns = (...args: string[]): Promise<{ stdout: string }> => run('ip', ['netns', 'exec', NS, ...args]);

/** Marks the run failed (so the serial logs get dumped) when a test body throws. */
const track = (fn: () => Promise<void>) => async (): Promise<void> => {
  try { await fn(); } catch (e) { failed = true; throw e; }
};

before(async () => {
  image = await buildImage({ dir: imageDir() });
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '256M']);
  await run('ip', ['netns', 'add', NS]);
  for (const cmd of [
    ['ip', 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', 'br0', 'type', 'bridge'],
    ['ip', 'addr', 'add', '10.77.0.1/16', 'dev', 'br0'],
    ['ip', 'link', 'set', 'br0', 'up'],
    ['ip', 'tuntap', 'add', TAP, 'mode', 'tap'],
    ['ip', 'link', 'set', TAP, 'master', 'br0'],
    ['ip', 'link', 'set', TAP, 'up'],
  ]) await ns(...cmd);
});

after(async () => {
  // Only the QEMU this file started, by its PID, then only the namespace it made.
  await stopGuest();
  await run('ip', ['netns', 'del', NS]).catch(() => undefined);
  if (failed) for (const log of serialLogs) console.error(`--- serial log ${log}:\n${existsSync(log) ? readFileSync(log, 'utf8') : '(none)'}`);
  rmSync(dir, { recursive: true, force: true });
});

/** Boots the guest (with or without the disk) and waits for its ready line; returns the time it took. */
async function boot(withDisk: boolean): Promise<Guest> {
  const serial = join(dir, `serial-${serialLogs.length}.log`);
  serialLogs.push(serial);
  const append = guestKernelArgs({ ip: GUEST, prefixLength: 16, gateway: '10.77.0.1', name: 't1' });
  const args = [
    'netns', 'exec', NS, 'qemu-system-x86_64', '-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64', '-m', '256', '-smp', '1',
    '-nodefaults', '-display', 'none', '-monitor', 'none', '-kernel', image.kernel, '-initrd', image.initrd, '-append', append,
    '-serial', `file:${serial}`, '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no`,
    '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56',
    ...(withDisk ? ['-drive', `if=none,id=d0,file=${disk},format=qcow2`, '-device', 'virtio-blk-pci,drive=d0'] : []),
  ];
  const t0 = Date.now();
  // `ip netns exec` execs QEMU in place, so this PID is QEMU's.
  const proc = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  proc.stderr?.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const g: Guest = { proc, serial, stderr, exited, readyMs: 0 };
  guest = g;
  while (!(existsSync(serial) && readFileSync(serial, 'utf8').includes(GUEST_READY_MARKER))) {
    if (proc.exitCode !== null || proc.signalCode !== null) assert.fail(`QEMU exited before the guest was ready: ${stderr.join('')}`);
    if (Date.now() - t0 > 120_000) assert.fail('The guest did not print its ready line within 120 s.');
    await new Promise((r) => setTimeout(r, 50));
  }
  g.readyMs = Date.now() - t0;
  return g;
}

async function stopGuest(): Promise<void> {
  const g = guest;
  guest = undefined;
  if (!g?.proc.pid || g.proc.exitCode !== null || g.proc.signalCode !== null) return;
  process.kill(g.proc.pid, 'SIGKILL');
  await g.exited;
}

/** GET from inside the namespace with curl: status and body. */
async function get(path: string): Promise<{ status: number; body: string }> {
  const { stdout } = await ns('curl', '-s', '--max-time', '30', '-w', '\n%{http_code}', `http://${GUEST}${path}`);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

const getOk = async (path: string): Promise<string> => {
  const r = await get(path);
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return r.body;
};

interface Stats { counter: number; bootId: string; testMemMiB: number; dirtyMbps: number; pagesRewritten: number; disk: boolean; diskRecords: number; diskWriteErrors: number }
const stats = async (): Promise<Stats> => JSON.parse(await getOk('/stats')) as Stats;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// A TCP client run inside the namespace (node itself cannot enter one): sends lines, prints what comes back.
const ECHO_CLIENT = `
const s = require('node:net').connect(7, '${GUEST}');
let got = '';
s.setTimeout(10000, () => { console.error('echo timed out'); process.exit(1); });
s.on('connect', () => s.write('ping 1\\nping 2\\n'));
s.on('data', (d) => { got += d; if (got.length >= 14) { process.stdout.write(got); s.end(); } });
s.on('error', (e) => { console.error(e.message); process.exit(1); });`;

let firstBootId = '';
let recordsBeforeReboot = 0;

test('boots to its ready line under TCG with 256 MiB', track(async () => {
  const g = await boot(true);
  console.log(`# guest ready ${g.readyMs} ms after QEMU started (image ${image.key})`);
  assert.ok(g.readyMs < 60_000, `boot took ${g.readyMs} ms`);
  assert.match(readFileSync(g.serial, 'utf8'), /ferry-guest: boot-id [0-9a-f]{32}, test memory 32 MiB, disk \/dev\/vda/);
}));

test('health, boot id, a counter that grows, unknown paths', track(async () => {
  assert.equal(await getOk('/health'), 'ok');
  firstBootId = await getOk('/boot-id');
  assert.match(firstBootId, /^[0-9a-f]{32}$/);
  const c1 = Number(await getOk('/counter'));
  await sleep(300);
  const c2 = Number(await getOk('/counter'));
  assert.ok(Number.isInteger(c1) && c2 > c1, `counter ${c1} then ${c2}`);
  assert.deepEqual(await get('/nope'), { status: 404, body: 'not found' });
  assert.equal((await get('/dirty?mbps=x')).status, 400);
}));

test('TCP port 7 echoes', track(async () => {
  const { stdout } = await ns(process.execPath, '-e', ECHO_CLIENT);
  assert.equal(stdout, 'ping 1\nping 2\n');
}));

test('/verify stays ok while the writer dirties 20 MB/s', track(async () => {
  assert.equal(await getOk('/verify'), 'ok');
  assert.equal(await getOk('/dirty?mbps=20'), 'ok');
  const before = await stats();
  for (let i = 0; i < 5; i++) {
    await sleep(400);
    assert.equal(await getOk('/verify'), 'ok');
  }
  const now = await stats();
  assert.equal(now.dirtyMbps, 20);
  assert.ok(now.pagesRewritten - before.pagesRewritten > 2000, `only ${now.pagesRewritten - before.pagesRewritten} pages rewritten in 2 s`);
  assert.equal(await getOk('/dirty?mbps=0'), 'ok');
}));

test('/disk/verify is ok and records accumulate', track(async () => {
  const s1 = await stats();
  await sleep(1000);
  const s2 = await stats();
  assert.equal(s2.disk, true);
  assert.ok(s2.diskRecords >= s1.diskRecords + 5, `records ${s1.diskRecords} then ${s2.diskRecords}`);
  assert.equal(await getOk('/disk/verify'), 'ok');
  recordsBeforeReboot = s2.diskRecords;
}));

test('after a reboot with the same disk, records continue and verify', track(async () => {
  await stopGuest();
  await boot(true);
  assert.notEqual(await getOk('/boot-id'), firstBootId);
  const serial = readFileSync(serialLogs.at(-1) ?? '', 'utf8');
  const at = Number(/continuing at record (\d+)/.exec(serial)?.[1]);
  assert.ok(at >= recordsBeforeReboot, `continued at ${at}, had ${recordsBeforeReboot}`);
  await sleep(500);
  const s = await stats();
  assert.ok(s.diskRecords > at, `records ${s.diskRecords}, continued at ${at}`);
  assert.equal(s.diskWriteErrors, 0);
  assert.equal(await getOk('/disk/verify'), 'ok');
}));

test('without a disk, /disk/verify answers 404 no disk', track(async () => {
  await stopGuest();
  await boot(false);
  assert.deepEqual(await get('/disk/verify'), { status: 404, body: 'no disk' });
  assert.equal(await getOk('/health'), 'ok');
  assert.equal((await stats()).disk, false);
}));
