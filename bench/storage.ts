/**
 * `npm run bench:storage`: disk copy benchmark (issue 4, point 7). For disks of 1 GiB and 4 GiB
 * filled with real data, with the guest idle (its fixed 4 KiB record every 100 ms) and busy (that
 * plus memory dirtying: the guest has no disk write-rate knob), it measures in one 2-host lab:
 * `ferry move --include-storage --probe` (disk copy throughput and blackout; in idle cases also
 * the same move back unencrypted, which prices the NBD stream's TLS), a memory-only move
 * of a same-size VM on the shared pool (blackout), `ferry vm move-storage` on one host, and the
 * baseline `qemu-img convert` of the same live image on the same machine. Writes
 * bench/results/storage.md (and the raw numbers to bench/results/storage.raw.json, not committed).
 * Needs root and a built tree. `node dist/bench/storage.js --render` rewrites storage.md from
 * storage.raw.json without running. BENCH_SMOKE=1 runs one short case into a temporary folder.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, startLab, stopLab } from '../src/lab/index.js';
import { repoRoot } from '../src/util/paths.js';
import { ferry, load1, run } from './lib/exec.js';
import { benchMain, checkpoint, runFacts, writeResults } from './lib/harness.js';
import { convertRow, localMoveRow, moveRow } from './lib/storage-case.js';
import { renderStorageMarkdown } from './lib/storage-report.js';
import { createVm, fillDisk, type BenchVm } from './lib/storage-vm.js';
import type { Load, StorageCase, StorageRow, StorageRun } from './lib/storage-types.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const SIZES_MIB = SMOKE ? [1024] : [1024, 4096];
const LOADS: Load[] = SMOKE ? ['idle'] : ['idle', 'busy'];
/** Repetitions per case (BENCH_REPEAT, default 3). */
const REPEAT = SMOKE ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 3) || 1);
/** Wall-clock budget (BENCH_BUDGET_MIN, default 15): a repetition that would not end within it is not started. */
const BUDGET_MIN = Math.max(1, Number(process.env.BENCH_BUDGET_MIN ?? 15) || 15);
const VM_MEM_MIB = 256;
/** The busy guest's memory rewrite rate, MiB/s (the middle rate of bench:migrate). */
const BUSY_DIRTY_MBPS = 20;

const LAB = `bstor${process.pid}`;
const results = SMOKE ? mkdtempSync(join(tmpdir(), 'ferry-bench-smoke-')) : join(repoRoot(), 'bench', 'results');
const log = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}] ${s}\n`); };

const brief = (r: StorageRow): string => {
  const mibs = r.copyBytes && r.copyMs ? ` ${(r.copyBytes / 1048576 / (r.copyMs / 1000)).toFixed(0)} MiB/s (${r.copyMs} ms)` : '';
  const probe = r.blackoutMs !== null ? `, blackout ${r.blackoutMs} ms, TCP gap ${String(r.tcpGapMs)} ms` : '';
  const guest = r.check ? `, disk ${r.check.diskVerify}, memory ${r.check.memVerify}` : '';
  return `${r.kind} ${r.status}${r.errorCode ? ` ${r.errorCode}` : ''}${mibs}${probe}${guest}${r.errorMessage ? ` — ${r.errorMessage}` : ''}`;
};

/** Writes the markdown and the raw JSON of what was measured so far. */
const write = (data: StorageRun): void => writeResults(results, 'storage', data, renderStorageMarkdown);

/** One repetition of every load for VMs `s` (moves with its disk) and `m` (shared pool). */
async function repetition(s: BenchVm, m: BenchVm, sizeMiB: number, rep: number, data: StorageRun): Promise<void> {
  for (const load of LOADS) {
    const c: StorageCase = { sizeMiB, load, dirtyMbps: load === 'busy' ? BUSY_DIRTY_MBPS : 0 };
    const steps: (() => Promise<StorageRow>)[] = [
      () => convertRow(LAB, s, c, rep, 'convert-local'),
      ...(load === 'idle' ? (['convert-flush', 'convert-other'] as const).map((k) => () => convertRow(LAB, s, c, rep, k)) : []),
      () => moveRow(LAB, s, c, rep, 'ferry-move'),
      // What TLS costs the copy: the same move back, unencrypted (idle cases, for time).
      ...(load === 'idle' ? [() => moveRow(LAB, s, c, rep, 'plain-move')] : []),
      () => localMoveRow(LAB, s, c, rep),
      () => moveRow(LAB, m, c, rep, 'memory-move'),
    ];
    for (const step of steps) {
      // Every step starts with no dirty page cache behind it (see StorageRow.syncBeforeMs).
      const synced = await run('sync', [], 300_000);
      const r = await step();
      r.syncBeforeMs = synced.code === 0 ? Math.round(synced.ms) : null;
      log(`${sizeMiB} MiB ${load} #${rep}: ${brief(r)}`);
      data.rows.push(r);
    }
  }
}

