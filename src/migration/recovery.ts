/**
 * What an agent does, after a restart, with a job it finds unfinished in its store. Pure:
 * {@link recoveryAction} maps the persisted state and what the agent can observe now to a
 * decision; the executor carries it out and ends the job with the decision's `end` event.
 *
 * The rule is libvirt's (qemuProcessRecoverMigrationIn/Out): until the destination has
 * resumed the VM, the source owns it and the move is rolled back (resume the VM on the
 * source, clean up the destination); once the destination has confirmed RESUME — or runs
 * the guest in post-copy — the move is rolled forward (the destination keeps the VM, the
 * source lets go). Where the answer depends on a fact the agent cannot see (the peer does
 * not answer), the decision is to wait and ask again, never to guess: a wrong guess runs
 * the VM twice or nowhere.
 */
import type { MigrationStatus } from '../qmp/index.js';
import type { EndEvent, ForwardState, JobError, JobRecord, JobRole, Phase, RollbackState } from './job.js';
import { LOST_THERE_CODE, lostThereMessage } from './lost-there.js';

/** An observation that may be missing (the peer agent did not answer). */
export type Fact = boolean | 'unknown';

/** What the recovering agent observes now, locally and (through the peer's `status`) remotely. */
export interface RecoveryFacts {
  /** The VM's QEMU process exists on the source. */
  sourceQemuAlive: Fact;
  /** The source's vCPUs run (query-status `running`); false when paused or post-migrate. */
  sourceRunning: Fact;
  destQemuAlive: Fact;
  destRunning: Fact;
  /** query-migrate status on the recovering host: outgoing on the source, incoming on the destination. */
  qemuMigrationStatus?: MigrationStatus;
  /** The same status on the peer host, from its `status` reply, when it answered. */
  peerMigrationStatus?: MigrationStatus;
  /**
   * Source only: the destination's record says it resumed the VM (forward `confirm`, or
   * `completed`), from its `status` reply. Its QEMU may have gone since; it owns the VM anyway.
   */
  destConfirmed?: boolean;
  /**
   * Source only: the destination's record ended after the VM ran there (its `status` says `ranHere`
   * and failed or cancelled; lost-there.ts), with the destination's own message. Absent otherwise,
   * and from an older destination.
   */
  destLost?: { message?: string };
}

/** The actions a decision is made of, to be run in the order given. */
export type RecoveryStep =
  /** Source: migrate_cancel (QEMU may still be copying, or waiting at pre-switchover). */
  | 'cancel-migration'
  /** Source → peer `cancel`: the destination kills its QEMU and deletes what prepare made. */
  | 'cancel-destination'
  /**
   * Source: `cont` if the move paused the VM (QEMU run state finish-migrate or postmigrate; a VM
   * the user had paused stays paused), then announce-self so the network finds it here again.
   */
  | 'resume-source'
  /** Source: quit QEMU, delete the source disks after a storage move, drop the VM from the inventory. */
  | 'stop-source'
  /**
   * Source, the VM having run on the destination and been lost there: quit the paused QEMU without
   * running it, keep the disks and the VM, `stopped` with the decision's message as the reason.
   */
  | 'power-off-source'
  /** Source → peer `finish` (success): the destination resumes and takes the VM. */
  | 'finish-destination'
  /** Source → peer `confirm` (success): the source let go; the destination ends its record. */
  | 'confirm-destination'
  /** Destination: kill the incoming QEMU. */
  | 'kill-destination'
  /** Destination: delete new files, NBD exports, reservations and any MAC redirect. */
  | 'clean-destination'
  /**
   * Destination, its QEMU gone while the source runs the VM again: drop the record, tap and run
   * folder, keeping a storage move's images (the guest may have written there after the switch-over).
   */
  | 'forget-destination'
  /** Destination: `cont` if paused, announce-self, remove the MAC redirect. */
  | 'resume-destination'
  /** Destination: the inventory now holds the VM as running here. */
  | 'take-ownership'
  /** Both: unlock the VM and free the slot. */
  | 'release';

