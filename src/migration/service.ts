import { FerryError } from '../errors/index.js';
import { isTerminal, phaseOf, summarize, type JobRecord, type JobSummary, type MoveOptions } from './job.js';
import { closeTunnel, tunnelName, unpinMac } from '../qemu/index.js';
import { tapName } from '../vm/index.js';
import { freeMigrationSlots, type MigrationHost } from './host.js';
import { DestinationSide } from './destination.js';
import { confirmedIn, ownsVm } from './lost-there.js';
import { peerClient } from './peer-client.js';
import { SourceRun } from './source.js';
import { recoverJobs, RecoveryWaits } from './recover.js';
import { fencedError } from './fenced.js';
import { assertCompatible } from './compatibility.js';
import { checkMigrationEnabled, resolveMoveOptions } from './host-settings.js';
import type { StatusReply } from './protocol.js';

/** How long giving up a paused copy waits for the destination's word first (a cut-off one does not answer). */
const GIVE_UP_ASK_MS = 3_000;

/** A move request as the API receives it. */
export interface MoveRequest { vm: string; destination: string; options: MoveOptions }

/**
 * The agent's migration actions (REST and CLI call these): start a move, list and show jobs,
 * cancel; and the destination side that answers peers. One job per VM (the VM lock).
 */
export class MigrationService {
  readonly destination: DestinationSide;
  private readonly running = new Map<string, { ctl: AbortController; done: Promise<JobRecord>; run: SourceRun }>();
  /** Moves waiting for a slot, each holding its VM's lock (so the VM cannot be stopped or moved twice meanwhile). */
  private readonly queued = new Map<string, { release: () => void }>();
  /** Jobs whose recovery after a restart waits for a silent peer (a cancel reaches them there). */
  private readonly recoveryWaits = new RecoveryWaits();
  private pumping = false;
  private pumpAgain = false;
  private retry: NodeJS.Timeout | undefined;
  /** Moves (either end) whose QEMU this host powered off (fencing, giving up a paused copy), with why they end. */
  private readonly fenced = new Map<string, FerryError>();

  constructor(private readonly h: MigrationHost) {
    this.destination = new DestinationSide(h, (id) => this.fenced.get(id));
    // Dropped when the job ends, whoever ends it: a job under recovery has no run of this agent to do it.
    h.jobs.onChange((c) => { if (c.kind === 'transition' && isTerminal(c.job.state)) this.fenced.delete(c.job.id); });
  }

  /**
   * Checks the request and records the job, `queued`; it starts in the background as soon as this
   * host and the destination each have a free live-migration slot (maxMigrations), first come
   * first served per destination. Fails before anything starts with SAME_HOST, UNKNOWN_HOST,
   * HOST_UNREACHABLE, VM_NOT_FOUND, VM_BAD_STATE or VM_BUSY.
   */
  async start(req: MoveRequest): Promise<JobRecord> {
    const vm = this.h.inv.get(req.vm);
    if (req.destination === this.h.name) {
      throw new FerryError('SAME_HOST', `The VM "${req.vm}" already runs on ${this.h.name}; choose another destination.`);
    }
    const peer = peerClient(this.h, req.destination);
    checkMigrationEnabled(this.h.settings(), this.h.name, 'outgoing');
    // The lock first: a VM that is moving is busy (VM_BUSY), not in a bad state.
    const release = this.h.lockVm(req.vm, 'a move');
    try {
      const active = this.h.jobs.activeFor(req.vm);
      if (active) throw new FerryError('VM_BUSY', `The VM "${req.vm}" already has a move under way (job ${active.id}).`);
      if (vm.state !== 'running') {
        throw new FerryError('VM_BAD_STATE', `The VM "${req.vm}" is ${vm.state}; only a running VM moves live.`);
      }
      await peer.ping();
      await assertCompatible(this.h, req);
      const job = this.h.jobs.create({ vm: req.vm, source: this.h.name, destination: req.destination, role: 'source', options: resolveMoveOptions(req.options, this.h.settings()) });
      this.queued.set(job.id, { release });
      await this.pump();
      return this.h.jobs.get(job.id);
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Live-migration slots free on this host now: maxMigrations − moves running here (as source or destination). */
  freeSlots(): number {
    return freeMigrationSlots(this.h);
  }

  /** A queued job's place in this host's queue (1 = next), or null when it is not queued here. */
  queuePosition(id: string): number | null {
    const ids = this.h.jobs.active().filter((j) => j.state.status === 'queued' && this.queued.has(j.id)).map((j) => j.id);
    const i = ids.indexOf(id);
    return i < 0 ? null : i + 1;
  }

  /**
   * Starts queued moves while this host has free slots, oldest first; a move whose destination has
   * no free slot waits (later moves to other destinations may pass it). Runs one at a time; while
   * moves wait, it looks again every 2 s (a destination's slot frees without telling us).
   */
  private async pump(): Promise<void> {
    if (this.pumping) { this.pumpAgain = true; return; }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.fill();
      } while (this.pumpAgain);
    } catch (e) {
      this.h.log.error({ err: e }, 'the move queue failed to start a move');
    } finally {
      this.pumping = false;
      clearTimeout(this.retry);
      if (this.queued.size > 0) this.retry = setTimeout(() => { void this.pump(); }, 2000).unref();
    }
  }

