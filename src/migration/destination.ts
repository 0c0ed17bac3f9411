import { FerryError, toFerryError } from '../errors/index.js';
import type { Qmp } from '../qmp/index.js';
import { closeTunnel, pinMac, tunnelName, unpinMac } from '../qemu/index.js';
import { startIncomingWithTunnel } from './incoming.js';
import { tapName } from '../vm/index.js';
import { isTerminal, phaseOf, type JobRecord, type JobStatus } from './job.js';
import { freeMigrationSlots, type MigrationHost } from './host.js';
import { DEFAULT_POLICY } from './policy.js';
import {
  envelopeFor, type CancelReply, type ConfirmReply, type ConfirmRequest, type FinishReply, type FinishRequest,
  type CutoverReply, type CutoverRequest, type PerformReadyReply, type PrepareReply, type PrepareRequest, type StatusReply,
} from './protocol.js';
import { destinationSettings, movesInPlain, tlsParameters } from './settings.js';
import { addPeerAuthz, addTlsCreds } from '../security/index.js';
import { checkMigrationEnabled } from './host-settings.js';
import { resumeHere } from './resume.js';
import { chooseMigrationAddress, localAddresses } from './networks.js';
import { planStorage } from './storage.js';
import { exportDisks, stopExports } from './exports.js';
import { createImage, deleteImage } from '../storage/index.js';
import { checkJobSecret, hashJobSecret, newJobSecret } from './job-secret.js';
import { fencedError } from './fenced.js';
import { lostHereRefusal, ownsVm, ranHere, ranThenLost } from './lost-there.js';

/**
 * How long a prepared job waits for the source's perform-ready, which the source sends right after
 * the prepare reply. A job still unclaimed then is rolled back here: its source died, or never got
 * the reply (and with it the secret it would need to cancel).
 */
export const PREPARED_CLAIM_MS = 60_000;

/** How long, after its incoming QEMU failed during perform, the destination waits for the source's cancel or finish before cleaning up itself. */
const INCOMING_FAILED_GRACE_MS = 2_000;
/** How long `status` waits for the job's chain when the VM was taken over here and its QEMU is gone. */
const STATUS_CHAIN_WAIT_MS = 10_000;

/**
 * The destination's side of a move: it answers the source's peer messages. Messages of one job
 * run one at a time (a per-job chain), so a cancel never races a finish.
 *
 * The destination resumes the VM on its own as soon as its QEMU has received the whole state
 * (MIGRATION completed): waiting for the source's `finish` would add a network round trip to
 * the guest's downtime. That is safe because the source never resumes a VM whose stream
 * completed: before any rollback it asks this side's `status`, and `cancel` is refused here once
 * the VM runs (DESIGN.md invariant 1).
 */
export class DestinationSide {
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly resumed = new Map<string, Promise<boolean>>();
  /** Storage slots held by incoming storage moves, released when the VM runs here or the move rolls back. */
  private readonly slots = new Map<string, () => void>();
  /** `fenced`: why a job ends whose incoming QEMU this host's fence powered off (MigrationService.fencing), else undefined. */
  constructor(private readonly h: MigrationHost, private readonly fenced: (jobId: string) => FerryError | undefined = () => undefined) {}

  /**
   * Gives up a move into this host that has not run the VM here (its source lost its cluster lease,
   * so it powered the VM off: src/cluster/moving.ts): rolled back, ended with `err`.
   */
  abandon(jobId: string, err: FerryError): Promise<void> {
    return this.serial(jobId, async () => {
      const job = this.h.jobs.find(jobId);
      if (job && !isTerminal(job.state) && !ownsVm(job)) await this.rollBack(jobId, err);
    });
  }

  /** Runs `fn` in job `jobId`'s chain (recovery after a restart uses it too). */
  serialized(jobId: string, fn: () => Promise<void>): Promise<void> { return this.serial(jobId, fn); }

  private serial<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(jobId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.chains.set(jobId, next.catch(() => undefined));
    return next;
  }