/** A decision that ends the job: run `steps`, then apply `end`. */
interface Resolution<K extends string> {
  kind: K;
  steps: readonly RecoveryStep[];
  /**
   * True when a peer step (`cancel-destination`, `finish-destination`) must be acknowledged
   * before the next step runs; if the peer does not answer, stop and recover again later.
   * False when peer steps are best effort (the peer ends up the same way on its own).
   */
  awaitPeer: boolean;
  end: EndEvent;
  reason: string;
}

/** What recovery does with one job. */
export type RecoveryDecision =
  /** The job has ended; nothing to do. */
  | { kind: 'none'; reason: string }
  /** A needed fact is unknown, or QEMU is still finishing on its own: ask again later. */
  | { kind: 'wait'; reason: string }
  /** The source keeps (or gets back) the VM; the destination is cleaned up. */
  | Resolution<'roll-back'>
  /** The destination keeps the VM; the source lets go. */
  | Resolution<'roll-forward'>
  /** The VM's QEMU is gone and no host holds a complete copy: clean up, fail the job. */
  | Resolution<'vm-lost'>
  /** No automatic step is safe (both hosts run the guest, or post-copy broke): fail and tell the operator. */
  | Resolution<'manual'>;

/** A decision that ends the job. */
export type EndingDecision = Exclude<RecoveryDecision, { kind: 'none' } | { kind: 'wait' }>;

type Running = ForwardState | RollbackState;

/** Outgoing QEMU states in which a migrate_cancel still has something to cancel. */
const IN_FLIGHT: ReadonlySet<MigrationStatus> = new Set(['setup', 'active', 'pre-switchover', 'device', 'wait-unplug', 'cancelling']);
const POSTCOPY: ReadonlySet<MigrationStatus> = new Set(['postcopy-active', 'postcopy-paused', 'postcopy-recover']);

const FORWARD_SOURCE: readonly RecoveryStep[] = ['stop-source', 'confirm-destination', 'release'];
const FORWARD_DEST: readonly RecoveryStep[] = ['resume-destination', 'take-ownership', 'release'];
const BACK_DEST: readonly RecoveryStep[] = ['kill-destination', 'clean-destination', 'release'];

const phaseOfRunning = (s: Running): Phase => (s.direction === 'rollback' ? s.failedIn : s.phase);

function forward(steps: readonly RecoveryStep[], reason: string, awaitPeer = false): RecoveryDecision {
  return { kind: 'roll-forward', steps, awaitPeer, end: { type: 'end', status: 'completed' }, reason };
}

/** Rolling back keeps a cancel a cancel and the first failure's error; a restart alone is a failure. */
function back(s: Running, steps: readonly RecoveryStep[], reason: string, awaitPeer = false): RecoveryDecision {
  const error: JobError = s.direction === 'rollback'
    ? s.error
    : { code: 'MIGRATION_FAILED', message: `The agent restarted during phase ${s.phase}; the move was rolled back and the VM keeps running on the source.` };
  const status = s.direction === 'rollback' && s.cancelled ? 'cancelled' : 'failed';
  return { kind: 'roll-back', steps, awaitPeer, end: { type: 'end', status, error }, reason };
}

function lost(steps: readonly RecoveryStep[], reason: string): EndingDecision {
  return { kind: 'vm-lost', steps, awaitPeer: false, end: { type: 'end', status: 'failed', error: { code: 'QEMU_GONE', message: reason } }, reason };
}

function manual(reason: string): RecoveryDecision {
  return { kind: 'manual', steps: [], awaitPeer: false, end: { type: 'end', status: 'failed', error: { code: 'MIGRATION_FAILED', message: reason } }, reason };
}

const wait = (reason: string): RecoveryDecision => ({ kind: 'wait', reason });

/** What an operator asked of a job under recovery. */
export interface RecoveryOptions {
  /**
   * `ferry migration cancel` of a source job waiting for a silent destination: the operator knows
   * the destination is gone for good, so the source runs its own copy again.
   */
  cancelRequested?: boolean;
}

