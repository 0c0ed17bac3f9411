/**
 * `npm run bench:migrate`: live migration benchmark. For VMs of 256 MiB and 1 GiB, guest dirty
 * rates 0, 20 and 100 MiB/s, on a lab link unshaped and shaped to 1 Gbit/s, it moves a fresh VM
 * with `ferry move --probe` over TLS (the default), a fresh VM the same way with
 * `--insecure-migration on` on both hosts (what encryption costs), and the same guest with plain
 * QEMU `migrate` at QEMU's defaults, and measures the link's raw throughput in the same run. Writes bench/results/migrate.md (and the
 * raw numbers to bench/results/migrate.raw.json, not committed). Needs root and a built tree.
 * `node dist/bench/migrate.js --render` rewrites migrate.md from migrate.raw.json without running.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findImage } from '../src/image/index.js';
import { parseQemuVersion, ramTrimFor } from '../src/qemu/index.js';
import { nsName, startLab, stopLab, labDown } from '../src/lab/index.js';
import { completionTimeoutMs, DEFAULT_POLICY } from '../src/migration/index.js';
import { imageDir, repoRoot } from '../src/util/paths.js';
import { runBaselineCase, type BaselineEnv } from './lib/baseline.js';
import { measureSetupStalls } from './lib/setup-stall.js';
import { measureTlsCreds } from './lib/tls-creds.js';
import { allowInsecure, load1 } from './lib/exec.js';
import { runFerryCase } from './lib/ferry-case.js';
import { benchMain, checkpoint, runFacts, writeResults } from './lib/harness.js';
import { measureLink } from './lib/link.js';
import { renderMarkdown } from './lib/report.js';
import type { BenchRun, CaseSpec, LinkRun, Row } from './lib/types.js';

/** BENCH_SMOKE=1: one case on the unshaped link, results to a temporary folder (to try the benchmark itself). */
const SMOKE = process.env.BENCH_SMOKE === '1';
/** BENCH_SIZES=256,1024 (MiB) narrows the VM sizes; BENCH_NO_BASELINE=1 leaves out the plain-QEMU rows (for a TLS-only run on a busy machine). */
const SIZES_MIB = SMOKE ? [256] : (process.env.BENCH_SIZES ?? '256,1024').split(',').map(Number).filter((x) => x > 0);
const BASELINE = process.env.BENCH_NO_BASELINE !== '1';
const RATES_MIBS = SMOKE ? [20] : [0, 20, 100];
const LINKS: { link: string; bandwidth?: string }[] = SMOKE ? [{ link: 'unshaped' }] : [{ link: 'unshaped' }, { link: '1gbit', bandwidth: '1gbit' }];
/** Moves per case and mover (BENCH_REPEAT, default 3; the whole matrix runs once per repetition). */
const REPEAT = SMOKE ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 3) || 1);
/** Slack on top of Ferry's own completion timeout before a case counts as hung. */
const HARD_TIMEOUT_SLACK_MS = 45_000;
/** The baseline guest: an address at the top of h1's VM range and a MAC Ferry never derives (02:…, not 52:54:00:…). */
const BASELINE_IP = '10.77.1.250';
const BASELINE_MAC = '02:fe:be:4c:00:01';
const MIGRATION_PORT_BASE = 4600;

