/**
 * The migration job as a state machine: a discriminated union on `status`, moved only by
 * {@link step}. The phases are libvirt's v3 ones (DESIGN.md, "The migration protocol"):
 *
 * ```
 *  queued ─start─▶ begin ─▶ prepare ─▶ perform ─▶ finish ─▶ confirm ─done─▶ completed
 *                    │         │          │          │
 *                    │ fail    └──────────┴──────────┴─ fail / cancel ─▶ finish⟲ ─▶ confirm⟲ ─done─▶ failed | cancelled
 *                    └──────────────── fail / cancel ───────────────────────────▶ confirm⟲
 * ```
 *
 * `⟲` marks the rollback direction: the same two phases run their failure branch (the
 * destination kills its QEMU and deletes what prepare made; the source resumes the VM).
 * A job whose destination has resumed the VM (forward `confirm`) or that switched to
 * post-copy can only go forward: `fail` and `cancel` are illegal there, because after that
 * point the source no longer holds the only valid copy of the guest.
 */
import { FerryError, type ErrorCode } from '../errors/index.js';
import type { ProgressView } from './policy.js';
import type { PerformanceOption } from './host-settings.js';

/** The five phases, in the order a successful move passes them. */
export const PHASES = ['begin', 'prepare', 'perform', 'finish', 'confirm'] as const;
/** One of {@link PHASES}. */
export type Phase = (typeof PHASES)[number];

/** The statuses CLI.md promises (`ferry migration list`). */
export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
/** One of {@link JOB_STATUSES}. */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Which end of the move a host's record describes; each agent keeps its own record of a job. */
export type JobRole = 'source' | 'destination';

/** Why a job failed: a catalogue code and one sentence. */
export interface JobError {
  code: ErrorCode;
  message: string;
}

/** Waiting for a slot under the host's limits; nothing has been touched yet. */
export interface QueuedState { status: 'queued' }

/** Moving forward through `phase`. `postcopy` is set before migrate-start-postcopy is sent. */
export interface ForwardState {
  status: 'running';
  direction: 'forward';
  phase: Phase;
  postcopy: boolean;
}

/** Undoing a failed or cancelled move: `finish` cleans the destination, `confirm` resumes the source. */
export interface RollbackState {
  status: 'running';
  direction: 'rollback';
  phase: 'finish' | 'confirm';
  /** The forward phase in which the move failed. */
  failedIn: Phase;
  error: JobError;
  cancelled: boolean;
}

/** The VM runs on the destination and the source let it go. */
export interface CompletedState { status: 'completed'; /** Set when the move switched to post-copy. */ postcopy?: true }

/** Ended without moving the VM (or, with code QEMU_GONE, with the VM lost). */
export interface FailedState { status: 'failed'; failedIn: Phase; error: JobError }

/** Cancelled before switch-over; the VM kept running on the source. */
export interface CancelledState { status: 'cancelled'; failedIn: Phase; error: JobError }

/** Where a job stands. */
export type JobState = QueuedState | ForwardState | RollbackState | CompletedState | FailedState | CancelledState;

/** The only things that move a job; {@link step} says which are legal where. */
export type JobEvent =
  /** A slot was taken: queued → begin. */
  | { type: 'start' }
  /** The next phase begins (persisted before its side effects). */
  | { type: 'enter'; phase: Phase }
  /** Post-copy is about to start: from now on the job can only go forward. */
  | { type: 'postcopy' }
  /** Something failed before switch-over: turn back. */
  | { type: 'fail'; error: JobError }
  /** The user cancelled before switch-over: turn back. */
  | { type: 'cancel' }
  /** `confirm` ended, in either direction. */
  | { type: 'done' }
  /**
   * Ends a running job at once, skipping the phases left: after an agent restart, once the
   * steps of the recovery decision (recovery.ts) ran; or when nothing can be undone (post-copy broke).
   */
  | EndEvent;

/** The `end` event; failing or cancelling needs the error that explains it. */
export type EndEvent =
  | { type: 'end'; status: 'completed' }
  | { type: 'end'; status: 'failed' | 'cancelled'; error: JobError };

/** What the user asked for with `ferry move`. */
export interface MoveOptions {
  /** Copy the disks along (shared-nothing move) instead of relying on shared storage. */
  includeStorage: boolean;
  /** Where the destination puts the copied disks; its default pool when absent. */
  storagePath?: string;
  /** Run the lab's guest-perceived downtime probe during the move. */
  probe?: boolean;
  /** May the policy switch to post-copy (needs userfaultfd on the destination)? */
  allowPostcopy?: boolean;
  /** May the policy throttle the guest's vCPUs with auto-converge? */
  allowAutoConverge?: boolean;
  /** After a storage move, keep the source's images instead of deleting them. */
  retainSourceDisks?: boolean;
  /** Cap on the memory stream, bytes per second (`ferry move --max-bandwidth`); the source records the smaller of this and its host's cap. */
  maxBandwidthBytesPerSec?: number;
  /** How memory travels; the source records its host's option with the job and sends it in prepare, so both QEMUs agree. */
  performance?: PerformanceOption;
}