  prepare(req: PrepareRequest): Promise<PrepareReply> {
    return this.serial(req.jobId, () => this.doPrepare(req));
  }

  private async doPrepare(req: PrepareRequest): Promise<PrepareReply> {
    const { vm } = req;
    if (req.destination !== this.h.name) {
      throw new FerryError('INVALID_INPUT', `This is host ${this.h.name}, not ${req.destination}; the move was sent to the wrong agent.`);
    }
    this.h.peerUrl(req.source);
    checkMigrationEnabled(this.h.settings(), this.h.name, 'incoming');
    const maintenance = this.h.inMaintenance?.() ?? null;
    if (maintenance) throw new FerryError('HOST_IN_MAINTENANCE', `Host ${this.h.name} is ${maintenance} for maintenance and takes no incoming moves.`);
    // A host that cannot renew its lease would fence the VM as soon as it ran here: refused before anything starts.
    const noHa = vm.ha ? this.h.haRefusal?.() ?? null : null;
    if (noHa) throw new FerryError('CLUSTER_UNAVAILABLE', noHa);
    await this.supersedeUnclaimed(vm.name, req.source, req.jobId);
    if (this.h.inv.find(vm.name)) throw new FerryError('VM_EXISTS', `A VM named "${vm.name}" already exists on ${this.h.name}.`);
    this.h.checkCapacity(vm.memoryMiB);
    if (freeMigrationSlots(this.h) === 0) {
      throw new FerryError('MIGRATION_LIMIT', `${this.h.name} already runs ${this.h.settings().maxMigrations} live migrations, its limit; try again when one ends.`);
    }
    const plan = planStorage(this.h.pools, req.vm, req.options, req.disks);
    const dataAddress = chooseMigrationAddress(this.h.settings().networks, localAddresses(), req.sourceAddresses ?? [], this.h.migrationAddress);
    const encrypted = !movesInPlain(req.allowInsecure === true, this.h.settings().allowInsecureMigration);
    const tlsDir = this.h.tls?.dir;
    if (encrypted && tlsDir === undefined) {
      throw new FerryError('TLS_UNAVAILABLE', `Host ${this.h.name} has no certificate (no tls in its agent config), so it cannot take an encrypted move; give it one, or allow insecure migration on both hosts.`);
    }
    this.h.jobs.create({ id: req.jobId, vm: vm.name, source: req.source, destination: req.destination, role: 'destination', options: req.options });
    this.h.jobs.recordTotals(req.jobId, { encrypted });
    const secret = newJobSecret();
    this.h.jobs.keepSecret(req.jobId, hashJobSecret(secret));
    try {
      this.h.fault('destination:prepare');
      if (plan.copies.length > 0) this.slots.set(req.jobId, this.h.takeStorageSlot());
      for (const c of plan.copies) await createImage(c.destinationPath, c.sizeBytes);
      const qmp = await startIncomingWithTunnel(this.h, req, plan.spec);
      const s = destinationSettings({ ...DEFAULT_POLICY, allowPostcopy: req.options.allowPostcopy ?? false }, req.options.performance);
      await qmp.execute('migrate-set-capabilities', { capabilities: s.capabilities });
      // Encrypted: QEMU verifies the caller's certificate and admits only the source host's (tls-authz).
      const tls = tlsDir !== undefined && encrypted
        ? { creds: await addTlsCreds(qmp, 'server', tlsDir), authz: await addPeerAuthz(qmp, req.source) } : undefined;
      await qmp.execute('migrate-set-parameters', { ...s.parameters, ...tlsParameters(tls, 'destination') });
      const nbd = await exportDisks(qmp, plan, dataAddress, tls);
      this.resumed.set(req.jobId, this.resumeWhenComplete(req.jobId, vm.name, qmp, plan.copies.length));
      await qmp.execute('migrate-incoming', { uri: `tcp:${dataAddress}:0` });
      const info = await qmp.execute('query-migrate');
      const port = info['socket-address']?.find((a) => a.type === 'inet')?.port;
      if (!port) throw new FerryError('MIGRATION_FAILED', 'The incoming QEMU did not report the port it listens on.');
      this.rollBackUnclaimed(req.jobId);
      return {
        ...envelopeFor(req.jobId), migrationUri: `tcp:${dataAddress}:${port}`, nbd, reservedMemoryMiB: vm.memoryMiB, encrypted, secret,
        ...(req.handover ? { handover: { destinationAddress: this.h.migrationAddress } } : {}),
      };
    } catch (e) {
      await this.rollBack(req.jobId, toFerryError(e, 'MIGRATION_FAILED'));
      // startIncoming forgets the VM when QEMU fails to start, so the rollback may not know the images.
      for (const c of plan.copies) await deleteImage(c.destinationPath).catch(() => undefined);
      throw e;
    }
  }