  private async fill(): Promise<void> {
    const full = new Set<string>();
    for (const job of this.h.jobs.active()) {
      if (this.freeSlots() <= 0) return;
      if (job.state.status !== 'queued' || !this.queued.has(job.id) || full.has(job.destination)) continue;
      // An unreachable destination fails the move in begin (HOST_UNREACHABLE) rather than holding the queue.
      const free = await peerClient(this.h, job.destination).ping().then((p) => p.migrationSlotsFree ?? 1, () => 1);
      if (free <= 0) { full.add(job.destination); continue; }
      const q = this.queued.get(job.id);
      if (!q || this.freeSlots() <= 0) continue;
      // The cluster's own limit last, since the slot is held from here until the move ends.
      if (this.h.clusterSlots && !(await this.h.clusterSlots.take(job.id))) return;
      if (!this.queued.has(job.id)) { void this.h.clusterSlots?.release(job.id); continue; }
      this.queued.delete(job.id);
      this.launch(job, q.release);
    }
  }

  private launch(job: JobRecord, release: () => void): void {
    const ctl = new AbortController();
    // Fenced by the agent (marked first), or by its watchdog; a QEMU that died otherwise was not fenced, cut off or not.
    const fenced = (): FerryError | undefined => this.fenced.get(job.id)
      ?? (this.h.watchdogFired?.(job.vm, Date.parse(job.createdAt)) && (this.h.qmp(job.vm)?.closed ?? true) ? fencedError(this.h.name, job) : undefined);
    const run = new SourceRun(this.h, job, ctl.signal, fenced);
    const done = run.run()
      .catch((e: unknown) => { this.h.log.error({ err: e, job: job.id }, 'move crashed'); return this.h.jobs.get(job.id); })
      .finally(() => { release(); this.running.delete(job.id); this.fenced.delete(job.id); void this.h.clusterSlots?.release(job.id); void this.pump(); });
    this.running.set(job.id, { ctl, done, run });
  }

  /**
   * This host is about to power off `vm` because its cluster lease lapsed (fencing,
   * src/cluster/moving.ts): a move of it under way here, from or to this host, ends with
   * MIGRATION_FENCED rather than as a broken stream.
   */
  fencing(vm: string): void {
    const job = this.h.jobs.activeFor(vm);
    // A destination that runs the VM owns it: its move goes on to its end whatever happens to the VM.
    if (!job || job.state.status !== 'running' || (job.role === 'destination' && ownsVm(job))) return;
    this.fenced.set(job.id, fencedError(this.h.name, job));
  }

  /** Rolls back the move of `vm` into this host, which has not run it here, ending it with MIGRATION_FENCED and `why` (src/cluster/moving.ts). */
  async abandonIncoming(vm: string, why: string): Promise<void> {
    const job = this.h.jobs.activeFor(vm);
    if (job?.role === 'destination') await this.destination.abandon(job.id, new FerryError('MIGRATION_FENCED', why));
  }

