/**
 * `npm run bench:options`: the host performance options (issue 5, point 5). For VMs of 256 MiB
 * and 1 GiB, guest idle and dirtying 20 MiB/s (bench:migrate's cases without its 100 MiB/s), on
 * a lab link unshaped, shaped to 10 Gbit/s and to 1 Gbit/s, it moves a fresh VM from h1 to h2
 * with `ferry move --probe` once per option, set on h1 with `ferry host settings h1 --performance
 * X` (the destination follows the source's choice). It reads around each move the CPU of both
 * QEMU processes (/proc, see lib/qemu-cpu.ts) and the bytes h2's uplinks received. The baseline,
 * measured in the same run, is `tcp` (one stream, Ferry's default). Writes
 * bench/results/options.md and options.raw.json. Needs root and a built tree.
 * `node dist/bench/options.js --render` rewrites options.md from options.raw.json without running;
 * BENCH_SMOKE=1 runs one short case into a temporary folder.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATION_UPLINK, nsName, startLab, UPLINK, withLab } from '../src/lab/index.js';
import { completionTimeoutMs, DEFAULT_POLICY, type PerformanceOption } from '../src/migration/index.js';
import { repoRoot } from '../src/util/paths.js';
import { ferry, load1, must } from './lib/exec.js';
import { runFerryCase, type AroundMove } from './lib/ferry-case.js';
import { benchMain, checkpoint, runFacts, writeResults } from './lib/harness.js';
import { rxBytes, sampleLabLink } from './lib/link.js';
import { renderOptionsMarkdown } from './lib/options-report.js';
import type { OptionLink, OptionRow, OptionsRun } from './lib/options-types.js';
import { CpuSampler } from './lib/qemu-cpu.js';
import type { CaseSpec } from './lib/types.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const BASELINE: PerformanceOption = 'tcp';
const OPTIONS: PerformanceOption[] = [BASELINE, 'multichannel', 'compression'];
const SIZES_MIB = SMOKE ? [256] : [256, 1024];
const RATES_MIBS = SMOKE ? [20] : [0, 20];
const LINKS: { link: string; bandwidth: string }[] = SMOKE ? [{ link: 'unshaped', bandwidth: 'none' }]
  : [{ link: 'unshaped', bandwidth: 'none' }, { link: '10gbit', bandwidth: '10gbit' }, { link: '1gbit', bandwidth: '1gbit' }];
/**
 * Links with moves (BENCH_MOVE_LINKS, comma-separated, default 10gbit,1gbit); the others get
 * only the raw throughput measurement. Trimmed for time: on this machine an unshaped lab link
 * carries one stream at most at ~10 Gbit/s, so unshaped and 10gbit differ little (both are
 * measured raw to show it); BENCH_MOVE_LINKS=unshaped,10gbit,1gbit runs the full matrix.
 */
const MOVE_LINKS = SMOKE ? ['unshaped'] : (process.env.BENCH_MOVE_LINKS ?? '10gbit,1gbit').split(',').map((x) => x.trim());
/** Repetitions (BENCH_REPEAT, default 3); each runs every link, VM, workload and option once. */
const REPEAT = SMOKE ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 3) || 1);
/** Wall-clock budget (BENCH_BUDGET_MIN, default 20): a repetition that would end past it is not started. */
const BUDGET_MIN = Math.max(1, Number(process.env.BENCH_BUDGET_MIN ?? 20) || 20);
/** Slack on top of Ferry's own completion timeout before a case counts as hung (as bench:migrate). */
const HARD_TIMEOUT_SLACK_MS = 45_000;