  /**
   * A new prepare of `vm` from `source` ends the older jobs of it that source never claimed
   * (JobStore.unclaimed): its agent restarted before the prepare reply, secret and all, reached
   * it, so its recovery could not cancel them, and their incoming VM would be in the way.
   */
  private async supersedeUnclaimed(vm: string, source: string, jobId: string): Promise<void> {
    for (const old of this.h.jobs.unclaimed(vm, source).filter((j) => j.id !== jobId)) {
      this.h.log.warn({ job: old.id, vm, by: jobId }, 'a new move of the VM supersedes a prepared move its source never claimed');
      await this.serial(old.id, async () => {
        if (!this.h.jobs.unclaimed(vm, source).some((j) => j.id === old.id)) return;
        await this.rollBack(old.id, new FerryError('MIGRATION_FAILED', `The source ${source} began a new move of "${vm}" (job ${jobId}) without claiming this one; ${this.h.name} cleaned up.`));
      });
    }
  }

  /** After {@link PREPARED_CLAIM_MS}, rolls back the job if the source has not claimed it with perform-ready. */
  private rollBackUnclaimed(jobId: string): void {
    setTimeout(() => {
      void this.serial(jobId, async () => {
        const job = this.h.jobs.find(jobId);
        if (!job || isTerminal(job.state) || phaseOf(job.state) !== 'prepare') return;
        this.h.log.warn({ job: jobId, vm: job.vm }, 'the source never claimed the prepared move; cleaning up');
        await this.rollBack(jobId, new FerryError('MIGRATION_FAILED', `The source ${job.source} did not begin the move within ${PREPARED_CLAIM_MS / 1000} s of prepare; ${this.h.name} cleaned up.`));
      }).catch((e: unknown) => this.h.log.error({ err: e, job: jobId }, 'unclaimed move clean-up failed'));
    }, PREPARED_CLAIM_MS).unref();
  }

  /**
   * The job, once the request proves it comes from the agent that prepared it (its one-time secret,
   * else JOB_SECRET_INVALID). `endedNeedsNone`: a clean-up request for a job that has already
   * ended here needs no secret, as it changes nothing.
   */
  private authorized(jobId: string, secret: string | undefined, endedNeedsNone = false): JobRecord {
    const job = this.h.jobs.get(jobId);
    if (!(endedNeedsNone && isTerminal(job.state))) checkJobSecret(job, this.h.jobs.secretOf(jobId), secret);
    return job;
  }

