// Integration: the downtime probe against a real VM in a 1-host lab: quiet when nothing
// happens, and it sees a 500 ms freeze of the VM's QEMU (SIGSTOP/SIGCONT) without losing TCP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../src/image/index.js';
import { labDown, startLab, startProbe, stopLab } from '../src/lab/index.js';
import { imageDir } from '../src/util/paths.js';
import type { VmView } from '../src/agent/views.js';
import { ferry, guestGet, waitFor } from './support/cli.js';

const LAB = `prb${process.pid}`;
const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
process.env.FERRY_HOME = home;
let failed = false;
let vm: VmView;
/** Marks the run failed (so the lab's logs get dumped) when a test body throws. */
const track = (fn: () => Promise<void>) => async () => { try { await fn(); } catch (e) { failed = true; throw e; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await buildImage({ dir: imageDir() });
  await startLab(LAB, 1, { accel: 'auto' });
  const r = await ferry<VmView>(['vm', 'create', 'p1', '--host', 'h1', '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr);
  vm = (await ferry<VmView>(['vm', 'show', 'p1', '--json'])).json;
  await waitFor('guest health', async () => (await guestGet(LAB, vm.ip, '/health')).trim() === 'ok');
});
after(async () => {
  await stopLab(LAB, { failed }).catch(() => labDown(LAB));
  rmSync(home, { recursive: true, force: true });
});

test('an undisturbed guest: no blackout, no TCP stall, the connection lives', track(async () => {
  const probe = await startProbe(LAB, vm.ip);
  await sleep(3000);
  const r = await probe.stop();
  assert.ok(r.blackoutMs < 100, `blackoutMs ${r.blackoutMs}`);
  assert.ok(r.tcpGapMs < 100, `tcpGapMs ${r.tcpGapMs}`);
  assert.equal(r.tcpAlive, true);
  assert.ok(r.ping.received > 300, `ping replies ${r.ping.received}`);
  assert.equal(r.ping.lost, 0);
  assert.equal(r.tcp.echoed, r.tcp.sent);
  assert.ok(r.tcp.sent > 300 * 9, `TCP bytes sent ${r.tcp.sent}`);
  assert.ok(r.durationMs >= 3000, `durationMs ${r.durationMs}`);
}));

test('a VM frozen for 500 ms: both measures see it, TCP survives', track(async () => {
  assert.ok(vm.pid);
  const probe = await startProbe(LAB, vm.ip);
  await sleep(500);
  process.kill(vm.pid, 'SIGSTOP');
  try {
    await sleep(500);
  } finally {
    process.kill(vm.pid, 'SIGCONT');
  }
  await sleep(1000);
  const r = await probe.stop();
  assert.ok(r.blackoutMs >= 400, `blackoutMs ${r.blackoutMs}`);
  assert.ok(r.tcpGapMs >= 400, `tcpGapMs ${r.tcpGapMs}`);
  assert.equal(r.tcpAlive, true, JSON.stringify(r.tcp));
  assert.ok(r.tcp.stalls.some((s) => s.gapMs >= 400 && s.atMs >= 300 && s.atMs < 1500), JSON.stringify(r.tcp.stalls));
  assert.ok(r.ping.stalls.some((s) => s.gapMs >= 400), JSON.stringify(r.ping.stalls));
}));

test('a probe to an address nobody answers fails with a sentence instead of hanging', track(async () => {
  await assert.rejects(startProbe(LAB, '10.77.1.250', { readyTimeoutMs: 1500 }), { code: 'LAB_FAILED', message: /did not get ready/ });
}));