function cancelledWhileSilent(s: Running, f: RecoveryFacts): RecoveryDecision {
  const message = 'The move was cancelled while the destination did not answer; the VM runs on the source again.';
  return {
    kind: 'roll-back', steps: sourceBackSteps(s, f), awaitPeer: false, end: { type: 'end', status: 'cancelled', error: { code: 'MIGRATION_CANCELLED', message } },
    reason: 'An operator cancelled the move while the destination was silent.',
  };
}

/** Source side in post-copy: the destination runs the guest while pages still come from here. */
function sourcePostcopy(f: RecoveryFacts): RecoveryDecision {
  switch (f.qemuMigrationStatus) {
    case 'completed':
      return forward(['finish-destination', 'stop-source', 'confirm-destination', 'release'], 'Post-copy completed: the destination has every page.', true);
    case 'postcopy-active':
    case 'postcopy-recover':
    case 'active':
      return wait('Post-copy is under way (or about to start); QEMU finishes it without the agent.');
    case 'postcopy-paused':
      return manual('Post-copy is paused because the link between the hosts broke; neither host has the whole guest.');
    default:
      return f.peerMigrationStatus === 'completed' && f.destQemuAlive === true
        ? forward(['finish-destination', 'release'], 'The source QEMU is gone but the destination received every page.', true)
        : lost(['cancel-destination', 'release'], 'Post-copy ended without completing; neither host has the whole guest.');
  }
}

/** Source side when its QEMU is gone: only a complete, idle copy on the destination saves the VM. */
function sourceGone(s: Running, f: RecoveryFacts): RecoveryDecision {
  if (f.destQemuAlive === true && f.peerMigrationStatus === 'completed') {
    return forward(['finish-destination', 'release'], 'The source QEMU is gone and the destination holds the complete VM: resuming it there.', true);
  }
  if (f.destQemuAlive === 'unknown' || (f.destQemuAlive === true && f.peerMigrationStatus === undefined)) {
    return wait('The source QEMU is gone and the destination did not say whether it holds the complete VM.');
  }
  const steps: RecoveryStep[] = phaseOfRunning(s) === 'begin' ? ['release'] : ['cancel-destination', 'release'];
  return lost(steps, 'The VM\'s QEMU is gone on the source and the destination has no complete copy.');
}

/** The rollback steps on the source, by what is there to undo. */
function sourceBackSteps(s: Running, f: RecoveryFacts): RecoveryStep[] {
  const phase = phaseOfRunning(s);
  const steps: RecoveryStep[] = [];
  const mayMigrate = phase === 'perform' || phase === 'finish';
  if (f.qemuMigrationStatus !== undefined ? IN_FLIGHT.has(f.qemuMigrationStatus) : mayMigrate) steps.push('cancel-migration');
  if (phase !== 'begin') steps.push('cancel-destination');
  if (f.sourceRunning !== true && (mayMigrate || phase === 'confirm')) steps.push('resume-source');
  steps.push('release');
  return steps;
}

/**
 * Source side when the destination ran the VM and lost it since: the copy here is older than what
 * ran there. It must not run (stale memory on disks written there since), and the source must not
 * let go (the destination holds no record any more): powered off, the VM kept here, stopped.
 */
function keptStopped(job: JobRecord, s: Running, f: RecoveryFacts, theirs: string | undefined): RecoveryDecision {
  // Facts that disagree (its record ended, yet it runs a guest): nothing automatic is safe.
  if (f.destRunning === true) return manual('The destination\'s record of the move ended after the VM ran there, yet it runs the guest; Ferry stopped nothing.');
  if (f.sourceRunning === true) return back(s, ['release'], 'The source runs its copy again; the destination had run the VM and lost it.');
  return poweredOffHere(job, theirs, 'The destination ran the VM after the switch-over and lost it; the older copy here is powered off and the VM kept, stopped.');
}