  /**
   * The incoming QEMU failed the stream (or went away) before the VM ran here: nothing of the VM
   * can run on this host. The job turns back at once, so that a `status` already says why; the
   * clean-up follows in the job's chain (not awaited: a finish waiting in that chain for this very
   * outcome would otherwise wait for itself). In perform the source drives and is about to say
   * whether it cancelled or failed, so its word is awaited a moment; before that nobody else will
   * clean up (the source may not know yet, or may never come).
   */
  private incomingFailed(jobId: string, why: string): void {
    const job = this.h.jobs.find(jobId);
    if (!job || isTerminal(job.state) || ownsVm(job)) return;
    // Fenced by the agent (marked first), or by its watchdog; a QEMU that died otherwise failed, cut off or not.
    const err = this.fenced(jobId) ?? (this.h.watchdogFired?.(job.vm, Date.parse(job.createdAt)) ? fencedError(this.h.name, job) : undefined) ?? new FerryError('MIGRATION_INCOMING_FAILED',
      `The incoming QEMU on ${this.h.name} ${why} before the VM ran there; ${this.h.name} cleaned up and the VM stays on ${job.source}.`);
    this.h.log.warn({ job: jobId, vm: job.vm, why }, 'the incoming migration failed; rolling back');
    if (job.state.status === 'running' && job.state.direction === 'forward') this.h.jobs.apply(jobId, { type: 'fail', error: { code: err.code, message: err.message } });
    setTimeout(() => {
      void this.serial(jobId, () => this.rollBack(jobId, err))
        .catch((e: unknown) => this.h.log.error({ err: e, job: jobId }, 'clean-up after a failed incoming migration failed'));
    }, phaseOf(job.state) === 'perform' ? INCOMING_FAILED_GRACE_MS : 0);
  }

  private freeSlot(jobId: string): void {
    this.slots.get(jobId)?.();
    this.slots.delete(jobId);
  }

  /**
   * Resumes the VM the moment the incoming stream completes, or the moment post-copy begins (the
   * guest then runs here while its remaining pages arrive on demand; a -S destination would wait
   * paused otherwise). Resolves true once QEMU ran it, false when the incoming migration failed or
   * QEMU went away.
   */
  private async resumeWhenComplete(jobId: string, name: string, qmp: Qmp, exports: number): Promise<boolean> {
    try {
      const ev = await qmp.waitForEvent('MIGRATION', (d) => ['completed', 'postcopy-active', 'failed', 'cancelled'].includes(d.status));
      if (ev.data.status !== 'completed' && ev.data.status !== 'postcopy-active') {
        this.incomingFailed(jobId, `reported the stream ${ev.data.status}`);
        return false;
      }
      const t0 = Date.now();
      if (exports > 0) await stopExports(qmp, exports, this.h.log);
      if (!(await resumeHere(qmp, { postcopy: ev.data.status === 'postcopy-active' }))) {
        this.incomingFailed(jobId, 'received the stream but could not run the VM');
        return false;
      }
      this.takeOwnership(jobId, name);
      this.h.log.info({ job: jobId, vm: name, contMs: Date.now() - t0 }, 'incoming VM resumed');
      this.freeSlot(jobId);
      return true;
    } catch (e) {
      this.h.log.error({ job: jobId, vm: name, err: e }, 'incoming VM could not be resumed');
      // QEMU 7.2 exits when its incoming migration fails, often before the MIGRATION event is read.
      if (qmp.closed) this.incomingFailed(jobId, 'exited');
      return false;
    }
  }

  private takeOwnership(jobId: string, name: string): void {
    const job = this.h.jobs.get(jobId);
    if (phaseOf(job.state) === 'prepare') this.h.jobs.enterPhase(jobId, 'perform');
    if (phaseOf(this.h.jobs.get(jobId).state) === 'perform') this.h.jobs.enterPhase(jobId, 'finish');
    this.h.jobs.enterPhase(jobId, 'confirm');
    if (this.h.inv.find(name)?.state === 'migrating') this.h.inv.apply(name, { type: 'migration-ended' });
  }

  performReady(jobId: string, secret: string | undefined): Promise<PerformReadyReply> {
    return this.serial(jobId, async () => {
      const job = this.authorized(jobId, secret);
      // Rolled back here already (the incoming migration failed): the source learns why.
      if (job.state.status === 'failed' || job.state.status === 'cancelled') throw new FerryError(job.state.error.code, job.state.error.message);
      const qmp = this.h.qmp(job.vm);
      if (!qmp) throw new FerryError('MIGRATION_FAILED', `The incoming QEMU of "${job.vm}" is gone.`);
      const info = await qmp.execute('query-migrate');
      if (phaseOf(job.state) === 'prepare') this.h.jobs.enterPhase(jobId, 'perform');
      this.h.fault('destination:perform');
      return { ...envelopeFor(jobId), incomingStatus: info.status ?? 'setup' };
    });
  }