/** Creates the two VMs of a disk size, fills the moving one, runs the repetitions within the budget, deletes the VMs. */
async function runSize(sizeMiB: number, data: StorageRun, deadline: number): Promise<void> {
  const names = [`ss${sizeMiB}`, `sm${sizeMiB}`];
  data.repsDone[String(sizeMiB)] = 0;
  try {
    log(`${sizeMiB} MiB: creating ${names.join(', ')} and filling ${names[0]}`);
    const s = await createVm(LAB, names[0] as string, sizeMiB, 'default', VM_MEM_MIB);
    data.prep.push(await fillDisk(LAB, s));
    const m = await createVm(LAB, names[1] as string, sizeMiB, 'shared', VM_MEM_MIB);
    data.prep.push({ vm: m.name, sizeMiB, pool: 'shared', filledBytes: 0, fillMs: null, allocatedBytes: null, notes: [] });
    let lastMs = 0;
    for (let rep = 1; rep <= REPEAT; rep++) {
      if (rep > 1 && Date.now() + lastMs > deadline) {
        log(`${sizeMiB} MiB: stopping after ${rep - 1} repetitions (another would end past the ${BUDGET_MIN}-minute budget)`);
        break;
      }
      const t0 = Date.now();
      await repetition(s, m, sizeMiB, rep, data);
      lastMs = Date.now() - t0;
      data.repsDone[String(sizeMiB)] = rep;
      write(data);
    }
  } catch (e) {
    log(`${sizeMiB} MiB: set-up failed: ${String(e)}`);
    data.prep.push({ vm: names[0] as string, sizeMiB, pool: 'default', filledBytes: 0, fillMs: null, allocatedBytes: null, notes: [`set-up failed: ${String(e)}`] });
  } finally {
    for (const name of names) await ferry(['vm', 'delete', name, '--json'], 60_000);
  }
}

async function newRun(): Promise<StorageRun> {
  return {
    startedAt: new Date().toISOString(), endedAt: '', ...(await runFacts()),
    accel: 'tcg', repeat: REPEAT, repsDone: {}, budgetMin: BUDGET_MIN,
    vmMemMiB: VM_MEM_MIB, busyDirtyMbps: BUSY_DIRTY_MBPS, prep: [], rows: [],
  };
}

benchMain('storage', LAB, results, renderStorageMarkdown, async () => {
  const deadline = Date.now() + BUDGET_MIN * 60_000;
  const data = await newRun();
  log(`start: ${data.machine.uptimeStart}`);
  log(`lab ${LAB} up`);
  await startLab(LAB, 2, { accel: 'tcg' });
  let failed = true;
  try {
    for (const sizeMiB of SIZES_MIB) {
      await runSize(sizeMiB, data, deadline);
      await checkpoint(data, write);
    }
    failed = false;
  } finally {
    await stopLab(LAB, { failed }).catch(() => labDown(LAB));
  }
});