/** The VM ran on the destination and was lost there: the older copy here is powered off unrun, the VM kept (MIGRATION_LOST_ON_DESTINATION). */
function poweredOffHere(job: JobRecord, theirs: string | undefined, reason: string): EndingDecision {
  return {
    kind: 'vm-lost', steps: ['power-off-source', 'release'], awaitPeer: false,
    end: { type: 'end', status: 'failed', error: { code: LOST_THERE_CODE, message: lostThereMessage(job, theirs) } }, reason,
  };
}

function recoverSource(job: JobRecord, s: Running, f: RecoveryFacts, opts: RecoveryOptions): RecoveryDecision {
  // First: every other rule would resume the copy here, or let it go, or ask the destination forever.
  if (f.destLost) return keptStopped(job, s, f, f.destLost.message);
  const postcopyFlag = s.direction === 'forward' && s.postcopy;
  if ((f.qemuMigrationStatus !== undefined && POSTCOPY.has(f.qemuMigrationStatus)) || (postcopyFlag && f.sourceRunning !== true)) {
    return sourcePostcopy(f);
  }
  if (f.sourceRunning === true && f.destRunning === true) return manual('The guest runs on both hosts; Ferry stopped neither.');
  if (s.direction === 'forward' && s.phase === 'confirm') {
    if (f.sourceRunning === true) return manual('The source runs the VM again after the destination had taken it over.');
    return forward(FORWARD_SOURCE, 'The destination had confirmed that it resumed the VM.');
  }
  if (f.destRunning === true) return forward(FORWARD_SOURCE, 'The destination runs the VM.');
  // The destination ran the VM, and its QEMU is gone or paused since. It refuses every cancel, so a
  // roll-back would ask it forever; the copy here is older than what ran there: forward, as a live
  // source does when its finish{failure} is refused (source.ts, rollBack).
  if (f.destConfirmed === true) {
    if (f.sourceRunning === true) {
      return f.destQemuAlive === false
        ? back(s, ['release'], 'The source runs the VM again and the destination\'s copy is gone.')
        : manual('The source runs the VM again after the destination had taken it over.');
    }
    return forward(FORWARD_SOURCE, 'The destination had confirmed that it resumed the VM.');
  }
  if (f.sourceQemuAlive === false) return sourceGone(s, f);
  // The stream completed (finish, or perform with QEMU done before the agent wrote finish, or the
  // rollback of a failure after that): the destination runs the VM as soon as it saw that, without
  // waiting for finish. So the source runs its own copy only once the destination said it does not,
  // or an operator cancelled, knowing the destination is gone for good (a cancel's own rollback
  // runs the copy: that was its point; the live path waits the same way, source.ts).
  const streamDone = f.qemuMigrationStatus === 'completed';
  const forwardDone = s.direction === 'forward' && (s.phase === 'finish' || streamDone);
  if ((forwardDone || (s.direction === 'rollback' && !s.cancelled && streamDone)) && f.destRunning === 'unknown') {
    return opts.cancelRequested ? cancelledWhileSilent(s, f) : wait('The destination may have resumed the VM and did not answer.');
  }
  if (forwardDone) return back(s, sourceBackSteps(s, f), 'The destination had not resumed the VM.', true);
  const where = s.direction === 'forward' ? `in ${s.phase}` : `while rolling back from ${s.failedIn}`;
  return back(s, sourceBackSteps(s, f), `The source still owns the VM: the job stopped ${where}.`);
}

/** Destination side, VM not running: only a complete copy matters, and only if the source lost its own. */
function destIdle(s: Running, f: RecoveryFacts): RecoveryDecision {
  if (f.destQemuAlive === true && f.qemuMigrationStatus === 'completed') {
    if (f.sourceQemuAlive === false) return forward(FORWARD_DEST, 'The source QEMU is gone and this host holds the complete VM.');
    if (f.sourceQemuAlive === 'unknown') return wait('This host holds the complete VM and the source did not say whether it still has its own.');
  }
  return back(s, BACK_DEST, 'The destination never resumed the VM: the source owns it.');
}

