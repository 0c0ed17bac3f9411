/**
 * Convergence: what to do about a pre-copy migration that is not finishing, decided by a pure
 * function of query-migrate samples and a policy. The executor polls, calls {@link decide},
 * and carries out the one action it gets; it never decides anything itself.
 *
 * The ladder, cheapest for the guest first (the order Nova and KubeVirt use as well):
 * raise the downtime limit in steps → let auto-converge throttle the vCPUs, raising its
 * ceiling in steps → switch to post-copy when allowed → abort at the completion timeout,
 * which scales with the VM's memory. Post-copy is never aborted: once the destination runs
 * the guest, cancelling would lose it.
 */
import type { MigrationInfo, MigrationStatus } from '../qmp/index.js';
import type { HostSettings } from './host-settings.js';

/** One query-migrate reading, flattened; `atMs` is the executor's monotonic clock. */
export interface ProgressSample {
  atMs: number;
  status: MigrationStatus;
  transferredBytes: number;
  remainingBytes: number;
  totalBytes: number;
  /** Guest pages dirtied per second; 0 until QEMU measured one pass. */
  dirtyPagesRate: number;
  pageSize: number;
  /** QEMU's measured throughput, megabits per second. */
  mbps: number;
  /** QEMU's estimate of the final pause at the current rate; null when it gives none. */
  expectedDowntimeMs: number | null;
  /** QEMU's dirty-sync-count: pass 1 is the bulk copy, each later sync starts a pass. */
  pass: number;
  /** vCPU time taken by auto-converge, percent. */
  throttlePercent: number;
}

/** Turns a query-migrate answer into a sample. RAM figures are 0 before QEMU reports them (setup). */
export function sampleFromInfo(info: MigrationInfo, atMs: number): ProgressSample {
  const ram = info.ram;
  return {
    atMs,
    status: info.status ?? 'none',
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    totalBytes: ram?.total ?? 0,
    dirtyPagesRate: ram?.['dirty-pages-rate'] ?? 0,
    pageSize: ram?.['page-size'] ?? 4096,
    mbps: ram?.mbps ?? 0,
    expectedDowntimeMs: info['expected-downtime'] ?? null,
    pass: ram?.['dirty-sync-count'] ?? 0,
    throttlePercent: info['cpu-throttle-percentage'] ?? 0,
  };
}

/** How hard Ferry may push to make a move converge. */
export interface ConvergencePolicy {
  /** The downtime-limit a move starts with. */
  downtimeTargetMs: number;
  /** Limits to raise it to, in order, while the move does not converge. */
  downtimeStepsMs: readonly number[];
  /** Never allow a longer pause than this. */
  maxDowntimeMs: number;
  /** May the guest be slowed with auto-converge? */
  allowAutoConverge: boolean;
  /** Ceilings (max-cpu-throttle) to raise auto-converge to, in order. */
  throttleStepsPercent: readonly number[];
  /** May the move switch to post-copy? (The destination's userfaultfd must work.) */
  allowPostcopy: boolean;
  /**
   * The completion timeout is base + the larger of perGiB × guest memory in GiB and bulkFactor ×
   * the bulk copy's duration (measured, or projected while it runs): memory alone would cut off a
   * healthy move on a slow link, whose first pass alone can outlast it.
   */
  completionTimeoutBaseMs: number;
  completionTimeoutPerGiBMs: number;
  completionTimeoutBulkFactor: number;
  /** No action before this pass: pass 1 is the bulk copy and always looks slow. */
  minPasses: number;
  /** Passes to let an action work before judging (and acting) again. */
  passesBetweenActions: number;
  /** "Not shrinking": the remaining bytes after this many passes are not … */
  stuckPasses: number;
  /** … at least this fraction smaller than before them. */
  minShrinkRatio: number;
  /** "Not converging" also when the dirty rate is at least this fraction of the transfer rate. */
  dirtyToTransferRatio: number;
}

/** Defaults measured to suit the lab (TCG, 256 MiB–1 GiB guests); every field can be overridden. */
export const DEFAULT_POLICY: ConvergencePolicy = Object.freeze({
  downtimeTargetMs: 50,
  downtimeStepsMs: Object.freeze([100, 200, 300, 500]),
  maxDowntimeMs: 500,
  allowAutoConverge: true,
  throttleStepsPercent: Object.freeze([20, 40, 60, 80, 99]),
  allowPostcopy: false,
  completionTimeoutBaseMs: 20_000,
  completionTimeoutPerGiBMs: 20_000,
  completionTimeoutBulkFactor: 4,
  minPasses: 2,
  passesBetweenActions: 2,
  stuckPasses: 3,
  minShrinkRatio: 0.1,
  dirtyToTransferRatio: 1,
});