const LAB = `bench${process.pid}`;
const results = SMOKE ? mkdtempSync(join(tmpdir(), 'ferry-bench-smoke-')) : join(repoRoot(), 'bench', 'results');
const log = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}] ${s}\n`); };

/** The Ferry rows of a case: over TLS and unencrypted, in alternating order by repetition so neither always runs first. */
async function ferryRows(c: CaseSpec, rep: number, what: string): Promise<Row[]> {
  const order: ('ferry' | 'ferry-plain')[] = rep % 2 === 1 ? ['ferry', 'ferry-plain'] : ['ferry-plain', 'ferry'];
  const rows: Row[] = [];
  for (const who of order) {
    log(`${what}: ${who}`);
    try {
      if (who === 'ferry-plain') await allowInsecure(true);
      rows.push(await runFerryCase(LAB, c, rep, undefined, who));
    } finally {
      if (who === 'ferry-plain') await allowInsecure(false);
    }
    log(`  ${brief(rows.at(-1) as Row)}`);
  }
  return rows;
}

/** The matrix, with each case's hard timeout. */
function matrix(): CaseSpec[] {
  return SIZES_MIB.flatMap((memMiB) => RATES_MIBS.map((mbps) => ({
    memMiB, mbps, hardTimeoutMs: completionTimeoutMs(DEFAULT_POLICY, memMiB * 1024 * 1024) + HARD_TIMEOUT_SLACK_MS,
  })));
}

const brief = (r: Row): string =>
  `${r.who} ${r.status}${r.errorCode ? ` ${r.errorCode}` : ''} total ${String(r.totalMs)} ms, downtime ${String(r.downtimeMs)} ms, `
  + `blackout ${String(r.blackoutMs)} ms, TCP gap ${String(r.tcpGapMs)} ms, alive ${String(r.tcpAlive)}`;

/** Brings a lab up with the link setting, runs every case on it, measures the link around them, takes it down. */
async function runLink(spec: { link: string; bandwidth?: string }, env: Omit<BaselineEnv, 'lab' | 'destAddress'>, port: { next: number }): Promise<LinkRun> {
  log(`lab ${LAB} up, link ${spec.link}`);
  const status = await startLab(LAB, 2, { accel: 'tcg', ...(spec.bandwidth ? { bandwidth: spec.bandwidth } : {}) });
  const h2 = status.hosts.find((h) => h.name === 'h2');
  if (!h2) throw new Error('the lab has no host h2');
  const out: LinkRun = { link: spec.link, samples: [], rows: [], startedAt: new Date().toISOString(), endedAt: '' };
  let failed = true;
  try {
    const sample = async (): Promise<void> => {
      try {
        const s = await measureLink(nsName(LAB, 'h1'), nsName(LAB, 'h2'), h2.address);
        log(`link ${spec.link}: ${(s.bytesPerSec / 1048576).toFixed(0)} MiB/s`);
        out.samples.push(s);
      } catch (e) {
        log(`link measurement failed: ${String(e)}`);
      }
    };
    await sample();
    for (let rep = 1; rep <= REPEAT; rep++) {
      for (const c of matrix()) {
        const what = `${spec.link} ${c.memMiB} MiB ${c.mbps} MiB/s #${rep}`;
        out.rows.push(...(await ferryRows(c, rep, what)));
        if (!BASELINE) continue;
        log(`${what}: baseline`);
        const b = await runBaselineCase({ ...env, lab: LAB, destAddress: h2.address }, c, rep, port.next++);
        log(`  ${brief(b)}`);
        out.rows.push(b);
      }
    }
    await sample();
    failed = false;
  } finally {
    out.endedAt = new Date().toISOString();
    await stopLab(LAB, { failed }).catch(() => labDown(LAB));
  }
  return out;
}

/** Writes the markdown and the raw JSON of what was measured so far. */
const write = (runData: BenchRun): void => writeResults(results, 'migrate', runData, renderMarkdown);

benchMain('migrate', LAB, results, renderMarkdown, async (home) => {
  const image = findImage(imageDir());
  const runData: BenchRun = {
    startedAt: new Date().toISOString(), endedAt: '', ...(await runFacts()), accel: 'tcg', repeat: REPEAT, links: [],
  };
  log(`start: ${runData.machine.uptimeStart}`);
  const trim = ramTrimFor('tcg', parseQemuVersion(runData.qemu));
  const env = { image, workDir: join(home, 'baseline'), ip: BASELINE_IP, mac: BASELINE_MAC, ...(trim !== undefined ? { ramTrimKiB: trim } : {}) };
  const port = { next: MIGRATION_PORT_BASE };
  log('QEMU set-up stall');
  runData.setupStalls = await measureSetupStalls(image, join(home, 'stall'), SIZES_MIB, SMOKE ? 1 : 2);
  log('QEMU server TLS credentials');
  runData.tlsCreds = await measureTlsCreds(SMOKE ? 2 : 6);
  await checkpoint(runData, write);
  for (const spec of LINKS) {
    runData.links.push(await runLink(spec, env, port));
    await checkpoint(runData, write);
  }
});
