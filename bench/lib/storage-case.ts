/**
 * The steps of one storage-benchmark case, each measured into a row and never rejecting (a failed
 * step is recorded in its row): a Ferry move with or without its disks (`ferry move … --probe`;
 * with its disks also unencrypted, both hosts allowing it just for that move),
 * a live storage move on one host (`ferry vm move-storage`), and the baseline, `qemu-img convert`
 * of the same live image into another folder, timed.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../../src/util/paths.js';
import { allowInsecure, ferry, load1, run, setDirty, type CliRun } from './exec.js';
import type { MoveJson } from './ferry-case.js';
import { checkGuest, diskPath, guestRates, guestStats, imageFacts, otherHost, type BenchVm } from './storage-vm.js';
import { emptyStorageRow, type Kind, type StorageCase, type StorageRow } from './storage-types.js';

/** `ferry vm move-storage --json`, the parts read here. */
interface MoveStorageJson {
  totalMs?: number;
  disks?: { sizeBytes: number; allocatedBytes: number }[];
  error?: { code: string; message: string };
}

/** Hard cap on one copy of `sizeMiB`: a minute plus 20 MiB/s, far below anything measured. */
export const copyTimeoutMs = (sizeMiB: number): number => 60_000 + (sizeMiB / 20) * 1000;

/** A host's default pool folder in the lab (a folder on this machine, like every host's). */
export const poolDir = (lab: string, host: string): string => join(labDir(lab), host, 'pools', 'default');

const failText = (r: { stderr: string; stdout: string; code: number | null }): string =>
  `exit ${String(r.code)}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`;

/** Asks the guest for its load, runs `step`, reads the guest's counters around it, resets the load. */
async function underLoad(lab: string, vm: BenchVm, c: StorageCase, row: StorageRow, step: () => Promise<void>): Promise<void> {
  if (!(await setDirty(lab, vm.ip, c.dirtyMbps))) row.notes.push(`could not set /dirty?mbps=${c.dirtyMbps}`);
  const a = await guestStats(lab, vm.ip);
  try {
    await step();
  } finally {
    Object.assign(row, guestRates(a, await guestStats(lab, vm.ip)));
    if (c.dirtyMbps !== 0) await setDirty(lab, vm.ip, 0);
  }
}

/** Records the guest's answers after a step, and anything wrong with them as notes. */
async function check(lab: string, vm: BenchVm, row: StorageRow): Promise<void> {
  const g = await checkGuest(lab, vm);
  row.check = g;
  row.to = g.host;
  if (g.diskVerify !== 'ok') row.notes.push(`/disk/verify: ${g.diskVerify}`);
  if (g.memVerify !== 'ok') row.notes.push(`/verify: ${g.memVerify}`);
  if (!g.bootIdSame) row.notes.push('the guest\'s boot id changed');
  if (!g.healthy) row.notes.push('guest /health did not answer ok');
}

/**
 * Moves `vm` to the other host with `ferry move --probe --json`, with `--include-storage` for a
 * `ferry-move` or `plain-move` (its disk copy is diskBytes / diskMs; the plain one with unencrypted
 * moves allowed on both hosts meanwhile) and without for a `memory-move` (shared pool).
 */
export async function moveRow(lab: string, vm: BenchVm, c: StorageCase, rep: number, kind: 'ferry-move' | 'plain-move' | 'memory-move'): Promise<StorageRow> {
  const row = emptyStorageRow(kind, c, rep, load1());
  row.from = vm.host;
  try {
    const path = await diskPath(vm.name);
    const facts = path ? await imageFacts(path) : undefined;
    row.allocatedBytes = facts?.actualSize ?? null;
    const storage = kind !== 'memory-move';
    const timeout = storage ? copyTimeoutMs(vm.sizeMiB) + 60_000 : 120_000;
    const args = ['move', vm.name, '--to', otherHost(vm.host), '--probe', '--json', ...(storage ? ['--include-storage'] : [])];
    await underLoad(lab, vm, c, row, async () => {
      let mv: CliRun<MoveJson>;
      try {
        if (kind === 'plain-move') await allowInsecure(true);
        mv = await ferry<MoveJson>(args, timeout);
      } finally {
        // A failure here is noted, not thrown: the move's own result stands (the report keeps
        // only encrypted ferry-move rows, so an insecure setting left on cannot skew them).
        if (kind === 'plain-move') await allowInsecure(false).catch((e: unknown) => { row.notes.push(String(e)); });
      }
      row.stepMs = Math.round(mv.ms);
      if (mv.timedOut) { row.status = 'hung'; row.errorMessage = `ferry move did not return within ${Math.round(timeout / 1000)} s`; return; }
      const j = mv.json;
      if (!j) { row.errorMessage = `ferry move printed no JSON (${failText(mv)})`; return; }
      row.status = j.status ?? 'error';
      row.errorCode = j.error?.code ?? null;
      row.errorMessage = j.error?.message ?? null;
      Object.assign(row, {
        copyBytes: j.diskBytes ?? null, copyMs: j.diskMs ?? null, totalMs: j.totalMs ?? null, downtimeMs: j.downtimeMs ?? null,
        transferredBytes: j.transferredBytes ?? null, phaseMs: j.phaseMs ?? null, blackoutMs: j.blackoutMs ?? null,
        tcpGapMs: j.tcpGapMs ?? null, tcpAlive: j.tcpAlive ?? null, encrypted: j.encrypted ?? null,
      });
      if (row.status === 'completed' && row.encrypted !== (kind !== 'plain-move')) row.notes.push(`the move's summary says encrypted: ${String(row.encrypted)}`);
    });
    await check(lab, vm, row);
  } catch (e) {
    row.errorMessage = `benchmark step failed: ${String(e)}`;
  }
  return row;
}