/**
 * The policy of one move: the host's policy, with its migration settings' downtime target and
 * post-copy choice, and what the move asked for (`ferry move --postcopy`) on top. The largest
 * pause allowed is never below the target.
 */
export function policyForMove(
  host: ConvergencePolicy, opts: { allowPostcopy?: boolean; allowAutoConverge?: boolean },
  settings?: Pick<HostSettings, 'downtimeTargetMs' | 'allowPostcopy'>,
): ConvergencePolicy {
  const downtimeTargetMs = settings?.downtimeTargetMs ?? host.downtimeTargetMs;
  return {
    ...host,
    downtimeTargetMs,
    maxDowntimeMs: Math.max(host.maxDowntimeMs, downtimeTargetMs),
    ...(settings ? { allowPostcopy: settings.allowPostcopy } : {}),
    ...(opts.allowPostcopy !== undefined ? { allowPostcopy: opts.allowPostcopy } : {}),
    ...(opts.allowAutoConverge !== undefined ? { allowAutoConverge: opts.allowAutoConverge } : {}),
  };
}

/** What the executor has applied so far; it updates this after each action it carries out. */
export interface AppliedSettings {
  /** When `migrate` was sent, on the samples' clock. */
  startedAtMs: number;
  downtimeLimitMs: number;
  /** Current max-cpu-throttle ceiling; 0 while auto-converge has not been raised from its start value. */
  throttleCeilingPercent: number;
  postcopyStarted: boolean;
  /** The pass during which the last action was applied; 0 for none. */
  lastActionPass: number;
  /** When the executor first saw pass 2 (the bulk copy's end), on the samples' clock. */
  bulkEndedAtMs?: number;
}

/** The one action {@link decide} asks for. `reason` is a sentence for the log and the event stream. */
export type ConvergenceAction =
  | { kind: 'none'; reason: string }
  | { kind: 'set-downtime'; downtimeMs: number; reason: string }
  /** Raise auto-converge's ceiling (migrate-set-parameters max-cpu-throttle). */
  | { kind: 'throttle'; maxCpuThrottlePercent: number; reason: string }
  | { kind: 'start-postcopy'; reason: string }
  /** migrate_cancel, roll back, and fail the job with this code. */
  | { kind: 'abort'; code: 'MIGRATION_TIMEOUT'; reason: string };

/** Everything {@link decide} looks at. */
export interface DecideInput {
  /** Recent samples, oldest first (a window covering at least the last few passes). */
  samples: readonly ProgressSample[];
  policy: ConvergencePolicy;
  applied: AppliedSettings;
  /** Guest memory, for the completion timeout. */
  memoryBytes: number;
}

const GiB = 1024 ** 3;

/**
 * How long the bulk copy (pass 1) took, or will take at its pace so far; null before 5% of it is
 * done (too early to project).
 */
export function bulkCopyMs(samples: readonly ProgressSample[], applied: AppliedSettings): number | null {
  if (applied.bulkEndedAtMs !== undefined) return applied.bulkEndedAtMs - applied.startedAtMs;
  const last = samples.at(-1);
  if (!last || last.status !== 'active' || last.pass !== 1 || last.totalBytes === 0) return null;
  const done = (last.totalBytes - last.remainingBytes) / last.totalBytes;
  return done < 0.05 ? null : (last.atMs - applied.startedAtMs) / done;
}

/** The completion timeout: base + max(perGiB × GiB of memory, bulkFactor × the bulk copy's duration). */
export const completionTimeoutMs = (p: ConvergencePolicy, memoryBytes: number, bulkMs: number | null = null): number =>
  Math.round(p.completionTimeoutBaseMs
    + Math.max(p.completionTimeoutPerGiBMs * (memoryBytes / GiB), p.completionTimeoutBulkFactor * (bulkMs ?? 0)));

const POSTCOPY: ReadonlySet<MigrationStatus> = new Set(['postcopy-active', 'postcopy-paused', 'postcopy-recover']);
/** States in which aborting still leaves the source intact. */
const ABORTABLE: ReadonlySet<MigrationStatus> = new Set(['setup', 'active']);

