/**
 * The baseline row of a case: the same guest moved by plain QEMU `migrate` with QEMU's default
 * capabilities and parameters (downtime-limit 300 ms, max-bandwidth 128 MiB/s), where every QEMU
 * user starts. Source QEMU in h1's namespace, destination started with the same argv plus
 * `-incoming tcp:H2:PORT` in h2's, each on its own tap on the host's bridge; the probe measures
 * what the guest's clients see, exactly as `ferry move --probe` does.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_READY_MARKER, guestKernelArgs, type GuestImage } from '../../src/image/index.js';
import { BRIDGE, LAB_PREFIX_LENGTH, nsName, startProbe, type Probe } from '../../src/lab/index.js';
import { buildArgv, runFiles, signalQemu, waitGone, type QemuLaunch } from '../../src/qemu/index.js';
import { readPidFile } from '../../src/util/index.js';
import { QmpClient, type MigrateSetParameters, type MigrationInfo } from '../../src/qmp/index.js';
import { dirtyRate, load1, must, nsRun, pagesRewritten, run, setDirty, sleep, waitHealthy } from './exec.js';
import { emptyRow, type CaseSpec, type PlacedStall, type Row } from './types.js';
import type { ProbeResult } from '../../src/lab/index.js';

/** Where and how the baseline runs: the lab, its h2 address, the image, a scratch folder. */
export interface BaselineEnv {
  lab: string;
  /** h2's address: the migration listens there. */
  destAddress: string;
  image: GuestImage;
  workDir: string;
  /**
   * The baseline guest's address and MAC, distinct from any Ferry VM (Ferry allocates from the
   * bottom of 10.77.1.0/24 and derives 52:54:00:… MACs from UUIDs).
   */
  ip: string;
  mac: string;
  /** The guest's RAM trim, Ferry's on this host's QEMU (src/qemu/argv.ts ramTrimFor), so both movers move the same guest. */
  ramTrimKiB?: number;
  /** Parameters to set before `migrate`; none for the baseline (QEMU's defaults). For experiments beside the benchmark. */
  parameters?: MigrateSetParameters;
}

/** Both QEMUs of a baseline run, for clean-up. */
interface Pair { src?: { pid: number; uuid: string }; dst?: { pid: number; uuid: string }; taps: { ns: string; tap: string }[] }

const SRC_TAP = 'bnsrc0';
const DST_TAP = 'bndst0';

/** Creates tap `tap` on the bridge of namespace `ns` (deleting a leftover first). */
async function tapIn(ns: string, tap: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'del', tap], 10_000);
  await must('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await must('ip', ['-n', ns, 'link', 'set', tap, 'master', BRIDGE]);
  await must('ip', ['-n', ns, 'link', 'set', tap, 'up']);
}