const LAB = `bopt${process.pid}`;
const results = SMOKE ? mkdtempSync(join(tmpdir(), 'ferry-bench-smoke-')) : join(repoRoot(), 'bench', 'results');
const log = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}] ${s}\n`); };

/** The options in the order repetition `rep` runs them: rotated, so none is always first after a VM boots. */
const rotated = (rep: number, k: number): PerformanceOption[] => OPTIONS.map((_, i) => OPTIONS[(i + rep + k) % OPTIONS.length] as PerformanceOption);

/** Bytes received by h2's two uplinks now. */
async function h2Rx(): Promise<{ eth0: number | null; mig0: number | null }> {
  const ns = nsName(LAB, 'h2');
  return { eth0: await rxBytes(ns, UPLINK), mig0: await rxBytes(ns, MIGRATION_UPLINK) };
}

/**
 * Wraps a move: h2's received bytes before and after, the QEMU processes' CPU over it, and
 * afterwards the option the job recorded. Fills those fields of `row`.
 */
function measured(row: Pick<OptionRow, 'cpu' | 'rx' | 'usedOption' | 'encrypted' | 'notes'>, msPerTick: number): AroundMove {
  return async (vm, move) => {
    const rx0 = await h2Rx();
    let sampler: CpuSampler | undefined;
    try {
      if (vm.uuid && vm.pid) sampler = new CpuSampler(vm.uuid, vm.pid, msPerTick);
      else row.notes.push('vm create named no uuid or pid: CPU not measured');
    } catch (e) {
      row.notes.push(`CPU not measured: ${String(e)}`);
    }
    const r = await move();
    row.cpu = sampler?.stop() ?? null;
    const rx1 = await h2Rx();
    const diff = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? b - a : null);
    row.rx = { eth0: diff(rx0.eth0, rx1.eth0), mig0: diff(rx0.mig0, rx1.mig0) };
    row.encrypted = r.json?.encrypted ?? null;
    if (r.json?.id) {
      const show = await ferry<{ performance?: string }>(['migration', 'show', r.json.id, '--json'], 30_000);
      row.usedOption = show.json?.performance ?? null;
    }
    return r;
  };
}

/** One move of case `c` with `option` set on h1. */
async function runCase(link: string, c: CaseSpec, option: PerformanceOption, rep: number, msPerTick: number): Promise<OptionRow> {
  const extra: Pick<OptionRow, 'cpu' | 'rx' | 'usedOption' | 'encrypted' | 'notes'> = { cpu: null, rx: null, usedOption: null, encrypted: null, notes: [] };
  const set = await ferry(['host', 'settings', 'h1', '--performance', option, '--json'], 30_000);
  if (set.code !== 0) extra.notes.push(`host settings h1 --performance ${option} failed: ${(set.stderr || set.stdout).trim().slice(0, 200)}`);
  const row = await runFerryCase(LAB, c, rep, measured(extra, msPerTick));
  if (extra.usedOption !== null && extra.usedOption !== option) extra.notes.push(`the job ran with ${extra.usedOption}`);
  return { ...row, ...extra, notes: [...row.notes, ...extra.notes], option, link };
}

const brief = (r: OptionRow): string => {
  const cpu = r.cpu?.processes.map((p) => `${p.role} ${(p.cpuMs / 1000).toFixed(1)} s`).join(', ') ?? '-';
  return `${r.option} ${r.status}${r.errorCode ? ` ${r.errorCode}` : ''} total ${String(r.totalMs)} ms, downtime ${String(r.downtimeMs)} ms, `
    + `blackout ${String(r.blackoutMs)} ms, TCP gap ${String(r.tcpGapMs)} ms, QEMU ${r.bytes === null ? '-' : (r.bytes / 1048576).toFixed(0)} MiB, `
    + `h2 rx ${r.rx?.eth0 === null || r.rx?.eth0 === undefined ? '-' : (r.rx.eth0 / 1048576).toFixed(0)} MiB, CPU ${cpu}`;
};

/** Shapes the lab's links to `spec`, measures the link, runs every case and option on it (when it is one of MOVE_LINKS). */
async function runLink(spec: { link: string; bandwidth: string }, rep: number, data: OptionsRun): Promise<void> {
  const status = await startLab(LAB, 2, { accel: 'tcg', bandwidth: spec.bandwidth });
  const h2 = status.hosts.find((h) => h.name === 'h2');
  if (!h2) throw new Error('the lab has no host h2');
  let l: OptionLink | undefined = data.links.find((x) => x.link === spec.link);
  if (!l) { l = { ...spec, moves: false, samples: [] }; data.links.push(l); }
  const s = await sampleLabLink(LAB, h2.address, spec.link, log);
  if (s) l.samples.push(s);
  if (!MOVE_LINKS.includes(spec.link)) return;
  l.moves = true;
  let k = 0;
  for (const memMiB of SIZES_MIB) {
    for (const mbps of RATES_MIBS) {
      const c: CaseSpec = { memMiB, mbps, hardTimeoutMs: completionTimeoutMs(DEFAULT_POLICY, memMiB * 1024 * 1024) + HARD_TIMEOUT_SLACK_MS };
      for (const option of rotated(rep, k++)) {
        const r = await runCase(spec.link, c, option, rep, data.msPerTick);
        log(`${spec.link} ${memMiB} MiB ${mbps} MiB/s #${rep}: ${brief(r)}`);
        data.rows.push(r);
      }
    }
  }
}

const write = (data: OptionsRun): void => writeResults(results, 'options', data, renderOptionsMarkdown);

benchMain('options', LAB, results, renderOptionsMarkdown, async () => {
  const deadline = Date.now() + BUDGET_MIN * 60_000;
  const clkTck = Number((await must('getconf', ['CLK_TCK'])).trim()) || 100;
  const data: OptionsRun = {
    startedAt: new Date().toISOString(), endedAt: '', ...(await runFacts()), accel: 'tcg', repeat: REPEAT, repsDone: 0,
    budgetMin: BUDGET_MIN, baseline: BASELINE, options: OPTIONS, msPerTick: 1000 / clkTck, links: [], rows: [],
  };
  log(`start: ${data.machine.uptimeStart}; lab ${LAB}`);
  await withLab(LAB, 2, async () => {
    let lastMs = 0;
    for (let rep = 1; rep <= REPEAT; rep++) {
      if (rep > 1 && Date.now() + lastMs > deadline) {
        log(`stopping after ${rep - 1} repetitions (another would end past the ${BUDGET_MIN}-minute budget)`);
        break;
      }
      const r0 = Date.now();
      for (const spec of LINKS) {
        await runLink(spec, rep, data);
        await checkpoint(data, write);
      }
      lastMs = Date.now() - r0;
      data.repsDone = rep;
      await checkpoint(data, write);
    }
  }, { accel: 'tcg', bandwidth: LINKS[0]?.bandwidth ?? 'none' });
});