/** Dirty bytes per second of a sample. */
export const dirtyBytesPerSec = (s: ProgressSample): number => s.dirtyPagesRate * s.pageSize;
/** QEMU's throughput of a sample in bytes per second. */
export const transferBytesPerSec = (s: ProgressSample): number => (s.mbps * 1e6) / 8;

/** A judgement of convergence, with the sentence that explains it. */
export interface Verdict { stuck: boolean; reason: string }

/** Peak remaining bytes per pass: the peak sits right after the sync that starts the pass. */
function peaksByPass(samples: readonly ProgressSample[]): Map<number, number> {
  const peaks = new Map<number, number>();
  for (const s of samples) peaks.set(s.pass, Math.max(peaks.get(s.pass) ?? 0, s.remainingBytes));
  return peaks;
}

/**
 * Is the migration failing to converge, judged only from samples after pass `sincePass` (so
 * an action is judged by what happened after it)? Stuck when QEMU's own estimate is over the
 * limit and either the remaining bytes have not shrunk by `minShrinkRatio` over
 * `stuckPasses` passes, or the guest dirties memory at least as fast as the link carries it.
 */
export function judge(samples: readonly ProgressSample[], policy: ConvergencePolicy, sincePass: number, limitMs: number): Verdict {
  const window = samples.filter((s) => s.pass > sincePass && s.status === 'active');
  const last = window.at(-1);
  if (!last) return { stuck: false, reason: 'No sample since the last action yet.' };
  if (last.expectedDowntimeMs !== null && last.expectedDowntimeMs <= limitMs) {
    return { stuck: false, reason: `QEMU expects a ${last.expectedDowntimeMs} ms pause, within the ${limitMs} ms limit.` };
  }
  const measured = window.filter((s) => s.dirtyPagesRate > 0 && s.mbps > 0);
  if (measured.length > 0) {
    const dirty = measured.reduce((a, s) => a + dirtyBytesPerSec(s), 0) / measured.length;
    const xfer = measured.reduce((a, s) => a + transferBytesPerSec(s), 0) / measured.length;
    if (dirty >= xfer * policy.dirtyToTransferRatio) {
      return { stuck: true, reason: `The guest dirties ${mb(dirty)} MB/s, at least the ${mb(xfer)} MB/s the link carries.` };
    }
  }
  const peaks = peaksByPass(window);
  const ref = Math.max(...[...peaks.keys()].filter((p) => p <= last.pass - policy.stuckPasses));
  const before = peaks.get(ref);
  const now = peaks.get(last.pass) ?? last.remainingBytes;
  if (before !== undefined && now > before * (1 - policy.minShrinkRatio)) {
    return { stuck: true, reason: `Remaining memory went from ${mb(before)} MB to ${mb(now)} MB over ${last.pass - ref} passes.` };
  }
  return { stuck: false, reason: before === undefined ? 'Too few passes to judge yet.' : 'Remaining memory is shrinking.' };
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/**
 * The next downtime limit: the smallest step that fits QEMU's estimate; the largest when the
 * estimate is beyond every step (climbing one step at a time would only waste passes before the
 * throttle, which is what such a move needs); the next step up when QEMU gives no estimate.
 */
export function nextDowntimeMs(p: ConvergencePolicy, currentMs: number, expectedMs: number | null): number | undefined {
  const steps = [...new Set([...p.downtimeStepsMs, p.maxDowntimeMs])]
    .filter((s) => s > currentMs && s <= p.maxDowntimeMs)
    .sort((a, b) => a - b);
  if (expectedMs !== null) return steps.find((s) => s >= expectedMs) ?? steps.at(-1);
  return steps[0];
}

/** The next auto-converge ceiling above `currentPercent`, if any is left. */
export const nextThrottlePercent = (p: ConvergencePolicy, currentPercent: number): number | undefined =>
  [...p.throttleStepsPercent].sort((a, b) => a - b).find((s) => s > currentPercent && s <= 99);

/** At or past the completion timeout: post-copy if allowed and still possible, else abort if still safe. */
function onTimeout(last: ProgressSample, input: DecideInput, limit: number): ConvergenceAction {
  const why = `The move has run past its ${Math.round(limit / 1000)} s completion timeout`;
  if (input.policy.allowPostcopy && last.status === 'active') return { kind: 'start-postcopy', reason: `${why}; switching to post-copy.` };
  if (ABORTABLE.has(last.status)) return { kind: 'abort', code: 'MIGRATION_TIMEOUT', reason: `${why}; aborting it.` };
  return { kind: 'none', reason: `${why}, but QEMU is already switching over (${last.status}).` };
}

/** Climbs the ladder one rung: downtime, then throttle, then post-copy; none when it is exhausted. */
function escalate(last: ProgressSample, input: DecideInput, verdict: Verdict): ConvergenceAction {
  const { policy, applied } = input;
  const downtime = nextDowntimeMs(policy, applied.downtimeLimitMs, last.expectedDowntimeMs);
  if (downtime !== undefined) return { kind: 'set-downtime', downtimeMs: downtime, reason: `${verdict.reason} Raising the downtime limit to ${downtime} ms.` };
  if (policy.allowAutoConverge) {
    const ceiling = nextThrottlePercent(policy, applied.throttleCeilingPercent);
    if (ceiling !== undefined) {
      return { kind: 'throttle', maxCpuThrottlePercent: ceiling, reason: `${verdict.reason} Letting auto-converge throttle the guest up to ${ceiling}%.` };
    }
  }
  if (policy.allowPostcopy) return { kind: 'start-postcopy', reason: `${verdict.reason} Nothing else is left; switching to post-copy.` };
  return { kind: 'none', reason: `${verdict.reason} Nothing else is allowed; the move aborts at its completion timeout unless it converges.` };
}

/**
 * The convergence policy: one action from the samples, the policy and what was applied.
 * Pure; the executor carries out the action and records it in {@link AppliedSettings}.
 */
export function decide(input: DecideInput): ConvergenceAction {
  const { samples, policy, applied } = input;
  const last = samples.at(-1);
  if (!last) return { kind: 'none', reason: 'No sample yet.' };
  if (applied.postcopyStarted || POSTCOPY.has(last.status)) {
    return { kind: 'none', reason: 'Post-copy is under way; it always completes and is never aborted.' };
  }
  const limit = completionTimeoutMs(policy, input.memoryBytes, bulkCopyMs(samples, applied));
  if (last.atMs - applied.startedAtMs >= limit) return onTimeout(last, input, limit);
  if (last.status !== 'active') return { kind: 'none', reason: `Nothing to decide while QEMU is in ${last.status}.` };
  if (last.pass < policy.minPasses) return { kind: 'none', reason: 'Still in the bulk copy.' };
  if (applied.lastActionPass > 0 && last.pass < applied.lastActionPass + policy.passesBetweenActions) {
    return { kind: 'none', reason: 'Letting the last action take effect.' };
  }
  const verdict = judge(samples, policy, applied.lastActionPass, applied.downtimeLimitMs);
  return verdict.stuck ? escalate(last, input, verdict) : { kind: 'none', reason: verdict.reason };
}

/** What the progress bar and the event stream show. */
export interface ProgressView {
  status: MigrationStatus;
  /** Share of guest RAM not waiting to be sent, 0–100 (it drops back a little at each new pass). */
  percent: number;
  transferredBytes: number;
  remainingBytes: number;
  totalBytes: number;
  throughputBytesPerSec: number;
  /** Decimal megabytes per second, as the guest workload states its rate. */
  dirtyRateMBps: number;
  pass: number;
  expectedDowntimeMs: number | null;
  throttlePercent: number;
}

/**
 * The progress view of a sample. Throughput comes from the bytes sent since `prev` when there
 * is one (QEMU's `mbps` covers only its last ~100 ms bandwidth window), else from `mbps`.
 */
export function progressView(sample: ProgressSample, prev?: ProgressSample): ProgressView {
  const { totalBytes: total, remainingBytes: remaining } = sample;
  const done = sample.status === 'completed';
  const percent = done ? 100 : total > 0 ? Math.min(100, Math.max(0, ((total - remaining) / total) * 100)) : 0;
  const dt = prev ? (sample.atMs - prev.atMs) / 1000 : 0;
  const delta = prev ? sample.transferredBytes - prev.transferredBytes : 0;
  const throughput = dt > 0 && delta >= 0 ? delta / dt : transferBytesPerSec(sample);
  return {
    status: sample.status,
    percent: Math.round(percent * 10) / 10,
    transferredBytes: sample.transferredBytes,
    remainingBytes: done ? 0 : remaining,
    totalBytes: total,
    throughputBytesPerSec: Math.round(throughput),
    dirtyRateMBps: Math.round(dirtyBytesPerSec(sample) / 1e5) / 10,
    pass: sample.pass,
    expectedDowntimeMs: sample.expectedDowntimeMs,
    throttlePercent: sample.throttlePercent,
  };
}
