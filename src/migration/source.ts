import { deletesSourceDisks } from './storage.js';
import { FerryError, toFerryError } from '../errors/index.js';
import type { MigrationInfo } from '../qmp/index.js';
import { phaseOf, type JobRecord, type JobTotals } from './job.js';
import type { MigrationHost } from './host.js';
import { CLEANUP_TIMEOUT_MS, peerClient, type PeerClient } from './peer-client.js';
import { perform } from './perform.js';
import { policyForMove, type ConvergencePolicy } from './policy.js';
import { resumeHere } from './resume.js';
import { localAddresses } from './networks.js';
import { retryInBackground } from './recover.js';
import { DiskMirrors } from '../storage/index.js';
import type { Qmp } from '../qmp/index.js';
import type { NbdTarget, StatusReply } from './protocol.js';
import { diskFactsOf, parseNbdUri } from './storage.js';
import { BridgeBatch, closeTunnel, openTunnel, tunnelName, tunnelVni } from '../qemu/index.js';
import { addTlsCreds } from '../security/index.js';
import { destinationLostIt, LOST_THERE_CODE, lostThereMessage, rollBackWord } from './lost-there.js';

/**
 * Drives one move from the source, phase by phase (DESIGN.md): each phase is persisted before its
 * side effects. Any failure before the destination runs the VM rolls back: the destination
 * cleans up, the source resumes the VM where it was. Resolves with the ended record.
 */
export class SourceRun {
  /** QEMU was told to send the last state: a cancel in perform is refused from then on (MigrationService.cancel). */
  switchingOver = false;
  private readonly peer: PeerClient;

  private readonly policy: ConvergencePolicy;
  /** A storage move holds one of the host's storage slots from begin to its end. */
  private releaseSlot: (() => void) | undefined;
  /** A storage move's disk mirrors, once started (aborted on rollback). */
  private mirrors: DiskMirrors | undefined;
  /** Drops the call to the destination that askUntilAnswered waits on now, so that it asks again at once. */
  private wake: (() => void) | undefined;

  /** `fenced`: why the move ended when this host powered the VM off (cluster fencing; MigrationService.fencing), else undefined. */
  constructor(private readonly h: MigrationHost, private readonly job: JobRecord, private readonly signal: AbortSignal,
    private readonly fenced: () => FerryError | undefined = () => undefined) {
    this.policy = policyForMove(h.convergence, job.options, h.settings());
    this.peer = peerClient(h, job.destination);
  }

  async run(): Promise<JobRecord> {
    try {
      return await this.runPhases();
    } finally {
      this.releaseSlot?.();
    }
  }

