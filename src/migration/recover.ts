import { deletesSourceDisks } from './storage.js';
import { FerryError } from '../errors/index.js';
import type { MigrationStatus, Qmp } from '../qmp/index.js';
import { isTerminal, type JobRecord } from './job.js';
import type { MigrationHost } from './host.js';
import { peerClient, type PeerClient } from './peer-client.js';
import { afterFinishRefused, recoveryAction, type EndingDecision, type Fact, type RecoveryFacts, type RecoveryStep } from './recovery.js';
import { resumeHere } from './resume.js';
import { closeTunnel, tunnelName, unpinMac } from '../qemu/index.js';
import { tapName } from '../vm/index.js';
import { confirmedIn, destinationLostIt } from './lost-there.js';
import type { EndEvent } from './job.js';
import type { FinishReply } from './protocol.js';

const RETRY_MS = 2000;
const MAX_ATTEMPTS = 60;
/** After MAX_ATTEMPTS tries RETRY_MS apart, a job that must wait is tried this often, for as long as it takes. */
const SLOW_RETRY_MS = 15_000;

/** When to try a waiting job's recovery again: every 2 s for 2 minutes, then every 15 s, never giving up. */
export const recoveryRetryDelayMs = (attempt: number): number => (attempt < MAX_ATTEMPTS ? RETRY_MS : SLOW_RETRY_MS);

/**
 * The jobs under recovery after a restart, so that `ferry migration cancel` can reach one that
 * waits for a silent peer: the run that drove it is gone, and only the recovery (a retry timer,
 * or an attempt asking the peer right now) remains.
 */
export class RecoveryWaits {
  private readonly recovering = new Set<string>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; run: () => void }>();
  private readonly cancels = new Set<string>();

  begin(id: string): void { this.recovering.add(id); }
  has(id: string): boolean { return this.recovering.has(id); }
  cancelRequested(id: string): boolean { return this.cancels.has(id); }

  /**
   * Asks a job's recovery to cancel the move: a waiting one runs at once, one asking its peer now
   * sees the request when it decides. False when the job is not under recovery.
   */
  requestCancel(id: string): boolean {
    if (!this.recovering.has(id)) return false;
    this.cancels.add(id);
    const t = this.timers.get(id);
    if (t) {
      clearTimeout(t.timer);
      this.timers.delete(id);
      t.run();
    }
    return true;
  }

  schedule(id: string, delayMs: number, run: () => void): void {
    const timer = setTimeout(() => { this.timers.delete(id); run(); }, delayMs);
    timer.unref();
    this.timers.set(id, { timer, run });
  }

  done(id: string): void {
    this.recovering.delete(id);
    this.cancels.delete(id);
  }
}

/**
 * Settles every unfinished job after an agent restart: gathers what this host and the peer see
 * now, asks the pure rule (recovery.ts) and carries out its steps. A job whose facts are not
 * known yet (the peer is down too) is tried again every few seconds.
 */
export async function recoverJobs(h: MigrationHost, inChain: InChain = (_j, fn) => fn(), waits = new RecoveryWaits()): Promise<void> {
  const jobs = h.jobs.active();
  // All of them at once, so a cancel reaches a job whose turn has not come yet.
  for (const job of jobs) waits.begin(job.id);
  for (const job of jobs) {
    // One job that throws does not keep the others from recovering; it is tried again.
    await inChain(job, () => recoverOne(h, job, 1, inChain, waits)).catch((e: unknown) => {
      h.log.error({ err: e, job: job.id }, 'recovering a move failed; trying again');
      later(h, job, 1, inChain, waits);
    });
  }
}

/** Runs a job's recovery where its other work runs (the destination's per-job chain). */
export type InChain = (job: JobRecord, fn: () => Promise<void>) => Promise<void>;

const later = (h: MigrationHost, job: JobRecord, attempt: number, inChain: InChain, waits: RecoveryWaits): void => {
  if (attempt === MAX_ATTEMPTS) h.log.warn({ job: job.id }, `the move's peer has not answered for 2 minutes; asking every ${SLOW_RETRY_MS / 1000} s from now on (ferry migration cancel on the source gives up on a destination that is gone for good)`);
  waits.schedule(job.id, recoveryRetryDelayMs(attempt), () => {
    void inChain(job, () => recoverOne(h, job, attempt + 1, inChain, waits)).catch((e: unknown) => h.log.error({ err: e, job: job.id }, 'recovery failed'));
  });
};