/** Starts a daemonized QEMU in namespace `ns` and resolves with its pid. */
async function startIn(ns: string, l: QemuLaunch, extra: string[]): Promise<number> {
  mkdirSync(l.runDir, { recursive: true });
  const r = await nsRun(ns, ['qemu-system-x86_64', ...buildArgv(l), ...extra], 60_000);
  if (r.code !== 0) throw new Error(`QEMU did not start in ${ns}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  const pid = readPidFile(runFiles(l.runDir).pid);
  if (pid === undefined) throw new Error(`QEMU in ${ns} wrote no pidfile`);
  return pid;
}

/** Waits for the guest's ready line on its serial log. */
export async function waitReady(serial: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (existsSync(serial) && readFileSync(serial, 'utf8').includes(GUEST_READY_MARKER)) return true;
    await sleep(200);
  }
  return false;
}

/** Polls query-migrate until completed/failed/cancelled or the deadline; resolves with the last answer. */
async function pollMigration(qmp: QmpClient, deadline: number): Promise<{ info: MigrationInfo; timedOut: boolean }> {
  let info: MigrationInfo = {};
  while (Date.now() < deadline) {
    info = await qmp.execute('query-migrate', undefined, { timeoutMs: 5000 });
    if (info.status === 'completed' || info.status === 'failed' || info.status === 'cancelled') return { info, timedOut: false };
    await sleep(50);
  }
  return { info, timedOut: true };
}

/** The probe's stalls on the migration's time line: ms after `migrate` was sent (epoch `migrateAt`). */
export function placeStalls(pr: ProbeResult, migrateAt: number): PlacedStall[] {
  const shift = pr.startedAt - migrateAt;
  const place = (kind: PlacedStall['kind']) => (s: { atMs: number; gapMs: number }): PlacedStall =>
    ({ kind, atMs: Math.round(s.atMs + shift), gapMs: s.gapMs });
  return [...pr.ping.stalls.map(place('ping')), ...pr.tcp.stalls.map(place('tcp'))].sort((a, b) => a.atMs - b.atMs);
}

/** Kills both QEMUs (by pid, checked against their UUID) and deletes the taps. */
async function cleanUp(p: Pair): Promise<void> {
  for (const q of [p.src, p.dst]) {
    if (!q) continue;
    signalQemu(q.pid, q.uuid, 'SIGKILL');
    await waitGone(q.pid, q.uuid, 5000);
  }
  for (const t of p.taps) await run('ip', ['-n', t.ns, 'link', 'del', t.tap], 10_000);
}

/** Copies query-migrate's totals into the row. */
function fill(row: Row, info: MigrationInfo): void {
  // QEMU 7.2 now and then answers a completed migration with total-time and downtime 0 (2 of 24
  // baseline moves on 2026-11-24): unknown, not instant.
  const zero = info.status === 'completed' && info['total-time'] === 0;
  row.totalMs = zero ? null : info['total-time'] ?? null;
  row.downtimeMs = zero ? null : info.downtime ?? null;
  row.bytes = info.ram?.transferred ?? null;
  row.passes = info.ram?.['dirty-sync-count'] ?? null;
  if (info['error-desc']) row.errorMessage = info['error-desc'];
}

/**
 * Migrates with QMP `migrate` and records the outcome; the destination's run state is checked
 * after completion. Resolves with the epoch ms at which `migrate` was sent.
 */
async function migrate(env: BaselineEnv, c: CaseSpec, srcQmp: string, dstQmp: string, port: number, row: Row): Promise<number> {
  const src = await QmpClient.connect(srcQmp, { retryUntilMs: 10_000 });
  const dst = await QmpClient.connect(dstQmp, { retryUntilMs: 10_000 });
  try {
    if (env.parameters) await src.execute('migrate-set-parameters', env.parameters);
    const t0 = performance.now();
    const startedAt = Date.now();
    await src.execute('migrate', { uri: `tcp:${env.destAddress}:${port}` });
    const { info, timedOut } = await pollMigration(src, Date.now() + c.hardTimeoutMs);
    row.completedAtMs = Date.now() - startedAt;
    row.stepMs = Math.round(performance.now() - t0);
    fill(row, info);
    if (timedOut) {
      row.status = 'did not complete';
      row.errorMessage = `still ${String(info.status)} after ${Math.round(c.hardTimeoutMs / 1000)} s; migrate_cancel sent`;
      await src.execute('migrate_cancel').catch(() => undefined);
      return startedAt;
    }
    row.status = String(info.status);
    if (info.status !== 'completed') return startedAt;
    // Without -S an incoming QEMU starts the guest itself once the state is loaded (autostart).
    let st = await dst.execute('query-status');
    for (let i = 0; i < 20 && st.status !== 'running'; i++) { await sleep(50); st = await dst.execute('query-status'); }
    if (st.status !== 'running') {
      row.notes.push(`destination was ${st.status} after completion; sent cont`);
      await dst.execute('cont');
    }
    return startedAt;
  } finally {
    await src.close();
    await dst.close();
  }
}

/**
 * Runs the baseline row of case `c` (migration port `port` on h2) and resolves with it; never
 * rejects: a failed step is recorded in the row. Both QEMUs are killed and the taps removed.
 */
export async function runBaselineCase(env: BaselineEnv, c: CaseSpec, rep: number, port: number): Promise<Row> {
  const row = emptyRow('baseline', c, rep, load1());
  const uuid = randomUUID();
  const [ns1, ns2] = [nsName(env.lab, 'h1'), nsName(env.lab, 'h2')];
  const base: QemuLaunch = {
    name: 'baseline', uuid, machine: 'pc-q35-7.2', accel: 'tcg', cpuModel: 'qemu64', memoryMiB: c.memMiB, cpus: 1,
    ...(env.ramTrimKiB !== undefined ? { ramTrimKiB: env.ramTrimKiB } : {}),
    boot: { kernel: env.image.kernel, initrd: env.image.initrd, append: guestKernelArgs({ ip: env.ip, prefixLength: LAB_PREFIX_LENGTH, name: 'baseline' }) },
    nic: { tap: SRC_TAP, mac: env.mac }, disks: [], runDir: join(env.workDir, `b${c.memMiB}d${c.mbps}`, 'src'),
  };
  const dstLaunch: QemuLaunch = { ...base, nic: { tap: DST_TAP, mac: env.mac }, runDir: join(env.workDir, `b${c.memMiB}d${c.mbps}`, 'dst') };
  const pair: Pair = { taps: [] };
  let probe: Probe | undefined;
  try {
    await tapIn(ns1, SRC_TAP);
    pair.taps.push({ ns: ns1, tap: SRC_TAP });
    pair.src = { pid: await startIn(ns1, base, []), uuid };
    if (!(await waitReady(runFiles(base.runDir).serial, 120_000))) throw new Error('the baseline guest did not print its ready marker within 120 s');
    if (!(await waitHealthy(env.lab, env.ip, 30_000))) row.notes.push('guest /health not ok before the move');
    await tapIn(ns2, DST_TAP);
    pair.taps.push({ ns: ns2, tap: DST_TAP });
    pair.dst = { pid: await startIn(ns2, dstLaunch, ['-incoming', `tcp:${env.destAddress}:${port}`]), uuid };
    if (!(await setDirty(env.lab, env.ip, c.mbps))) row.notes.push(`could not set /dirty?mbps=${c.mbps}`);
    const before = await pagesRewritten(env.lab, env.ip);
    probe = await startProbe(env.lab, env.ip);
    const migrateAt = await migrate(env, c, runFiles(base.runDir).qmp, runFiles(dstLaunch.runDir).qmp, port, row);
    // As `ferry move --probe` does: stop the probe a second after the end, so a late outage is seen.
    await sleep(1000);
    const pr = await probe.stop();
    probe = undefined;
    row.blackoutMs = pr.blackoutMs;
    row.tcpGapMs = pr.tcpGapMs;
    row.tcpAlive = pr.tcpAlive;
    row.stalls = placeStalls(pr, migrateAt);
    row.dirtyMiBs = dirtyRate(before, await pagesRewritten(env.lab, env.ip));
    if (!(await waitHealthy(env.lab, env.ip, 10_000))) row.notes.push('guest /health did not answer ok after the move');
  } catch (e) {
    row.errorMessage = `${row.errorMessage ? `${row.errorMessage}; ` : ''}${String(e)}`;
    if (row.status === 'error' || row.status === 'completed') row.notes.push('benchmark step failed');
  } finally {
    if (probe) await probe.stop().catch(() => undefined);
    await cleanUp(pair);
  }
  return row;
}