  private async runPhases(): Promise<JobRecord> {
    const { id, vm } = this.job;
    let info: MigrationInfo;
    try {
      this.h.jobs.apply(id, { type: 'start' });
      this.h.fault('source:begin');
      const spec = this.h.inv.get(vm).spec;
      if (this.job.options.includeStorage && spec.disks.length > 0) this.releaseSlot = this.h.takeStorageSlot();
      if (this.h.inv.get(vm).state !== 'running') throw new FerryError('VM_BAD_STATE', `The VM "${vm}" is not running, so it cannot move live.`);
      await this.peer.ping();
      this.h.inv.apply(vm, { type: 'migration-began' });
      this.h.jobs.enterPhase(id, 'prepare');
      this.h.fault('source:prepare');
      const disks = await diskFactsOf(this.h.pools, spec);
      const allowInsecure = this.h.settings().allowInsecureMigration;
      if (!allowInsecure && !this.h.tls) {
        throw new FerryError('TLS_UNAVAILABLE', `Host ${this.h.name} has no certificate (no tls in its agent config), so it cannot send an encrypted move; give it one, or allow insecure migration on both hosts.`);
      }
      const prep = await this.peer.prepare(id, {
        vm: spec, source: this.job.source, destination: this.job.destination, options: this.job.options,
        handover: { vni: tunnelVni(id), sourceAddress: this.h.migrationAddress }, ...(disks.length > 0 ? { disks } : {}),
        sourceAddresses: localAddresses(), allowInsecure,
      });
      // Every later request about the job must present it (an older destination hands out none).
      if (prep.secret !== undefined) this.h.jobs.keepSecret(id, prep.secret);
      // An older destination answers no `encrypted`: it listens in plain TCP, which needs our consent too.
      const encrypted = prep.encrypted === true;
      if (!encrypted && !allowInsecure) {
        throw new FerryError('TLS_UNAVAILABLE', `The destination ${this.job.destination} offered an unencrypted stream, which ${this.h.name} does not allow.`);
      }
      this.h.jobs.recordTotals(id, { encrypted });
      const tunnel = tunnelName(id);
      if (prep.handover) await openTunnel(tunnel, tunnelVni(id), this.h.migrationAddress, prep.handover.destinationAddress, this.h.bridge);
      const batch = prep.handover ? new BridgeBatch() : undefined;
      this.abortIfCancelled();
      this.h.jobs.enterPhase(id, 'perform');
      this.h.fault('source:perform');
      await this.peer.performReady(id);
      const qmp = this.h.qmp(vm);
      if (!qmp) throw new FerryError('QEMU_GONE', `The QEMU of "${vm}" went away.`);
      // The client end of TLS: this host's certificate, and the destination's name its certificate must carry.
      const tls = encrypted && this.h.tls ? { creds: await addTlsCreds(qmp, 'client', this.h.tls.dir), hostname: this.job.destination } : undefined;
      // Before the first TLS handshake (the NBD client's or the migration's): see src/qemu/quickack.ts.
      const peerAddress = /^tcp:([\d.]+):\d+$/.exec(prep.migrationUri)?.[1];
      const releaseRoute = peerAddress && this.h.holdQuickAck ? await this.h.holdQuickAck(peerAddress) : undefined;
      const mirrors = prep.nbd.length > 0 ? await this.copyDisks(qmp, prep.nbd, tls).catch(async (e: unknown) => { await releaseRoute?.(); throw e; }) : undefined;
      info = await perform({
        jobId: id, qmp, uri: prep.migrationUri, policy: this.policy, memoryBytes: spec.memoryMiB * 1024 * 1024,
        maxBandwidthBytesPerSec: this.job.options.maxBandwidthBytesPerSec, performance: this.job.options.performance,
        jobs: this.h.jobs, log: this.h.log, signal: this.signal, ...(tls ? { tls } : {}),
        onProgress: (p) => this.h.emit('migration.progress', { id, vm, ...p }),
        ...(batch ? { cutover: this.cutover(spec.mac, tunnel, batch) } : {}),
        onContinue: () => { this.switchingOver = true; },
        ...(mirrors ? { beforeContinue: () => mirrors.settle().then((t) => { this.h.log.info({ job: id, ...t }, 'disk mirrors settled at pre-switchover'); }) } : {}),
      }).finally(() => Promise.all([releaseRoute?.(), batch?.close().then((err) => { if (err) this.h.log.warn({ job: id, err }, 'bridge reported errors'); })]));
    } catch (e) {
      return this.rollBack(toFerryError(e, 'MIGRATION_FAILED'));
    }
    return this.complete(info);
  }

  /**
   * The hand-over: the destination pinned the VM's MAC to its incoming tap in prepare; pinning it
   * to the tunnel here, the moment the source pauses, sends every later frame for the VM to the
   * destination, where it waits in the tap until the VM resumes instead of being lost at the
   * paused source (docs/design/0001). Redirecting earlier would hold the running guest's traffic
   * for the rest of the copy; measured, that cost more than it saved.
   */
  private cutover(mac: string, tunnel: string, batch: BridgeBatch): () => void {
    return () => {
      batch.pin(mac, tunnel);
      this.h.log.info({ job: this.job.id }, 'network redirected to the destination');
    };
  }

  /**
   * A storage move's disk copy: mirrors every disk into the destination's NBD exports and waits
   * until all are in sync (READY), before the memory copy starts; from then on each guest write
   * reaches both sides. Progress goes out as `migration.disks` events; the totals keep the bytes and time.
   */
  private async copyDisks(qmp: Qmp, nbd: readonly NbdTarget[], tls: { creds: string; hostname: string } | undefined): Promise<DiskMirrors> {
    const { id, vm } = this.job;
    const t0 = Date.now();
    this.mirrors = new DiskMirrors(qmp, `fm${id.replace(/-/g, '').slice(0, 8)}`);
    await this.mirrors.start(nbd.map((t, index) => ({ index, target: { kind: 'nbd', ...parseNbdUri(t.uri), ...(tls ? { tls } : {}) } })));
    let lastWrite = 0;
    const done = await this.mirrors.waitReady(this.signal, (disks) => {
      this.h.emit('migration.disks', { id, vm, disks });
      if (Date.now() - lastWrite >= 1000) { lastWrite = Date.now(); this.h.log.info({ job: id, disks }, 'disk copy'); }
    });
    this.h.jobs.recordTotals(id, { diskBytes: done.reduce((a, d) => a + d.lenBytes, 0), diskMs: Date.now() - t0 });
    this.h.log.info({ job: id, disks: done, ms: Date.now() - t0 }, 'disks in sync; copying memory');
    return this.mirrors;
  }