async function recoverOne(h: MigrationHost, job: JobRecord, attempt: number, inChain: InChain, waits: RecoveryWaits): Promise<void> {
  const current = h.jobs.get(job.id);
  if (isTerminal(current.state)) { waits.done(job.id); return; }
  const peerName = current.role === 'source' ? current.destination : current.source;
  const peer = peerClient(h, peerName, 10_000);
  const facts = await gather(h, current, peer);
  const decided = recoveryAction(current.role, current, facts, { cancelRequested: waits.cancelRequested(job.id) });
  const d = decided.kind === 'none' || decided.kind === 'wait' ? decided : { ...decided, end: withKeptImages(h, current, decided.steps, decided.end) };
  h.log.info({ job: current.id, role: current.role, facts, decision: d }, 'recovering a move');
  if (d.kind === 'none') { waits.done(job.id); return; }
  if (d.kind === 'wait') { later(h, current, attempt, inChain, waits); return; }
  if (await carryOut(h, current, peer, d, facts, () => later(h, current, attempt, inChain, waits))) waits.done(current.id);
}

/**
 * Runs a decision's steps and ends the job with its `end` (true); false after `retry`, when a step
 * must be tried again later. A destination that answers `finish-destination` with `resumed: false` replaces
 * the rest of the decision (recovery.ts, afterFinishRefused).
 */
async function carryOut(h: MigrationHost, current: JobRecord, peer: PeerClient, d: EndingDecision, facts: RecoveryFacts, retry: () => void): Promise<boolean> {
  for (const s of d.steps) {
    try {
      const refused = await runStep(h, current, peer, s, d.end);
      if (refused) {
        const instead = afterFinishRefused(current, facts, refused.error);
        h.log.warn({ job: current.id, decision: instead }, 'the destination could not resume the VM');
        return carryOut(h, current, peer, instead, facts, retry);
      }
    } catch (e) {
      const unreachable = e instanceof FerryError && e.code === 'HOST_UNREACHABLE';
      // Decide again later, from what the peer says then: a peer step that must be acknowledged went
      // unheard; the destination refused the cancel of a roll-back (it runs the VM now, and its record
      // in confirm then rolls the move forward; not for a VM lost anyway, whose refusal would come back
      // the same forever); or its resume failed otherwise (going on would end the move completed).
      const refusedCancel = d.kind === 'roll-back' && s === 'cancel-destination' && e instanceof FerryError && e.code === 'JOB_BAD_PHASE';
      if ((d.awaitPeer && unreachable) || refusedCancel || s === 'finish-destination') {
        h.log.warn({ job: current.id, step: s, err: e }, 'recovery step not done; deciding again later');
        retry();
        return false;
      }
      // The peer's clean-up must still happen when it comes back (invariant 2): keep asking.
      if (unreachable && s === 'cancel-destination') retryInBackground(h, current, () => peer.cancel(current.id, 'The source rolled the move back.'));
      else h.log.warn({ job: current.id, step: s, err: e }, 'recovery step failed; going on');
    }
  }
  h.jobs.apply(current.id, d.end);
  return true;
}

/** Retries a peer call every few seconds for a while (the peer may be restarting, or cut off). */
export function retryInBackground(h: MigrationHost, job: JobRecord, call: () => Promise<unknown>, attempt = 1): void {
  if (attempt > MAX_ATTEMPTS) { h.log.error({ job: job.id }, 'the peer never confirmed its clean-up'); return; }
  setTimeout(() => {
    call().then(() => h.log.info({ job: job.id }, 'the peer confirmed its clean-up'),
      () => retryInBackground(h, job, call, attempt + 1));
  }, RETRY_MS);
}

