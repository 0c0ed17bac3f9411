/**
 * `npm run bench:drain` (issue 7, point 6): drains a host of 8 small VMs with migration limits 1, 2
 * and 4 and sets each drain's time against the sum of single-move times measured in the same run
 * (target: drain with limit k ≤ 1.2 × sum / k). Writes bench/results/drain.md and drain.raw.json.
 * Needs root and a built tree. `node dist/bench/drain.js --render` rewrites drain.md from the raw numbers.
 * BENCH_SMOKE=1: 3 VMs and limits 1 and 2, results to a temporary folder.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, startLab, stopLab } from '../src/lab/index.js';
import { repoRoot } from '../src/util/paths.js';
import type { HostView } from '../src/agent/views.js';
import { ferry, guestGet, load1, waitHealthy } from './lib/exec.js';
import type { MoveJson, VmJson } from './lib/ferry-case.js';
import { benchMain, checkpoint, runFacts, writeResults } from './lib/harness.js';
import { renderDrain, type DrainBenchRun, type DrainCase, type DrainJob, type SingleMove } from './lib/drain-report.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const VMS = SMOKE ? 3 : 8;
const MEM_MIB = 256;
const LIMITS = SMOKE ? [1, 2] : [1, 2, 4];
const LAB = `bdrain${process.pid}`;
const results = SMOKE ? mkdtempSync(join(tmpdir(), 'ferry-bench-smoke-')) : join(repoRoot(), 'bench', 'results');
const log = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}] ${s}\n`); };
const names = Array.from({ length: VMS }, (_, i) => `dr${i + 1}`);

async function must<T>(args: string[], timeoutMs = 300_000): Promise<T> {
  const r = await ferry<T>(args, timeoutMs);
  if (r.code !== 0 || r.json === undefined) throw new Error(`ferry ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.json;
}

/** Every VM moves on its own, one after the other, from `from` to `to`. */
async function singles(round: number, from: string, to: string): Promise<SingleMove[]> {
  const out: SingleMove[] = [];
  for (const vm of names) {
    const t0 = Date.now();
    const r = await ferry<MoveJson>(['move', vm, '--to', to, '--json'], 300_000);
    const s: SingleMove = { round, vm, from, to, status: r.json?.status ?? `exit ${r.code}`, totalMs: r.json?.totalMs ?? null, wallMs: Date.now() - t0 };
    log(`single ${vm} ${from} → ${to}: ${s.status} ${s.totalMs} ms (wall ${s.wallMs} ms)`);
    out.push(s);
  }
  return out;
}

/** One drain of `host` with maxMigrations = limit on both hosts, then a resume (no failback). */
async function drain(host: string, limit: number): Promise<DrainCase> {
  for (const h of ['h1', 'h2']) await must(['host', 'settings', h, '--max-migrations', String(limit), '--json']);
  const load1Before = load1();
  const t0 = Date.now();
  const r = await ferry<{ state?: string; error?: { code: string } }>(['host', 'drain', host, '--json'], 900_000);
  const wallMs = Date.now() - t0;
  const view = (await must<HostView>(['host', 'show', host, '--json'])).maintenance;
  const run = view.lastRun;
  const jobs: DrainJob[] = [];
  for (const e of view.vms) {
    if (!e.jobId) { jobs.push({ vm: e.vm, status: e.status, totalMs: null }); continue; }
    const j = await must<MoveJson>(['migration', 'show', e.jobId, '--json']);
    jobs.push({ vm: e.vm, status: j.status ?? 'unknown', totalMs: j.totalMs ?? null });
  }
  const c: DrainCase = {
    limit, host, wallMs, agentMs: run?.endedAt ? Date.parse(run.endedAt) - Date.parse(run.startedAt) : null, exitCode: r.code ?? -1,
    state: view.state, errorCode: r.json?.error?.code ?? null, jobs, load1Before, load1After: load1(),
  };
  log(`drain ${host} limit ${limit}: ${c.state} in ${c.agentMs} ms (CLI ${wallMs} ms), moves ${jobs.map((j) => `${j.vm} ${j.totalMs}`).join(', ')}`);
  await must(['host', 'resume', host, '--json']);
  return c;
}

/** After the last drain: each guest answers /verify, and each VM is listed once, running. */
async function check(ips: Map<string, string>): Promise<DrainBenchRun['checks']> {
  let verifyOk = 0;
  for (const ip of ips.values()) if ((await guestGet(LAB, ip, '/verify', 10))?.trim() === 'ok') verifyOk++;
  const list = await must<(VmJson & { name: string })[]>(['vm', 'list', '--json']);
  const runsOnce = names.every((n) => list.filter((v) => v.name === n && v.state === 'running').length === 1);
  return { verifyOk, runsOnce };
}

benchMain('drain', LAB, results, renderDrain, async () => {
  const data: DrainBenchRun = {
    startedAt: new Date().toISOString(), endedAt: '', ...(await runFacts()), accel: 'tcg', vms: VMS, memMiB: MEM_MIB,
    singles: [], drains: [], checks: null,
  };
  const write = (d: DrainBenchRun): void => writeResults(results, 'drain', d, renderDrain);
  log(`lab ${LAB} up`);
  await startLab(LAB, 2, { accel: 'tcg' });
  let failed = true;
  try {
    const ips = new Map<string, string>();
    for (const vm of names) {
      const v = await must<VmJson>(['vm', 'create', vm, '--host', 'h1', '--memory', `${MEM_MIB}M`, '--json'], 180_000);
      if (!(await waitHealthy(LAB, v.ip, 120_000))) throw new Error(`the guest of ${vm} did not answer`);
      ips.set(vm, v.ip);
      log(`created ${vm} at ${v.ip}`);
    }
    data.singles.push(...await singles(1, 'h1', 'h2'));
    let where = 'h2';
    for (const limit of LIMITS) {
      data.drains.push(await drain(where, limit));
      where = where === 'h2' ? 'h1' : 'h2';
      await checkpoint(data, write);
    }
    // The VMs are on `where` now; round 2 of single moves takes them to the other host.
    data.singles.push(...await singles(2, where, where === 'h2' ? 'h1' : 'h2'));
    data.checks = await check(ips);
    await checkpoint(data, write);
    failed = false;
  } finally {
    await stopLab(LAB, { failed }).catch(() => labDown(LAB));
  }
});