  private abortIfCancelled(): void {
    if (this.signal.aborted) throw new FerryError('ABORTED', 'The move was cancelled.');
  }

  /** QEMU sent everything: the destination resumes the VM, the source lets go. */
  private async complete(info: MigrationInfo): Promise<JobRecord> {
    const { id } = this.job;
    this.h.jobs.recordTotals(id, totalsOf(info));
    this.h.jobs.enterPhase(id, 'finish');
    this.h.fault('source:finish');
    let fin: Awaited<ReturnType<PeerClient['finish']>>;
    try {
      fin = await this.askUntilAnswered(() => this.peer.finish(id, { outcome: 'success' }), { signal: this.signal });
    } catch (e) {
      const err = toFerryError(e, 'MIGRATION_FAILED');
      // The stream completed, so the destination runs the VM as soon as it saw that, without
      // waiting for `finish`. Not knowing whether it did, the source must not run its own copy: it
      // would run twice. So it waits, paused, until the destination answers (or an operator
      // cancels the move, knowing the destination is gone for good).
      if (err.code === 'HOST_UNREACHABLE') {
        // Any answer will do, an error too: rollBack reads the destination's status itself.
        const answer = await this.whileSilent(() => this.peer.status(id), 'finish');
        if (answer.error?.code === 'ABORTED') return this.rollBack(new FerryError('ABORTED', 'The move was cancelled while the destination did not answer.'));
      }
      // rollBack asks the destination's status first and goes forward if it owns the VM.
      return this.rollBack(err);
    }
    if (!fin.resumed) {
      // The stream completed but the destination could not run the VM: the source's copy is intact.
      return this.rollBack(new FerryError(fin.error?.code ?? 'MIGRATION_FAILED', fin.error?.message ?? 'The destination could not resume the VM.'));
    }
    this.h.jobs.enterPhase(id, 'confirm');
    this.h.fault('source:confirm');
    await this.letGo();
    return this.h.jobs.apply(id, { type: 'done' });
  }