/** The figures `ferry move --json` reports; null until known. */
export interface JobTotals {
  totalMs: number | null;
  /** QEMU's own `downtime` of the final stop-and-copy. */
  downtimeMs: number | null;
  transferredBytes: number | null;
  /** Passes over guest RAM (QEMU's dirty-sync-count). */
  passes: number | null;
  /** A storage move's disk copy, apart from memory: bytes mirrored until every disk was in sync, and how long that took. */
  diskBytes: number | null;
  diskMs: number | null;
  /** Did memory (and disks) travel over TLS? Set in prepare; null before, or for a job of an older agent. */
  encrypted?: boolean | null;
}

/** A job as one host's store holds it. */
export interface JobRecord {
  /** Chosen by the source; the destination's record of the same move has the same id. */
  id: string;
  vm: string;
  /** Host names. */
  source: string;
  destination: string;
  role: JobRole;
  state: JobState;
  options: MoveOptions;
  /** The last progress sample, for `ferry migration show` and for restarts. */
  progress: ProgressView | null;
  /** When each phase was entered (ISO 8601); a phase never entered is absent. */
  phaseStartedAt: Partial<Record<Phase, string>>;
  totals: JobTotals;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
}

/** The phase after `p` in a forward move, or undefined after `confirm`. */
export function nextPhase(p: Phase): Phase | undefined {
  return PHASES[PHASES.indexOf(p) + 1];
}

/** The CLI status of a state. */
export const statusOf = (s: JobState): JobStatus => s.status;

/** The phase a state is in or ended in; a queued job counts as `begin` (queueing is part of it). */
export function phaseOf(s: JobState): Phase {
  switch (s.status) {
    case 'queued': return 'begin';
    case 'running': return s.phase;
    case 'completed': return 'confirm';
    case 'failed':
    case 'cancelled': return s.failedIn;
  }
}

/** True once the job has ended, whichever way. */
export const isTerminal = (s: JobState): boolean =>
  s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled';

/**
 * True once only going forward is safe: the destination has resumed the VM (`confirm` forward)
 * or post-copy began (the destination runs the guest and pulls pages from the source).
 */
export const pastSwitchover = (s: JobState): boolean =>
  s.status === 'completed' || (s.status === 'running' && s.direction === 'forward' && (s.phase === 'confirm' || s.postcopy));

/** True when a `cancel` event is legal now. */
export const canCancel = (s: JobState): boolean =>
  s.status === 'queued' || (s.status === 'running' && s.direction === 'forward' && !pastSwitchover(s));

const bad = (s: JobState, e: JobEvent, why: string): FerryError =>
  new FerryError('JOB_BAD_PHASE', `A migration job that is ${describe(s)} cannot take "${e.type}": ${why}.`);

/** Human words for a state, used in error sentences. */
export function describe(s: JobState): string {
  if (s.status !== 'running') return s.status;
  return s.direction === 'rollback' ? `rolling back in ${s.phase}` : `running in ${s.phase}${s.postcopy ? ' (post-copy)' : ''}`;
}

/** The error a cancel records. */
export const cancelError = (phase: Phase): JobError => ({
  code: 'MIGRATION_CANCELLED',
  message: `The move was cancelled in phase ${phase}; the VM keeps running on the source.`,
});

/** Turning back from forward phase `failedIn`: begin has nothing on the destination to clean. */
function turnBack(failedIn: Phase, error: JobError, cancelled: boolean): RollbackState {
  return { status: 'running', direction: 'rollback', phase: failedIn === 'begin' ? 'confirm' : 'finish', failedIn, error, cancelled };
}

/** The terminal state an `end` event leads to; a queued job cannot complete. */
function ended(s: QueuedState | ForwardState | RollbackState, e: EndEvent): JobState {
  if (e.status === 'completed') {
    if (s.status === 'queued') throw bad(s, e, 'a queued job has moved nothing');
    return completed(s);
  }
  const failedIn = s.status === 'queued' ? 'begin' : s.direction === 'rollback' ? s.failedIn : s.phase;
  return { status: e.status, failedIn, error: e.error };
}

const completed = (s: ForwardState | RollbackState): CompletedState =>
  (s.direction === 'forward' && s.postcopy ? { status: 'completed', postcopy: true } : { status: 'completed' });

function stepQueued(s: QueuedState, e: JobEvent): JobState {
  switch (e.type) {
    case 'start': return { status: 'running', direction: 'forward', phase: 'begin', postcopy: false };
    case 'cancel': return { status: 'cancelled', failedIn: 'begin', error: cancelError('begin') };
    case 'fail': return { status: 'failed', failedIn: 'begin', error: e.error };
    case 'end': return ended(s, e);
    default: throw bad(s, e, 'it has not started');
  }
}