  /**
   * Ends a move from this host whose stream completed but whose destination has lost its cluster
   * lease (src/cluster/moving.ts): the destination ran the VM, then powered it off (fencing), so
   * this host's copy, paused at the switch-over, is older than what ran there and must never run.
   * The destination is asked first: one that answers that it runs the VM, or that it rolled back
   * without running it, is left to the run, woken to ask it again (it goes forward, or runs its copy
   * again), and nothing is powered off. Otherwise `powerOff` kills the copy; then the run ends
   * failed with MIGRATION_FENCED and `why`, and the cluster restarts the VM from its disks.
   */
  async giveUpSent(vm: string, why: string, powerOff: () => Promise<void>): Promise<void> {
    const job = this.h.jobs.activeFor(vm);
    const run = job ? this.running.get(job.id) : undefined;
    if (!job || !run || job.role !== 'source' || !streamCompleted(job)) return;
    const st = await peerClient(this.h, job.destination).status(job.id, GIVE_UP_ASK_MS).catch(() => undefined);
    const word = destinationWord(st);
    if (word !== 'lost') {
      this.h.log.warn({ job: job.id, vm, destination: job.destination, word }, 'the destination lost its cluster lease but answers: its word decides the move, the paused copy is not powered off');
      run.run.askAgain();
      return;
    }
    // The asking took time: the run may have heard from the destination meanwhile.
    const now = this.h.jobs.find(job.id);
    if (!now || !streamCompleted(now) || this.running.get(job.id) !== run) return;
    this.fenced.set(job.id, new FerryError('MIGRATION_FENCED', why));
    await powerOff();
    run.ctl.abort();
    await run.done;
  }

  /**
   * A move into this host that ran the VM here and has no QEMU of it here any more (fenced), while
   * its record still waits for the source's `confirm`: ends it as the source's record ended. The
   * source gave up (failed: this host had lost its lease; giveUpSent) or went forward (completed,
   * its confirm lost). While the source's move runs or it does not answer, nothing changes: it asks
   * this host's status and goes forward when it can. A source that answers but has no record of the
   * move lost its state: the move ends failed here with QEMU_GONE, as recovery ends a destination
   * whose QEMU is gone after it took the VM over (recovery.ts), and the cluster restarts the VM.
   */
  async settleArrival(vm: string): Promise<void> {
    const job = this.h.jobs.activeFor(vm);
    if (job?.role !== 'destination') return;
    const reply = await peerClient(this.h, job.source, 10_000).status(job.id).catch(() => undefined);
    const theirs = reply?.job;
    // Only a reply about this job counts; "no record" only when it says so (job: null), not when the field is missing.
    if (!reply || reply.jobId !== job.id || theirs === undefined || theirs?.status === 'running' || theirs?.status === 'queued') return;
    await this.destination.serialized(job.id, async () => {
      const now = this.h.jobs.get(job.id);
      const q = this.h.qmp(vm);
      if (now.state.status !== 'running' || (q && !q.closed)) return;
      if (!theirs) {
        // Its records were lost (a source never deletes one): nothing will end the move there. The
        // recovery's rule for a destination whose QEMU is gone after it took the VM over: the VM is lost here.
        const message = `The VM "${vm}" ran on ${this.h.name} after its move from ${job.source} and its QEMU there is gone since; ${job.source} has no record of the move (its state was lost), so ${this.h.name} ended it. The cluster restarts the VM where etcd says it belongs.`;
        this.h.log.warn({ job: job.id, vm, source: job.source }, 'the VM of a move ran here and was powered off since, and the source has no record of the move: it ends here, the VM lost');
        this.h.jobs.apply(job.id, { type: 'end', status: 'failed', error: { code: 'QEMU_GONE', message } });
      } else {
        this.h.log.warn({ job: job.id, vm, source: job.source, theirs: theirs.status }, 'the VM of a move ran here and was powered off since; the move ends as its source ended it');
        this.h.jobs.apply(job.id, theirs.status === 'completed' ? { type: 'done' }
          : { type: 'end', status: 'failed', error: theirs.error ?? { code: 'MIGRATION_FENCED', message: `The source ${job.source} ended the move of "${vm}".` } });
      }
      const rec = this.h.inv.find(vm);
      if (rec) await unpinMac(rec.spec.mac, tapName(rec.spec.uuid));
      await closeTunnel(tunnelName(job.id));
    });
  }

