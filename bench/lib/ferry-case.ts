/**
 * The Ferry row of a case: a fresh VM (no disk) on h1 running its dirtying workload, moved to h2
 * with `ferry move --probe --json` under a hard timeout, then checked and deleted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../../src/util/paths.js';
import { dirtyRate, ferry, load1, pagesRewritten, setDirty, waitHealthy, type CliRun } from './exec.js';
import { emptyRow, type CaseSpec, type Row } from './types.js';

/** `ferry move --json --probe`'s summary (CLI.md, "Moving"), or the CLI's error body. */
export interface MoveJson {
  id?: string;
  status?: string;
  totalMs?: number | null;
  downtimeMs?: number | null;
  transferredBytes?: number | null;
  passes?: number | null;
  /** Whether the memory (and disk) streams ran over TLS; null from a tree before encryption. */
  encrypted?: boolean | null;
  /** A storage move's disk copy: bytes the mirrors covered and ms until every disk was in sync. */
  diskBytes?: number | null;
  diskMs?: number | null;
  phaseMs?: Record<string, number>;
  blackoutMs?: number;
  tcpGapMs?: number;
  tcpAlive?: boolean;
  error?: { code: string; message: string };
}

/** `ferry vm show --json` (or `vm create`), the parts the benchmarks read. */
export interface VmJson { ip: string; host: string; state: string; uuid?: string; pid?: number | null; disks?: { path: string; sizeBytes: number; pool: string }[] }

/**
 * What a benchmark may run around a case's `ferry move` (bench:options reads CPU and link
 * counters there): it gets the VM as `vm create` answered and must call `move` once and resolve
 * with what it resolved with.
 */
export type AroundMove = (vm: VmJson, move: () => Promise<CliRun<MoveJson>>) => Promise<CliRun<MoveJson>>;

/** How long `vm create` may take: a TCG boot of the guest, on a busy machine. */
const CREATE_TIMEOUT_MS = 180_000;

/** Copies the move's summary into the row. */
function fill(row: Row, j: MoveJson): void {
  row.status = j.status ?? 'error';
  row.errorCode = j.error?.code ?? null;
  row.errorMessage = j.error?.message ?? null;
  row.totalMs = j.totalMs ?? null;
  row.downtimeMs = j.downtimeMs ?? null;
  row.bytes = j.transferredBytes ?? null;
  row.passes = j.passes ?? null;
  row.phaseMs = j.phaseMs ?? null;
  row.blackoutMs = j.blackoutMs ?? null;
  row.tcpGapMs = j.tcpGapMs ?? null;
  row.tcpAlive = j.tcpAlive ?? null;
  row.encrypted = j.encrypted ?? null;
  row.performMs = j.phaseMs?.perform ?? null;
  row.overheadMs = row.totalMs !== null && row.performMs !== null ? row.totalMs - row.performMs : null;
}

/**
 * Counts, in the source agent's log (h1's ferryd.log in the lab folder), the MAC redirects of job
 * `id` and those it undid because QEMU did not pause within its hold time. Null when unreadable.
 */
function redirectsOf(lab: string, id: string): { redirects: number; undone: number } | null {
  let text: string;
  try { text = readFileSync(join(labDir(lab), 'h1', 'ferryd.log'), 'utf8'); } catch { return null; }
  let redirects = 0;
  let undone = 0;
  for (const l of text.split('\n')) {
    if (!l.includes(id)) continue;
    try {
      const msg = (JSON.parse(l) as { msg?: string }).msg;
      if (msg === 'network redirected to the destination') redirects++;
      if (msg === 'network redirect undone') undone++;
    } catch { /* not a JSON line */ }
  }
  return { redirects, undone };
}

/** Records where the VM is after the move and whether its guest still answers. */
async function checkAfter(lab: string, name: string, ip: string, row: Row): Promise<void> {
  const show = await ferry<VmJson>(['vm', 'show', name, '--json'], 30_000);
  const healthy = await waitHealthy(lab, ip, 10_000);
  row.after = { host: show.json?.host ?? null, state: show.json?.state ?? null, healthy };
  if (row.status === 'completed' && row.after.host !== 'h2') row.notes.push(`completed but the VM is on ${String(row.after.host)}`);
  if (row.status === 'failed' && row.after.host !== 'h1') row.notes.push(`failed but the VM is on ${String(row.after.host)}, not back on h1`);
  if (!healthy) row.notes.push('guest /health did not answer ok after the move');
}

/**
 * Runs the Ferry row of case `c` in lab `lab` (the CLI's current context) and resolves with it;
 * never rejects: a failed step is recorded in the row. The VM is deleted afterwards. `around`,
 * when given, wraps the move. `who` names the row (`ferry-plain` when the caller allowed
 * unencrypted moves on both hosts); a row whose summary says otherwise gets a note.
 */
export async function runFerryCase(lab: string, c: CaseSpec, rep: number, around?: AroundMove, who: 'ferry' | 'ferry-plain' = 'ferry'): Promise<Row> {
  const row = emptyRow(who, c, rep, load1());
  const name = `bf${c.memMiB}d${c.mbps}`;
  try {
    const created = await ferry<VmJson>(['vm', 'create', name, '--host', 'h1', '--memory', `${c.memMiB}M`, '--json'], CREATE_TIMEOUT_MS);
    if (created.code !== 0 || !created.json?.ip) {
      row.errorMessage = `vm create failed: ${(created.stderr || created.stdout).trim().slice(0, 300)}`;
      return row;
    }
    const ip = created.json.ip;
    if (!(await waitHealthy(lab, ip, 60_000))) row.notes.push('guest /health not ok before the move');
    if (!(await setDirty(lab, ip, c.mbps))) row.notes.push(`could not set /dirty?mbps=${c.mbps}`);
    const before = await pagesRewritten(lab, ip);
    const step = (): Promise<CliRun<MoveJson>> => ferry<MoveJson>(['move', name, '--to', 'h2', '--probe', '--json'], c.hardTimeoutMs);
    const move = await (around ? around(created.json, step) : step());
    const afterStats = await pagesRewritten(lab, ip);
    row.stepMs = Math.round(move.ms);
    row.dirtyMiBs = dirtyRate(before, afterStats);
    if (move.timedOut) {
      row.status = 'hung';
      row.errorMessage = `ferry move did not return within ${Math.round(c.hardTimeoutMs / 1000)} s`;
    } else if (move.json) {
      fill(row, move.json);
      if (row.status === 'completed' && row.encrypted !== (who === 'ferry')) row.notes.push(`the move's summary says encrypted: ${String(row.encrypted)}`);
      const r = move.json.id ? redirectsOf(lab, move.json.id) : null;
      row.redirects = r?.redirects ?? null;
      row.redirectsUndone = r?.undone ?? null;
    } else {
      row.errorMessage = `ferry move printed no JSON (exit ${String(move.code)}): ${move.stderr.trim().slice(0, 300)}`;
    }
    await checkAfter(lab, name, ip, row);
  } catch (e) {
    row.errorMessage = `benchmark step failed: ${String(e)}`;
  } finally {
    const del = await ferry(['vm', 'delete', name, '--json'], 60_000);
    if (del.code !== 0 && !/VM_NOT_FOUND|not found/i.test(del.stdout + del.stderr)) {
      row.notes.push(`vm delete failed: ${(del.stderr || del.stdout).trim().slice(0, 200)}`);
    }
  }
  return row;
}
