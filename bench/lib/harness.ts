/**
 * What every benchmark's entry point does around its cases: the `--render` mode, a FERRY_HOME of
 * its own with the lab taken down on Ctrl-C, the machine facts its results start with, and
 * writing NAME.md with NAME.raw.json beside it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../src/image/index.js';
import { labDown, requireRoot } from '../../src/lab/index.js';
import { imageDir, repoRoot } from '../../src/util/paths.js';
import { must, run } from './exec.js';
import type { BenchRun } from './types.js';

/** Writes `results`/NAME.raw.json and NAME.md rendered from it. */
export function writeResults<T>(results: string, name: string, data: T, render: (d: T) => string): void {
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, `${name}.raw.json`), `${JSON.stringify(data, null, 2)}\n`);
  writeFileSync(join(results, `${name}.md`), render(data));
}

/**
 * With `--render` on the command line, rewrites NAME.md from the raw numbers of the last run
 * (after a change to the report) and returns true; otherwise does nothing and returns false.
 */
export function renderOnly<T>(results: string, name: string, render: (d: T) => string): boolean {
  if (!process.argv.includes('--render')) return false;
  writeFileSync(join(results, `${name}.md`), render(JSON.parse(readFileSync(join(results, `${name}.raw.json`), 'utf8')) as T));
  return true;
}

/**
 * Checks for root, points FERRY_HOME at a new temporary folder (so the run's lab and contexts stay
 * apart from anyone else's) and takes lab `lab` down on SIGINT/SIGTERM. Returns the folder.
 */
export function benchHome(lab: string): string {
  requireRoot();
  const home = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  process.env.FERRY_HOME = home;
  const stop = (): void => { void labDown(lab).finally(() => process.exit(130)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return home;
}

/** The machine, QEMU and tree a run measures, with `uptime` at its start. */
export async function runFacts(): Promise<{ machine: BenchRun['machine']; qemu: string; commit: string }> {
  return {
    machine: {
      nproc: cpus().length, memMiB: Math.round(totalmem() / 1048576), kernel: release(), node: process.version,
      uptimeStart: (await must('uptime', [])).trim(), uptimeEnd: '',
    },
    qemu: (await must('qemu-system-x86_64', ['--version'])).split('\n')[0]?.trim() ?? 'unknown',
    commit: (await run('git', ['-C', repoRoot(), 'rev-parse', '--short', 'HEAD'], 10_000)).stdout.trim() || 'unknown',
  };
}

/** Notes the end time and load in `data` and writes what was measured so far (see {@link writeResults}). */
export async function checkpoint<T extends { machine: BenchRun['machine']; endedAt: string }>(data: T, write: (d: T) => void): Promise<void> {
  data.machine.uptimeEnd = (await must('uptime', [])).trim();
  data.endedAt = new Date().toISOString();
  write(data);
}

/**
 * A benchmark's entry point: with `--render`, rewrites NAME.md from NAME.raw.json and ends;
 * otherwise runs `body` with a FERRY_HOME of its own (see {@link benchHome}, lab `lab`) and the
 * guest image built, deletes that folder afterwards, and on failure ends the process with status
 * 1 and the error on stderr.
 */
export function benchMain<T>(name: string, lab: string, results: string, render: (d: T) => string, body: (home: string) => Promise<void>): void {
  const main = async (): Promise<void> => {
    if (renderOnly(results, name, render)) return;
    const home = benchHome(lab);
    const t0 = Date.now();
    try {
      await buildImage({ dir: imageDir() });
      await body(home);
      process.stderr.write(`bench:${name} done in ${Math.round((Date.now() - t0) / 1000)} s: ${join(results, `${name}.md`)}\n`);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  };
  main().catch((e: unknown) => {
    process.stderr.write(`bench:${name} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