async function gather(h: MigrationHost, job: JobRecord, peer: PeerClient): Promise<RecoveryFacts> {
  const qmp = h.qmp(job.vm);
  const local = qmp ? await qmpFacts(qmp) : { alive: false, running: false as boolean };
  const remote = await peer.status(job.id).catch(() => undefined);
  const rAlive: Fact = remote ? remote.qemu.alive : 'unknown';
  const rRunning: Fact = remote ? remote.qemu.running : 'unknown';
  const own = { alive: local.alive, running: local.running };
  const [src, dst] = job.role === 'source' ? [own, { alive: rAlive, running: rRunning }] : [{ alive: rAlive, running: rRunning }, own];
  return {
    sourceQemuAlive: src.alive, sourceRunning: src.running, destQemuAlive: dst.alive, destRunning: dst.running,
    ...(local.status ? { qemuMigrationStatus: local.status } : {}),
    ...(remote?.qemu.migrationStatus ? { peerMigrationStatus: remote.qemu.migrationStatus } : {}),
    ...(job.role === 'source' && remote?.job ? { destConfirmed: confirmedIn(remote.job) } : {}),
    ...(job.role === 'source' && destinationLostIt(remote) ? { destLost: remote.job.error ? { message: remote.job.error.message } : {} } : {}),
  };
}

async function qmpFacts(qmp: Qmp): Promise<{ alive: boolean; running: boolean; status?: MigrationStatus }> {
  try {
    const st = await qmp.execute('query-status', undefined, { timeoutMs: 5000 });
    const mig = await qmp.execute('query-migrate', undefined, { timeoutMs: 5000 });
    return { alive: true, running: st.running, ...(mig.status ? { status: mig.status } : {}) };
  } catch {
    return { alive: false, running: false };
  }
}

/**
 * A destination that forgets a storage move's VM keeps its images (forget-destination): they may hold
 * what the guest wrote after the switch-over. Logged, and named in the job's end for the source to quote.
 */
export function withKeptImages(h: MigrationHost, job: JobRecord, steps: readonly RecoveryStep[], end: EndEvent): EndEvent {
  if (job.role !== 'destination' || !job.options.includeStorage || !steps.includes('forget-destination') || end.status === 'completed') return end;
  const paths = h.inv.find(job.vm)?.spec.disks.map((d) => d.path) ?? [];
  if (paths.length === 0) return end;
  h.log.warn({ job: job.id, vm: job.vm, images: paths }, 'the move\'s images stay on this host: they may hold what the guest wrote after the switch-over');
  return { ...end, error: { ...end.error, message: `${end.error.message} Its images stay on ${h.name} at ${paths.join(', ')}.` } };
}

/** Runs one step; a `finish-destination` the destination answered `resumed: false` returns its reply. */
async function runStep(h: MigrationHost, job: JobRecord, peer: PeerClient, step: RecoveryStep, end: EndEvent): Promise<FinishReply | undefined> {
  const qmp = h.qmp(job.vm);
  switch (step) {
    case 'cancel-migration': await qmp?.execute('migrate_cancel'); return;
    case 'cancel-destination': await peer.cancel(job.id, 'The source agent restarted during the move and rolled it back.'); return;
    case 'resume-source':
    case 'resume-destination': {
      if (qmp) await resumeHere(qmp);
      if (step === 'resume-source') migrationEnded(h, job.vm);
      return;
    }
    case 'stop-source': await h.releaseSource(job.vm, deletesSourceDisks(job), job.destination); return;
    case 'power-off-source': await h.powerOffKept(job.vm, end.status === 'completed' ? 'The move ended.' : end.error.message); return;
    case 'finish-destination': {
      const reply = await peer.finish(job.id, { outcome: 'success' });
      return reply.resumed ? undefined : reply;
    }
    case 'confirm-destination': await peer.confirm(job.id, { outcome: 'success', totals: job.totals }); return;
    case 'kill-destination':
    case 'clean-destination': if (h.inv.find(job.vm)) await h.discardIncoming(job.vm, job.options.includeStorage); return;
    case 'forget-destination': if (h.inv.find(job.vm)) await h.discardIncoming(job.vm, false); return;
    case 'take-ownership': migrationEnded(h, job.vm); return;
    case 'release': {
      // The hand-over ends with the job: no tunnel, and normal learning for the VM's MAC.
      const rec = h.inv.find(job.vm);
      if (rec) await unpinMac(rec.spec.mac, tapName(rec.spec.uuid));
      await closeTunnel(tunnelName(job.id));
      // Whichever way the job went, the VM that is still here is no longer moving.
      migrationEnded(h, job.vm);
      return;
    }
  }
}

function migrationEnded(h: MigrationHost, vm: string): void {
  if (h.inv.find(vm)?.state === 'migrating') h.inv.apply(vm, { type: 'migration-ended' });
}