  /** True while move `id` is queued or running here. */
  holds(id: string): boolean {
    return this.queued.has(id) || this.running.has(id);
  }

  /** Waits for a job this agent runs to end (for tests and `--wait` style callers). */
  async wait(id: string): Promise<JobRecord> {
    return (await this.running.get(id)?.done) ?? this.h.jobs.get(id);
  }

  /** Cancels a queued or running move; JOB_BAD_PHASE once the destination runs the VM. */
  cancel(id: string): JobRecord {
    const job = this.h.jobs.get(id);
    if (isTerminal(job.state)) throw new FerryError('JOB_BAD_PHASE', `The move ${id} has already ended (${job.state.status}).`);
    const waiting = this.queued.get(id);
    if (waiting && job.state.status === 'queued') {
      // Nothing has started: the job ends here, the VM was never touched.
      this.queued.delete(id);
      waiting.release();
      return this.h.jobs.apply(id, { type: 'cancel' });
    }
    const r = this.running.get(id);
    // Before the recovery's cancel too: a recovery that waits for post-copy to end would accept it and do nothing.
    if (job.role === 'source' && job.state.status === 'running' && job.state.direction === 'forward' && (job.state.phase === 'confirm' || job.state.postcopy)) {
      throw new FerryError('JOB_BAD_PHASE', `The move ${id} is past switch-over; it can only complete.`);
    }
    // After a restart: a source waiting for a silent destination runs its own copy again (the operator knows it is gone).
    if (!r && job.role === 'source' && this.recoveryWaits.requestCancel(id)) return job;
    if (!r || job.role !== 'source') {
      throw new FerryError('JOB_BAD_PHASE', `The move ${id} is driven by its source host ${job.source}; cancel it there.`);
    }
    // The stream's last state is on its way: the destination resumes the VM as it sees it end. A
    // silent destination is then a matter for finish, where a cancel ends the wait (source.ts).
    if (r.run.switchingOver && phaseOf(job.state) === 'perform') {
      throw new FerryError('JOB_BAD_PHASE', `The move ${id} is switching over and completes in moments; cancel it again if its destination then does not answer.`);
    }
    r.ctl.abort();
    return job;
  }

  list(q: { vm?: string; limit?: number } = {}): JobSummary[] {
    return this.h.jobs.list(q).map((j) => summarize(j));
  }

  get(id: string): JobRecord { return this.h.jobs.get(id); }

  /**
   * After an agent restart: settles every job the store holds as unfinished. A destination job's
   * recovery runs in that job's message chain, so it never races a `finish` from the source.
   */
  recover(): Promise<void> {
    return recoverJobs(this.h, (job, fn) => (job.role === 'destination' ? this.destination.serialized(job.id, fn) : fn()), this.recoveryWaits);
  }
}

/**
 * What a destination's `status` says of a move whose stream completed (giveUpSent): it runs the VM
 * (the move goes forward); it rolled back without running it and holds no QEMU of it (its record
 * ended before `confirm`: the source's paused copy is the VM); or `lost`: no answer, no record, a VM
 * that ran there and is gone since, or one that may still run there.
 */
export function destinationWord(st: StatusReply | undefined): 'runs' | 'rolled-back' | 'lost' {
  const j = st?.job;
  if (!st || !j) return 'lost';
  if (confirmedIn(j) && st.qemu.running) return 'runs';
  if ((j.status === 'failed' || j.status === 'cancelled') && j.phase !== 'confirm' && !st.qemu.alive) return 'rolled-back';
  return 'lost';
}

/** A source's move whose stream completed: the destination runs the VM (or did), the source waits for its word. */
export function streamCompleted(job: JobRecord): boolean {
  return job.role === 'source' && job.state.status === 'running' && job.state.direction === 'forward' && phaseOf(job.state) === 'finish';
}
