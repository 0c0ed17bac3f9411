/** The shapes the storage benchmark passes between its parts and keeps in its raw JSON. */
import type { BenchRun } from './types.js';

/**
 * The guest's load during a case. The test guest has no disk write-rate knob: it always writes
 * one 4 KiB record every 100 ms. `idle` is that alone; `busy` adds the memory writer
 * (/dirty?mbps=N), the only other load it offers, so the guest's vCPU works during the copy.
 */
export type Load = 'idle' | 'busy';

/** One cell of the matrix. */
export interface StorageCase {
  sizeMiB: number;
  load: Load;
  /** Memory the guest rewrites, MiB/s (0 when idle). */
  dirtyMbps: number;
}

/**
 * What a row measured: `ferry-move` is `ferry move --include-storage --probe`, `memory-move` the
 * same-size VM on the shared pool moved without copying (`ferry move --probe`), `local-move`
 * `ferry vm move-storage` on one host, `convert-local` / `convert-other` `qemu-img convert` of
 * the live image into a folder of the same host's pool / of the other host's pool, and
 * `convert-flush` the same-host one with `-t writeback`, which flushes its output at the end as
 * QEMU's mirror flushes its target before it reports READY (convert's default, `unsafe`, never does).
 * `plain-move` is a `ferry-move` with unencrypted moves allowed on both hosts (`--insecure-migration
 * on`, set just before and cleared just after): what TLS costs the disk copy.
 */
export type Kind = 'ferry-move' | 'plain-move' | 'memory-move' | 'local-move' | 'convert-local' | 'convert-flush' | 'convert-other';

/** What the guest answered after a step. */
export interface GuestCheck {
  host: string | null;
  state: string | null;
  healthy: boolean;
  /** `/disk/verify`'s body (`ok` when every record is intact) or `no answer`. */
  diskVerify: string;
  /** `/verify`'s body (test memory). */
  memVerify: string;
  /** Same boot id as before the step (no reboot, no workload restart). */
  bootIdSame: boolean;
}

/** One measured step. */
export interface StorageRow {
  kind: Kind;
  sizeMiB: number;
  load: Load;
  rep: number;
  /** Host before and after (the converts: the host of the image and of the target folder). */
  from: string | null;
  to: string | null;
  /** `completed`, `failed`, `hung` (killed at the hard timeout), `error` (set-up or the command failed). */
  status: string;
  errorCode: string | null;
  errorMessage: string | null;
  /** Bytes the copy covered: the mirrors' length (ferry-move), the image's virtual size (local-move, converts). */
  copyBytes: number | null;
  /** The source image's allocated bytes (qemu-img actual-size) before the step. */
  allocatedBytes: number | null;
  /** The copy's time: diskMs (ferry-move), the command's totalMs (local-move), wall time (converts). */
  copyMs: number | null;
  totalMs: number | null;
  downtimeMs: number | null;
  transferredBytes: number | null;
  phaseMs: Record<string, number> | null;
  blackoutMs: number | null;
  tcpGapMs: number | null;
  tcpAlive: boolean | null;
  /** What the move's summary says of its streams (moves only). */
  encrypted?: boolean | null;
  /** Wall time of the command, ms. */
  stepMs: number;
  /**
   * Time of the untimed `sync` run just before the step, ms: every step starts with no dirty page
   * cache left by the one before (a copy's writes go to the page cache; the next copy would
   * otherwise pay for writing them back).
   */
  syncBeforeMs: number | null;
  /** 1-minute load average when the step started. */
  load1: number;
  /** KiB/s the guest wrote to its disk during the step (its record counter × 4 KiB). */
  diskWriteKiBs: number | null;
  /** MiB/s of memory the guest rewrote during the step (its page counter). */
  dirtyMiBs: number | null;
  check: GuestCheck | null;
  notes: string[];
}

/** How a VM's disk was given data before the cases. */
export interface PrepRecord {
  vm: string;
  sizeMiB: number;
  pool: string;
  /** Bytes written with qemu-io (0xab from 64 MiB on), 0 when not filled. */
  filledBytes: number;
  fillMs: number | null;
  allocatedBytes: number | null;
  notes: string[];
}

/** The whole run, as written to storage.raw.json. */
export interface StorageRun {
  startedAt: string;
  endedAt: string;
  machine: BenchRun['machine'];
  qemu: string;
  accel: string;
  /** Repetitions asked for per case; `repsDone` says how many each size got within the time budget. */
  repeat: number;
  repsDone: Record<string, number>;
  budgetMin: number;
  commit: string;
  vmMemMiB: number;
  busyDirtyMbps: number;
  prep: PrepRecord[];
  rows: StorageRow[];
}

/** An empty row, filled in by the runner. */
export function emptyStorageRow(kind: Kind, c: StorageCase, rep: number, load1: number): StorageRow {
  return {
    kind, sizeMiB: c.sizeMiB, load: c.load, rep, from: null, to: null, status: 'error', errorCode: null, errorMessage: null,
    copyBytes: null, allocatedBytes: null, copyMs: null, totalMs: null, downtimeMs: null, transferredBytes: null, phaseMs: null,
    blackoutMs: null, tcpGapMs: null, tcpAlive: null, stepMs: 0, syncBeforeMs: null, load1, diskWriteKiBs: null, dirtyMiBs: null, check: null, notes: [],
  };
}