  /**
   * Turns back. First asks the destination whether it already runs the VM (its stream may have
   * completed while ours reported an error): then the move can only go forward.
   */
  private async rollBack(failure: FerryError): Promise<JobRecord> {
    const { id, vm } = this.job;
    let err = failure;
    this.h.log.warn({ job: id, vm, code: err.code, err: err.message }, 'move failed; rolling back');
    const state = this.h.jobs.get(id).state;
    if (state.status === 'queued' || (state.status === 'running' && phaseOf(state) !== 'begin')) {
      let st = await this.peer.status(id).catch(() => undefined);
      // Its QEMU is gone but its agent has not said why yet: it turns the job back within moments of noticing.
      for (let i = 0; i < 3 && st?.job?.direction === 'forward' && !st.qemu.alive && err.code === 'MIGRATION_FAILED'; i++) {
        await new Promise((r) => setTimeout(r, 500));
        st = await this.peer.status(id).catch(() => undefined);
      }
      // The destination's QEMU failed first (our QEMU then only saw the stream break): its reason is the job's.
      const theirs = st?.job?.error;
      if ((theirs?.code === 'MIGRATION_INCOMING_FAILED' || theirs?.code === 'MIGRATION_FENCED') && err.code !== 'ABORTED' && err.code !== 'MIGRATION_CANCELLED') err = new FerryError(theirs.code, theirs.message);
      const word = rollBackWord(st, this.fenced() !== undefined);
      if (word === 'forward') {
        this.h.log.warn({ job: id }, 'the destination already runs the VM; rolling forward');
        return this.forwardAfterAll();
      }
      // It ran the VM and lost it: the copy here is older than what ran there (lost-there.ts).
      if (word === 'keep-stopped') return this.keepStopped(st?.job?.error?.message);
    }
    // This host powered the VM off (its cluster lease lapsed): that, not the broken stream, is why.
    const fenced = this.fenced();
    err = fenced ?? err;
    const cancelled = err.code === 'ABORTED' || err.code === 'MIGRATION_CANCELLED';
    const error = cancelled ? { code: 'MIGRATION_CANCELLED' as const, message: `The move was cancelled in phase ${phaseOf(state)}; the VM keeps running on ${this.job.source}.` }
      : { code: err.code, message: err.message };
    this.h.jobs.apply(id, cancelled ? { type: 'cancel' } : { type: 'fail', error });
    const qmp = this.h.qmp(vm);
    await qmp?.execute('migrate_cancel').catch(() => undefined);
    await this.mirrors?.abort();
    if (phaseOf(this.h.jobs.get(id).state) === 'finish') {
      // A cancel is a cancel on both sides; a failure travels as finish{failure} with its error.
      const tell = (): Promise<unknown> => (cancelled ? this.peer.cancel(id, error.message)
        : this.peer.finish(id, { outcome: 'failure', error }, CLEANUP_TIMEOUT_MS));
      try {
        // A restarting agent answers within seconds; a cut-off one is asked again in the background,
        // so the VM need not wait for it to run again. After a fence one of the two hosts is cut off
        // (and the VM waits for this job's end to start again): only in the background.
        if (fenced) retryInBackground(this.h, this.job, tell);
        else await this.askUntilAnswered(tell, { tries: 5, withinMs: 15_000 });
      } catch (e) {
        // The destination refuses because it already runs the VM: resuming here would run it twice.
        if (e instanceof FerryError && e.code === 'JOB_BAD_PHASE') return this.afterRefusal();
        // The stream completed, so a destination that does not answer may run the VM (it resumes on
        // its own). Unless an operator cancelled (or this host was fenced), wait for its word, as
        // `finish` does; a cancel ends the wait.
        let unheard = e;
        if (!cancelled && !fenced && e instanceof FerryError && e.code === 'HOST_UNREACHABLE' && (await this.streamDone())) {
          const answer = await this.whileSilent(tell, 'roll-back');
          if (answer.error?.code === 'JOB_BAD_PHASE') return this.afterRefusal();
          // Told at last (or cancelled): nothing left to ask in the background unless the cancel cut the asking short.
          unheard = answer.error?.code === 'ABORTED' ? e : undefined;
        }
        if (unheard !== undefined) {
          this.h.log.error({ err: unheard, job: id }, 'destination did not confirm its clean-up; asking again in the background');
          // It still holds an incoming QEMU (and copied images): it must clean up once it hears us (invariant 2).
          if (unheard instanceof FerryError && unheard.code === 'HOST_UNREACHABLE') retryInBackground(this.h, this.job, () => this.peer.cancel(id, error.message));
        }
      }
      this.h.jobs.enterPhase(id, 'confirm');
    }
    await closeTunnel(tunnelName(id));
    await this.resumeSource();
    return this.h.jobs.apply(id, { type: 'done' });
  }

  /**
   * The destination refused to clean up its half: it runs the VM (forward), or its record ended after
   * the VM ran there (then the VM stays here, stopped; it was lost there).
   */
  private async afterRefusal(): Promise<JobRecord> {
    const ask = (): Promise<StatusReply> => this.peer.status(this.job.id);
    // Which of the two decides whether the disks here go: until it says, the VM stays paused here (an
    // operator's cancel ends the wait and goes forward, as a refusal always did).
    const st = await ask().catch(() => undefined) ?? (await this.whileSilent(ask, 'status after a refused clean-up')).value;
    return destinationLostIt(st) ? this.keepStopped(st.job.error?.message) : this.forwardAfterAll();
  }

  /**
   * The destination ran the VM after the switch-over and lost it: the paused copy here is older than
   * what ran there, so it is powered off without running; the disks and the VM stay here, stopped, with
   * the reason. Neither resume (stale memory on newer disks) nor let go (the destination holds no record).
   */
  private async keepStopped(theirs: string | undefined): Promise<JobRecord> {
    const { id, vm } = this.job;
    const message = lostThereMessage(this.job, theirs);
    this.h.log.error({ job: id, vm, destination: this.job.destination }, 'the destination ran the VM and lost it; the older copy here is powered off and the VM kept, stopped');
    await this.h.powerOffKept(vm, message);
    await closeTunnel(tunnelName(id));
    return this.h.jobs.apply(id, { type: 'end', status: 'failed', error: { code: LOST_THERE_CODE, message } });
  }

  private async forwardAfterAll(): Promise<JobRecord> {
    const { id } = this.job;
    await this.letGo();
    return this.h.jobs.apply(id, { type: 'end', status: 'completed' });
  }