function stepForward(s: ForwardState, e: JobEvent): JobState {
  switch (e.type) {
    case 'enter': {
      const next = nextPhase(s.phase);
      if (e.phase !== next) throw bad(s, e, `the phase after ${s.phase} is ${next ?? 'none'}, not ${e.phase}`);
      return { ...s, phase: next };
    }
    case 'postcopy':
      if (s.phase !== 'perform' || s.postcopy) throw bad(s, e, 'post-copy starts once, in perform');
      return { ...s, postcopy: true };
    case 'fail':
    case 'cancel':
      if (pastSwitchover(s)) throw bad(s, e, 'the destination already runs the VM, so the move can only go forward');
      return turnBack(s.phase, e.type === 'fail' ? e.error : cancelError(s.phase), e.type === 'cancel');
    case 'done':
      if (s.phase !== 'confirm') throw bad(s, e, 'only confirm ends a job');
      return completed(s);
    case 'end': return ended(s, e);
    case 'start': throw bad(s, e, 'it has already started');
  }
}

function stepRollback(s: RollbackState, e: JobEvent): JobState {
  switch (e.type) {
    case 'enter':
      if (s.phase !== 'finish' || e.phase !== 'confirm') throw bad(s, e, 'a rollback goes from finish to confirm only');
      return { ...s, phase: 'confirm' };
    case 'done':
      if (s.phase !== 'confirm') throw bad(s, e, 'the destination has not been cleaned up yet');
      return s.cancelled
        ? { status: 'cancelled', failedIn: s.failedIn, error: s.error }
        : { status: 'failed', failedIn: s.failedIn, error: s.error };
    case 'end': return ended(s, e);
    default: throw bad(s, e, 'it is already rolling back');
  }
}

/**
 * The one step function of a migration job. Pure: returns the next state or throws
 * JOB_BAD_PHASE for an illegal transition. Persisting and emitting is the store's setter
 * (`JobStore.apply` in store.ts); nothing else changes a job's state.
 */
export function step(s: JobState, e: JobEvent): JobState {
  switch (s.status) {
    case 'queued': return stepQueued(s, e);
    case 'running': return s.direction === 'forward' ? stepForward(s, e) : stepRollback(s, e);
    default: throw bad(s, e, 'it has ended');
  }
}

/** The state a new record starts in: the source queues; the destination's record is born in prepare. */
export function initialState(role: JobRole): JobState {
  return role === 'source' ? { status: 'queued' } : { status: 'running', direction: 'forward', phase: 'prepare', postcopy: false };
}

/** The flat summary CLI.md's `ferry move --json` prints. */
export interface JobSummary {
  id: string;
  vm: string;
  source: string;
  destination: string;
  status: JobStatus;
  phase: Phase;
  totalMs: number | null;
  downtimeMs: number | null;
  transferredBytes: number | null;
  passes: number | null;
  /** A storage move's disk copy: bytes mirrored and milliseconds until every disk was in sync; null without one. */
  diskBytes: number | null;
  diskMs: number | null;
  /** Did the move switch to post-copy (the guest ran on the destination while its last pages arrived)? */
  postcopy: boolean;
  /** Did the memory and disk streams travel over TLS (null until prepare decided)? */
  encrypted: boolean | null;
  /** Milliseconds spent in each phase entered so far. */
  phaseMs: Partial<Record<Phase, number>>;
  error?: JobError;
}

/** Time spent per phase: from its start to the next entered phase's start (or the end / now). */
export function phaseDurations(r: JobRecord, nowIso: string): Partial<Record<Phase, number>> {
  const out: Partial<Record<Phase, number>> = {};
  const entered = PHASES.filter((p) => r.phaseStartedAt[p] !== undefined);
  entered.forEach((p, i) => {
    const next = entered[i + 1];
    const end = (next ? r.phaseStartedAt[next] : undefined) ?? r.endedAt ?? nowIso;
    out[p] = Math.max(0, Date.parse(end) - Date.parse(r.phaseStartedAt[p] ?? end));
  });
  return out;
}

/** The record as CLI.md's JSON summary. */
export function summarize(r: JobRecord, nowIso = new Date().toISOString()): JobSummary {
  const s = r.state;
  const error = s.status === 'failed' || s.status === 'cancelled' || (s.status === 'running' && s.direction === 'rollback') ? s.error : undefined;
  return {
    id: r.id, vm: r.vm, source: r.source, destination: r.destination, status: s.status, phase: phaseOf(s),
    ...r.totals, encrypted: r.totals.encrypted ?? null, postcopy: (s.status === 'completed' || (s.status === 'running' && s.direction === 'forward')) && s.postcopy === true,
    phaseMs: phaseDurations(r, nowIso), ...(error ? { error } : {}),
  };
}
