/** The shapes the migration benchmark passes between its parts and keeps in its raw JSON. */
import type { LinkSample } from './link.js';
import type { SetupStall } from './setup-stall.js';
import type { TlsCredsTimes } from './tls-creds.js';

/** One cell of the matrix. */
export interface CaseSpec {
  memMiB: number;
  /** Guest dirty rate asked for, MiB/s (the guest's /dirty?mbps=N). */
  mbps: number;
  /** Hard wall-clock cap on the move (Ferry) or the migrate (baseline), ms. */
  hardTimeoutMs: number;
}

/** An outage the probe saw, placed on the migration's time line (ms after `migrate` was sent). */
export interface PlacedStall { kind: 'ping' | 'tcp'; atMs: number; gapMs: number }

/** One measured row: a Ferry move or a baseline `migrate` of one case. */
export interface Row {
  /** `ferry` moves over TLS (the default); `ferry-plain` with `--insecure-migration on` on both hosts. */
  who: 'ferry' | 'ferry-plain' | 'baseline';
  memMiB: number;
  mbps: number;
  /** Repetition number, from 1. */
  rep: number;
  /** `completed`, `failed`, `cancelled`, `did not complete` (baseline at the cap), `hung` (killed at the cap), `error` (set-up failed). */
  status: string;
  errorCode: string | null;
  errorMessage: string | null;
  totalMs: number | null;
  downtimeMs: number | null;
  bytes: number | null;
  passes: number | null;
  blackoutMs: number | null;
  tcpGapMs: number | null;
  tcpAlive: boolean | null;
  /** Ferry: whether the move's streams ran over TLS, as its summary says; null for the baseline. */
  encrypted?: boolean | null;
  /** Ferry: time in phase perform, and total − perform (what Ferry adds around QEMU's migration). */
  performMs: number | null;
  overheadMs: number | null;
  phaseMs: Record<string, number> | null;
  /** MiB/s the guest really rewrote over the measured interval (its /stats counter). */
  dirtyMiBs: number | null;
  /** Wall time of the timed step (the `ferry move` command, or the migrate until its end), ms. */
  stepMs: number;
  /** 1-minute load average when the case started. */
  load1: number;
  /** Ferry: where the VM was and what it answered after the move. */
  after: { host: string | null; state: string | null; healthy: boolean } | null;
  /**
   * Ferry: from the source agent's log, how often the job pointed the VM's MAC at the destination
   * and how often it undid that because QEMU had not paused in time.
   */
  redirects: number | null;
  redirectsUndone: number | null;
  /** Baseline: the probe's outages over 50 ms, and when the migration completed (ms after `migrate`). */
  stalls: PlacedStall[] | null;
  completedAtMs: number | null;
  notes: string[];
}

/** Everything measured on one link setting. */
export interface LinkRun {
  /** `unshaped` or the tc rate, e.g. `1gbit`. */
  link: string;
  /** Raw single-stream throughput, measured before and after the cases. */
  samples: LinkSample[];
  rows: Row[];
  startedAt: string;
  endedAt: string;
}

/** The whole run, as written to migrate.raw.json. */
export interface BenchRun {
  startedAt: string;
  endedAt: string;
  machine: { nproc: number; memMiB: number; kernel: string; node: string; uptimeStart: string; uptimeEnd: string };
  qemu: string;
  accel: string;
  /** Moves per case and mover. */
  repeat: number;
  commit: string;
  links: LinkRun[];
  /** QEMU's own stall at the start of a migration, measured before the cases (bench/lib/setup-stall.ts). */
  setupStalls?: SetupStall[];
  /** object-add of QEMU's server TLS credentials with and without dh-params.pem (bench/lib/tls-creds.ts). */
  tlsCreds?: TlsCredsTimes;
}

/** An empty row of a case, filled in by the runner. */
export function emptyRow(who: Row['who'], c: CaseSpec, rep: number, load1: number): Row {
  return {
    who, memMiB: c.memMiB, mbps: c.mbps, rep, status: 'error', errorCode: null, errorMessage: null,
    totalMs: null, downtimeMs: null, bytes: null, passes: null, blackoutMs: null, tcpGapMs: null, tcpAlive: null,
    performMs: null, overheadMs: null, phaseMs: null, dirtyMiBs: null, stepMs: 0, load1, after: null,
    redirects: null, redirectsUndone: null, stalls: null, completedAtMs: null, notes: [],
  };
}