/** Moves `vm`'s disk live into a new folder of its host's default pool with `ferry vm move-storage`. */
export async function localMoveRow(lab: string, vm: BenchVm, c: StorageCase, rep: number): Promise<StorageRow> {
  const row = emptyStorageRow('local-move', c, rep, load1());
  row.from = vm.host;
  try {
    const path = await diskPath(vm.name);
    row.allocatedBytes = (path ? await imageFacts(path) : undefined)?.actualSize ?? null;
    const dir = join(poolDir(lab, vm.host), `moved-${c.load}-${rep}`);
    const timeout = copyTimeoutMs(vm.sizeMiB);
    await underLoad(lab, vm, c, row, async () => {
      const r = await ferry<MoveStorageJson>(['vm', 'move-storage', vm.name, '--to-path', dir, '--json'], timeout);
      row.stepMs = Math.round(r.ms);
      if (r.timedOut) { row.status = 'hung'; row.errorMessage = `move-storage did not return within ${Math.round(timeout / 1000)} s`; return; }
      if (r.code !== 0 || r.json?.totalMs === undefined) {
        row.errorCode = r.json?.error?.code ?? null;
        row.errorMessage = r.json?.error?.message ?? `move-storage failed (${failText(r)})`;
        return;
      }
      row.status = 'completed';
      row.copyMs = r.json.totalMs;
      row.totalMs = r.json.totalMs;
      row.copyBytes = r.json.disks?.reduce((a, d) => a + d.sizeBytes, 0) ?? null;
    });
    await check(lab, vm, row);
  } catch (e) {
    row.errorMessage = `benchmark step failed: ${String(e)}`;
  }
  return row;
}

/**
 * The baseline: `qemu-img convert -p -U -O qcow2` of `vm`'s live image (-U: read without the lock
 * QEMU holds) into a new file in the default pool folder of its host (convert-local,
 * convert-flush) or of the other host (convert-other), timed by wall clock; convert-flush adds
 * `-t writeback` so the output is flushed to disk at the end. The copy is deleted afterwards. The
 * guest runs under the case's load meanwhile.
 */
export async function convertRow(lab: string, vm: BenchVm, c: StorageCase, rep: number, kind: Extract<Kind, `convert-${string}`>): Promise<StorageRow> {
  const row = emptyStorageRow(kind, c, rep, load1());
  const host = kind === 'convert-other' ? otherHost(vm.host) : vm.host;
  const dst = join(poolDir(lab, host), `bench-convert-${process.pid}.qcow2`);
  row.from = vm.host;
  row.to = host;
  try {
    const src = await diskPath(vm.name);
    const facts = src ? await imageFacts(src) : undefined;
    if (!src || !facts) throw new Error(`no image facts for ${vm.name}`);
    row.allocatedBytes = facts.actualSize;
    row.copyBytes = facts.virtualSize;
    const timeout = copyTimeoutMs(vm.sizeMiB);
    await underLoad(lab, vm, c, row, async () => {
      const cache = kind === 'convert-flush' ? ['-t', 'writeback'] : [];
      const r = await run('qemu-img', ['convert', '-p', '-U', ...cache, '-O', 'qcow2', src, dst], timeout);
      row.stepMs = Math.round(r.ms);
      if (r.code === 0) {
        row.status = 'completed';
        row.copyMs = row.stepMs;
        row.totalMs = row.stepMs;
      } else {
        row.status = r.timedOut ? 'hung' : 'failed';
        row.errorMessage = `qemu-img convert failed (${failText(r)})`;
      }
    });
  } catch (e) {
    row.errorMessage = `benchmark step failed: ${String(e)}`;
  } finally {
    rmSync(dst, { force: true });
  }
  return row;
}