  /**
   * The destination runs the VM: stop it here, close the tunnel and tell the destination, all at
   * once. `confirm` and the tunnel need not wait for the stop: this `confirm` phase is persisted, so
   * a restart here stops the paused copy all the same (recovery.ts), and the copy, paused since the
   * switch-over, sends nothing the hand-over (the MAC pin, the tunnel) would have to carry or stop.
   * The tunnel closes with the destination's end, so no frame goes into a tunnel whose far end is
   * gone while QEMU quits (up to seconds) or a storage move's source disks are deleted. The job does
   * not wait for the tunnel's deletion, which only frees its name (qemu/links.ts).
   */
  private async letGo(): Promise<void> {
    const { id, vm } = this.job;
    void closeTunnel(tunnelName(id));
    await Promise.all([
      this.h.releaseSource(vm, deletesSourceDisks(this.job), this.job.destination),
      this.peer.confirm(id, { outcome: 'success', totals: this.h.jobs.get(id).totals })
        .catch((e: unknown) => this.h.log.warn({ err: e, job: id }, 'confirm not delivered; the destination ends its record on its own recovery')),
    ]);
  }

  /**
   * After the stream completed, with the destination silent: asks `fn` until it answers, the VM
   * paused here (the destination may run it, having resumed on its own). Only an operator's cancel
   * (ABORTED) ends the wait otherwise. Resolves with the answer or the error it ended with.
   */
  private async whileSilent<T>(fn: () => Promise<T>, step: string): Promise<{ value?: T; error?: FerryError }> {
    this.h.log.warn({ job: this.job.id, destination: this.job.destination, step }, 'the stream completed but the destination does not answer; the VM stays paused here until it does, or until the move is cancelled');
    return this.askUntilAnswered(fn, { tries: Infinity, pauseMs: UNANSWERED_RETRY_MS, signal: this.signal })
      .then((value) => ({ value }), (e: unknown) => ({ error: toFerryError(e, 'MIGRATION_FAILED') }));
  }

  /** True when this host's QEMU says the stream completed (the destination may run the VM). */
  private async streamDone(): Promise<boolean> {
    const info = await this.h.qmp(this.job.vm)?.execute('query-migrate').catch(() => undefined);
    return info?.status === 'completed';
  }

  /** Lets the VM run on the source again, exactly as before the move. */
  private async resumeSource(): Promise<void> {
    const { vm } = this.job;
    const qmp = this.h.qmp(vm);
    if (qmp) await resumeHere(qmp).catch((e: unknown) => this.h.log.error({ err: e, job: this.job.id }, 'could not resume the VM on the source'));
    const rec = this.h.inv.find(vm);
    if (rec?.state === 'migrating') this.h.inv.apply(vm, { type: 'migration-ended' });
  }

  /**
   * The destination answers again (MigrationService.giveUpSent heard it): a call to it that waits
   * for its timeout (up to a minute for a host that was cut off) is dropped and asked again now.
   */
  askAgain(): void { this.wake?.(); }

  /**
   * Retries a peer call while the peer is unreachable (it may be restarting): `tries` times (30)
   * within `withinMs`, `pauseMs` apart (1 s); ABORTED once `signal` fires.
   */
  private async askUntilAnswered<T>(fn: () => Promise<T>, o: { tries?: number; withinMs?: number; pauseMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const t0 = Date.now();
    for (let i = 1; ; i++) {
      if (o.signal?.aborted) throw new FerryError('ABORTED', 'The move was cancelled.');
      try {
        return await untilAborted(new Promise<T>((resolve, reject) => {
          this.wake = () => reject(new FerryError('HOST_UNREACHABLE', `Asking ${this.job.destination} again: it answers now.`));
          fn().then(resolve, reject);
        }), o.signal);
      } catch (e) {
        if (!(e instanceof FerryError) || e.code !== 'HOST_UNREACHABLE' || i >= (o.tries ?? 30) || Date.now() - t0 >= (o.withinMs ?? Infinity)) throw e;
        await new Promise((r) => setTimeout(r, o.pauseMs ?? 1000));
      }
    }
  }
}

/**
 * `p`, or ABORTED as soon as `signal` fires: a call to a destination that is cut off waits up to a
 * minute for its timeout, and a cancel (or giving up, src/cluster/moving.ts) must not wait for it.
 * The call runs on and its answer is dropped; the rollback asks the destination's status anyway.
 */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new FerryError('ABORTED', 'The move was cancelled.'));
    if (signal.aborted) { onAbort(); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** How often a source whose stream completed asks a silent destination again. */
const UNANSWERED_RETRY_MS = 2_000;

function totalsOf(info: MigrationInfo): Partial<JobTotals> {
  return {
    downtimeMs: info.downtime ?? null,
    transferredBytes: info.ram?.transferred ?? null,
    passes: info.ram?.['dirty-sync-count'] ?? null,
  };
}