  /**
   * Points the VM's MAC at the incoming QEMU's tap on this host's bridge (redirect), or lets normal
   * learning decide again (restore). Frames the source host tunnels here then wait in the tap's
   * queue until the VM resumes, instead of being lost at the paused source.
   */
  cutover(req: CutoverRequest): Promise<CutoverReply> {
    return this.serial(req.jobId, async () => {
      const job = this.authorized(req.jobId, req.secret);
      const tap = tapName(this.h.inv.get(job.vm).spec.uuid);
      if (req.action === 'redirect') await pinMac(req.mac, tap);
      else await unpinMac(req.mac, tap);
      return { ...envelopeFor(req.jobId), action: req.action, appliedAt: new Date().toISOString() };
    });
  }

  /**
   * `success`: answers `resumed: true` once the VM runs here. Decided from facts, not from memory
   * of this process: after an agent restart the wait for the stream is gone, so a VM whose QEMU
   * runs (or whose stream completed) is taken over here; only a VM this host cannot run is rolled
   * back. `failure`: the source gave up; clean up.
   */
  finish(req: FinishRequest): Promise<FinishReply> {
    return this.serial(req.jobId, async () => {
      this.h.fault('destination:finish');
      const job = this.authorized(req.jobId, req.secret, req.outcome === 'failure');
      if (req.outcome === 'failure') {
        this.refuseTurningBack(job);
        await this.rollBack(req.jobId, new FerryError(req.error?.code ?? 'MIGRATION_FAILED', req.error?.message ?? 'The source failed the move.'));
        return { ...envelopeFor(req.jobId), resumed: false };
      }
      if (await this.runsHere(req.jobId, job)) {
        // Tests: the destination dies after the VM runs here, before the source hears it.
        this.h.fault('destination:finish-resumed');
        return { ...envelopeFor(req.jobId), resumed: true };
      }
      // Said as such, for the source to quote: it keeps the VM stopped (recovery.ts, afterFinishRefused).
      if (ranThenLost(job) && 'error' in job.state) return { ...envelopeFor(req.jobId), resumed: false, error: job.state.error };
      const err = new FerryError('MIGRATION_FAILED', `The destination ${this.h.name} could not resume "${job.vm}".`);
      await this.rollBack(req.jobId, err);
      return { ...envelopeFor(req.jobId), resumed: false, error: err.toJSON() };
    });
  }

  /** True when the VM runs here, taking it over first if this process has not yet recorded that. */
  private async runsHere(jobId: string, job: JobRecord): Promise<boolean> {
    if (ownsVm(job)) return true;
    if (isTerminal(job.state)) return false;
    const waiting = this.resumed.get(jobId);
    if (waiting) return waiting;
    const qmp = this.h.qmp(job.vm);
    if (!qmp || qmp.closed) return false;
    // Stopped in `inmigrate` means the stream never completed: that VM cannot run here.
    if (!(await resumeHere(qmp).catch(() => false))) return false;
    this.takeOwnership(jobId, job.vm);
    return true;
  }

  confirm(req: ConfirmRequest): Promise<ConfirmReply> {
    return this.serial(req.jobId, async () => {
      const job = this.authorized(req.jobId, req.secret);
      this.h.fault('destination:confirm');
      if (!isTerminal(job.state)) {
        this.h.jobs.recordTotals(req.jobId, req.totals);
        this.h.jobs.apply(req.jobId, { type: 'done' });
      }
      this.resumed.delete(req.jobId);
      await this.endHandover(req.jobId, job.vm);
      return { ...envelopeFor(req.jobId), status: this.h.jobs.get(req.jobId).state.status };
    });
  }