function recoverDestination(s: Running, f: RecoveryFacts): RecoveryDecision {
  const status = f.qemuMigrationStatus;
  if (status === 'postcopy-paused') return manual('Post-copy is paused because the link between the hosts broke; neither host has the whole guest.');
  if (status === 'postcopy-active' || status === 'postcopy-recover') return wait('Post-copy is under way; QEMU finishes it without the agent.');
  if (f.sourceRunning === true && f.destRunning === true) return manual('The guest runs on both hosts; Ferry stopped neither.');
  if (f.destRunning === true) return forward(FORWARD_DEST, 'This host runs the VM.');
  if (s.direction === 'forward' && s.phase === 'confirm') {
    if (f.sourceRunning === true) {
      // An operator cancelled the move on the source while this host was silent (docs/design/0001).
      if (f.destQemuAlive === false) return back(s, ['forget-destination', 'release'], 'The source runs the VM again and this host\'s copy is gone.');
      return manual('The source runs the VM again after this host had taken it over.');
    }
    // A storage move's images are kept (the only copy of what the guest wrote since the switch-over); the source keeps the VM stopped.
    return f.destQemuAlive === false
      ? lost(['forget-destination', 'release'], 'The VM\'s QEMU on the destination is gone after it had taken the VM over.')
      : forward(FORWARD_DEST, 'This host had confirmed that it resumed the VM.');
  }
  return destIdle(s, f);
}

/**
 * What the source does when the destination answers a `finish-destination` with `resumed: false`:
 * it rolled back (its QEMU went away, or could not run the VM), so no host holds the running VM any
 * more, and going on with the decision would end the move `completed` with the VM running nowhere.
 * - The source's QEMU is gone (its usual case): the VM is lost, kept here with its disks, stopped.
 * - It still holds a paused copy (post-copy completed): the guest ran on the destination, so the copy
 *   here is older; as after any loss there, it is powered off without running and the VM kept.
 */
export function afterFinishRefused(job: JobRecord, facts: RecoveryFacts, theirs: JobError | undefined): EndingDecision {
  if (facts.sourceQemuAlive === true) {
    return poweredOffHere(job, theirs?.message, 'The destination ran the VM in post-copy and could not resume it again; the older copy here is powered off and the VM kept, stopped.');
  }
  const why = theirs ? ` (${job.destination}: ${theirs.message.replace(/\.$/, '')})` : '';
  return lost(['release'], `The VM's QEMU is gone on the source and ${job.destination} could not resume its complete copy${why}; `
    + `no host runs "${job.vm}". It stays on ${job.source}, not running: start it (ferry vm start ${job.vm}) to boot it from its disks.`);
}

/**
 * The recovery decision for one job found unfinished after an agent restart, for either
 * role. Table-tested for every persisted phase (recovery.test.ts).
 */
export function recoveryAction(role: JobRole, persisted: JobRecord, facts: RecoveryFacts, opts: RecoveryOptions = {}): RecoveryDecision {
  const s = persisted.state;
  if (s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled') return { kind: 'none', reason: `The job has ${s.status}.` };
  if (s.status === 'queued') {
    return {
      kind: 'roll-back', steps: ['release'], awaitPeer: false, reason: 'The job was still queued; nothing had started.',
      end: { type: 'end', status: 'failed', error: { code: 'MIGRATION_FAILED', message: 'The agent restarted while the move was queued; nothing was moved.' } },
    };
  }
  // A QEMU known to be gone runs nothing, whatever a stale answer said.
  const f: RecoveryFacts = {
    ...facts,
    sourceRunning: facts.sourceQemuAlive === false ? false : facts.sourceRunning,
    destRunning: facts.destQemuAlive === false ? false : facts.destRunning,
  };
  return role === 'source' ? recoverSource(persisted, s, f, opts) : recoverDestination(s, f);
}
