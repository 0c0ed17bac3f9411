import { FerryError } from '../errors/index.js';
import type { MigrationInfo, Qmp } from '../qmp/index.js';
import type { JobStore } from './store.js';
import {
  decide, progressView, sampleFromInfo, type AppliedSettings, type ConvergenceAction, type ConvergencePolicy, type ProgressSample,
} from './policy.js';
import { HELD_THROTTLE_PERCENT, sourceSettings, tlsParameters } from './settings.js';
import type { PerformanceOption } from './host-settings.js';
import type { Logger } from 'pino';

/** What the perform loop needs. */
export interface PerformInput {
  jobId: string;
  qmp: Qmp;
  uri: string;
  policy: ConvergencePolicy;
  /** QEMU's max-bandwidth for this move, bytes per second; effectively unlimited when absent. */
  maxBandwidthBytesPerSec?: number;
  /** How memory travels; the destination was prepared for the same option. */
  performance?: PerformanceOption;
  /** The stream's TLS (the source's client credentials and the destination's name); absent: plain TCP. */
  tls?: { creds: string; hostname: string };
  memoryBytes: number;
  jobs: JobStore;
  log: Logger;
  signal: AbortSignal;
  /** Called with each progress view (the agent streams it). */
  onProgress?: (p: ReturnType<typeof progressView>) => void;
  /**
   * The network hand-over, called at pre-switchover (the source just paused) before QEMU is told
   * to continue; it must not block: it only writes to an open pipe.
   */
  cutover?: () => void;
  /**
   * Work that must end while the guest is paused at pre-switchover, before QEMU sends the last
   * state (a storage move settles its disk mirrors here). A failure cancels the migration.
   */
  beforeContinue?: () => Promise<void>;
  /**
   * Told as QEMU is told to send the last state (`migrate-continue`): from then on the move is not
   * cancelled any more (the stream ends within moments and the destination resumes the VM as it sees
   * it end), and an abort is ignored until the stream has ended.
   */
  onContinue?: () => void;
}

const SAMPLE_WINDOW = 64;
const PROGRESS_WRITE_MS = 250;
/**
 * query-migrate every 100 ms: enough for the policy and the progress bar. The moments that need
 * speed (pre-switchover, completed) arrive as QMP events, which wake the loop at once; polling
 * faster only took CPU from the guest and QEMU on a busy host.
 */
const POLL_MS = 100;

/**
 * Source side of `perform`: sets capabilities and parameters, sends `migrate`, then follows
 * query-migrate and QEMU's MIGRATION events until QEMU reports `completed`. It lets the VM
 * continue at pre-switchover at once, from the event itself (each millisecond there is guest
 * downtime), and carries out what the pure convergence policy decides. Returns the final info.
 * Throws MIGRATION_FAILED when QEMU fails the stream, MIGRATION_TIMEOUT when the policy aborts,
 * ABORTED on cancel; the caller rolls back.
 */
export async function perform(p: PerformInput): Promise<MigrationInfo> {
  const { qmp, policy } = p;
  const s = sourceSettings(policy, p.maxBandwidthBytesPerSec, p.performance);
  await qmp.execute('migrate-set-capabilities', { capabilities: s.capabilities });
  // TLS strings are always set: cleared for a plain move, since a QEMU keeps an earlier move's.
  await qmp.execute('migrate-set-parameters', { ...s.parameters, ...tlsParameters(p.tls, 'source') });
  let wake: () => void = () => undefined;
  let settleError: unknown;
  let continued = false;
  const proceed = (): void => {
    // Cancelled while the disks settled: the rollback cancels the migration instead.
    if (p.signal.aborted) return;
    continued = true;
    p.onContinue?.();
    void qmp.execute('migrate-continue', { state: 'pre-switchover' })
      .catch((e: unknown) => p.log.warn({ err: e, job: p.jobId }, 'migrate-continue failed'));
  };
  const onMigration = (d: { status: string }): void => {
    if (d.status === 'pre-switchover') {
      // The guest is paused: from now on its frames must go to the destination, where they wait
      // for it; then let QEMU send the last state. Without disks to settle both are immediate.
      p.cutover?.();
      if (!p.beforeContinue) proceed();
      else {
        p.beforeContinue().then(proceed, (e: unknown) => {
          settleError = e;
          void qmp.execute('migrate_cancel').catch(() => undefined);
          wake();
        });
      }
    }
    wake();
  };
  qmp.on('MIGRATION', onMigration);
  try {
    await qmp.execute('migrate', { uri: p.uri });
    return await follow(p, Date.now());
  } finally {
    qmp.off('MIGRATION', onMigration);
  }

  async function follow(inp: PerformInput, startedAtMs: number): Promise<MigrationInfo> {
    const applied: AppliedSettings = {
      startedAtMs, downtimeLimitMs: policy.downtimeTargetMs, throttleCeilingPercent: policy.allowAutoConverge ? HELD_THROTTLE_PERCENT : 0,
      postcopyStarted: false, lastActionPass: 0,
    };
    const samples: ProgressSample[] = [];
    let lastWrite = 0;
    for (;;) {
      if (inp.signal.aborted && !continued) throw new FerryError('ABORTED', 'The move was cancelled.');
      const info = await qmp.execute('query-migrate', undefined, { timeoutMs: 10_000 });
      const sample = sampleFromInfo(info, Date.now());
      const prev = samples.at(-1);
      samples.push(sample);
      if (sample.pass >= 2) applied.bulkEndedAtMs ??= sample.atMs;
      if (samples.length > SAMPLE_WINDOW) samples.shift();
      const view = progressView(sample, prev);
      if (sample.atMs - lastWrite >= PROGRESS_WRITE_MS || info.status === 'completed') {
        lastWrite = sample.atMs;
        inp.jobs.recordProgress(inp.jobId, view);
        inp.onProgress?.(view);
      }
      if (info.status === 'completed') return info;
      if (settleError !== undefined) throw settleError;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new FerryError('MIGRATION_FAILED', `QEMU ${info.status} the migration stream${info['error-desc'] ? `: ${info['error-desc']}` : ''}.`);
      }
      await act(decide({ samples, policy, applied, memoryBytes: inp.memoryBytes }), sample, applied, inp);
      await new Promise<void>((r) => {
        const t = setTimeout(r, POLL_MS);
        wake = () => { clearTimeout(t); r(); };
      });
    }
  }

  async function act(a: ConvergenceAction, sample: ProgressSample, applied: AppliedSettings, inp: PerformInput): Promise<void> {
    if (a.kind === 'none') return;
    inp.log.info({ job: inp.jobId, action: a, pass: sample.pass }, 'convergence');
    switch (a.kind) {
      case 'set-downtime':
        await qmp.execute('migrate-set-parameters', { 'downtime-limit': a.downtimeMs });
        applied.downtimeLimitMs = a.downtimeMs;
        break;
      case 'throttle':
        await qmp.execute('migrate-set-parameters', { 'max-cpu-throttle': a.maxCpuThrottlePercent, 'cpu-throttle-initial': Math.min(a.maxCpuThrottlePercent, 20) });
        applied.throttleCeilingPercent = a.maxCpuThrottlePercent;
        break;
      case 'start-postcopy':
        inp.jobs.apply(inp.jobId, { type: 'postcopy' });
        await qmp.execute('migrate-start-postcopy');
        applied.postcopyStarted = true;
        break;
      case 'abort':
        throw new FerryError(a.code, `The move did not converge: ${a.reason}`);
    }
    applied.lastActionPass = sample.pass;
  }
}