  /** Idempotent; refused once the VM runs here, because then this host owns it, and after it ran here and was lost. */
  cancel(jobId: string, reason: string, secret?: string): Promise<CancelReply> {
    return this.serial(jobId, async () => {
      if (!this.h.jobs.find(jobId)) return { ...envelopeFor(jobId), status: 'cancelled' as JobStatus };
      const job = this.authorized(jobId, secret, true);
      this.refuseTurningBack(job);
      if (!isTerminal(job.state)) await this.rollBack(jobId, new FerryError('MIGRATION_CANCELLED', reason), true);
      return { ...envelopeFor(jobId), status: this.h.jobs.get(jobId).state.status };
    });
  }

  /** JOB_BAD_PHASE for a rollback (finish failure, cancel) once the VM runs here, or ran here and was lost. */
  private refuseTurningBack(job: JobRecord): void {
    if (ownsVm(job)) throw new FerryError('JOB_BAD_PHASE', `The VM "${job.vm}" already runs on ${this.h.name}; the move can only complete.`);
    if (ranThenLost(job)) throw new FerryError('JOB_BAD_PHASE', lostHereRefusal(job, this.h.name));
  }

  async status(jobId: string): Promise<StatusReply> {
    let job = this.h.jobs.find(jobId);
    // Taken over, QEMU gone: a recovery in the job's chain may be about to end the record (answered first, the source would go forward).
    const q0 = job ? this.h.qmp(job.vm) : undefined;
    if (job?.role === 'destination' && job.state.status === 'running' && ownsVm(job) && (!q0 || q0.closed)) {
      await Promise.race([this.chains.get(jobId), new Promise((r) => setTimeout(r, STATUS_CHAIN_WAIT_MS).unref())]);
      job = this.h.jobs.find(jobId);
    }
    const qmp = job ? this.h.qmp(job.vm) : undefined;
    const vm = job ? this.h.inv.find(job.vm) : undefined;
    const mig = qmp && !qmp.closed ? await qmp.execute('query-migrate', undefined, { timeoutMs: 5000 }).catch(() => undefined) : undefined;
    return {
      ...envelopeFor(jobId),
      job: job ? view(job) : null,
      qemu: { alive: qmp !== undefined && !qmp.closed, running: vm?.state === 'running', ...(mig?.status ? { migrationStatus: mig.status } : {}) },
    };
  }

  /** The source let go: normal learning for the VM's MAC again, and no tunnel (deleted in the background, qemu/links.ts). */
  private async endHandover(jobId: string, vm: string): Promise<void> {
    const rec = this.h.inv.find(vm);
    void closeTunnel(tunnelName(jobId));
    if (rec) await unpinMac(rec.spec.mac, tapName(rec.spec.uuid));
  }

  /** Kills the incoming QEMU, removes what prepare made and ends the record as failed or cancelled. */
  private async rollBack(jobId: string, err: FerryError, cancelled = false): Promise<void> {
    const job = this.h.jobs.find(jobId);
    if (!job || isTerminal(job.state)) return;
    // Turn back first, so that a status asked during the clean-up already says why (the source reports that reason).
    if (job.state.status === 'running' && job.state.direction === 'forward' && !ownsVm(job)) {
      this.h.jobs.apply(jobId, cancelled ? { type: 'cancel' } : { type: 'fail', error: { code: err.code, message: err.message } });
    }
    await closeTunnel(tunnelName(jobId));
    await this.h.discardIncoming(job.vm, job.options.includeStorage).catch((e: unknown) => this.h.log.error({ err: e, job: jobId }, 'destination clean-up failed'));
    this.resumed.delete(jobId);
    this.freeSlot(jobId);
    this.h.jobs.apply(jobId, { type: 'end', status: cancelled ? 'cancelled' : 'failed', error: { code: err.code, message: err.message } });
  }
}

function view(job: JobRecord): StatusReply['job'] {
  const s = job.state;
  return {
    status: s.status, phase: phaseOf(s),
    direction: s.status === 'running' ? s.direction : null,
    postcopy: s.status === 'running' && s.direction === 'forward' ? s.postcopy : false,
    ...('error' in s ? { error: s.error } : {}),
    ...(job.role === 'destination' ? { ranHere: ranHere(job) } : {}),
  };
}
