/**
 * A move whose destination ran the VM after the switch-over and lost it since (its host crashed, and
 * its recovery ended its record: recovery.ts, the destination's "VM lost" rule). The source's copy,
 * paused at the switch-over, is older than what ran there: resuming it would run stale memory on
 * disks the destination wrote to (a shared pool), or lose everything since the switch-over (a storage
 * move). Letting go would drop the VM, whose record the destination no longer holds. So the source
 * powers its copy off without running it, keeps its disks and keeps the VM, stopped, with the reason
 * (docs/design/0001-migration-protocol.md, "Recovery and rollback").
 */
import type { JobRecord } from './job.js';
import { isTerminal, phaseOf } from './job.js';
import type { PeerJobView, StatusReply } from './protocol.js';

/** The catalogue code a move ends with when its destination ran the VM and lost it. */
export const LOST_THERE_CODE = 'MIGRATION_LOST_ON_DESTINATION' as const;

/** The destination owns the VM once it resumed it: forward `confirm`, or completed. */
export const ownsVm = (job: Pick<JobRecord, 'state'>): boolean =>
  job.state.status === 'completed' || (job.state.status === 'running' && job.state.direction === 'forward' && phaseOf(job.state) === 'confirm');

/** The same read from a peer's `status` reply: its record says the VM runs there (or did, if its QEMU is gone). */
export const confirmedIn = (j: PeerJobView): boolean => j.status === 'completed' || (j.direction === 'forward' && j.phase === 'confirm');

/**
 * A destination's record that ended after the VM ran there: it reached forward `confirm` (only a VM
 * that ran there gets there; a move that turns back never enters it), then failed or was cancelled.
 */
export const ranThenLost = (job: Pick<JobRecord, 'state' | 'role'>): boolean =>
  job.role === 'destination' && (job.state.status === 'failed' || job.state.status === 'cancelled') && job.state.failedIn === 'confirm';

/** A destination's record says the VM ran there: forward `confirm`, completed, or ended after that. */
export const ranHere = (job: Pick<JobRecord, 'state' | 'role'>): boolean =>
  job.role === 'destination' && (ownsVm(job) || ranThenLost(job));

/**
 * From a destination's `status` reply: its record ended after the VM ran there. Only the reply's
 * `ranHere` says so; an older destination's reply without it is read as before (false).
 */
export const destinationLostIt = (st: Pick<StatusReply, 'job'> | undefined): st is { job: PeerJobView } =>
  st?.job?.ranHere === true && (st.job.status === 'failed' || st.job.status === 'cancelled');

/** What the source's rollBack does after asking the destination's status (source.ts). */
export type RollBackWord = 'forward' | 'keep-stopped' | 'back';

/**
 * `forward` when the destination runs the VM (it owns it); `keep-stopped` when it ran it and lost it
 * (unless this host was fenced: the cluster's rule then ends the move, src/cluster/moving.ts); else
 * `back`, the usual rollback (which still asks the destination to clean up, and a refusal decides again).
 */
export function rollBackWord(st: StatusReply | undefined, fenced: boolean): RollBackWord {
  const j = st?.job;
  if (j && confirmedIn(j) && st.qemu.running) return 'forward';
  if (!fenced && destinationLostIt(st)) return 'keep-stopped';
  return 'back';
}

/**
 * The reason the source's VM stays stopped (its inventory `reason`, and the job's error): where the VM
 * ran and was lost, that the copy here was not run, how to start it, and, after a storage move, that
 * the disks here are as of the switch-over and the destination kept its newer images (its own message,
 * quoted as `theirs`, names them).
 */
export function lostThereMessage(job: Pick<JobRecord, 'vm' | 'source' | 'destination' | 'options'>, theirs?: string): string {
  const { vm, source, destination } = job;
  const storage = job.options.includeStorage
    ? ` The disks here are as of the switch-over; ${destination} kept its newer images (its own message says where).` : '';
  return `The VM "${vm}" ran on ${destination} after the switch-over and was lost there${theirs ? ` (${destination}: ${theirs.replace(/\.$/, '')})` : ''}; `
    + `its copy here on ${source} was older and was not run. Start it (ferry vm start ${vm}) to boot it from its disks.${storage}`;
}

/** The destination's refusal of `finish(failure)` or `cancel` for a record that ended after the VM ran there. */
export function lostHereRefusal(job: JobRecord, host: string): string {
  const why = isTerminal(job.state) && 'error' in job.state ? ` (${job.state.error.code})` : '';
  return `The VM "${job.vm}" ran on ${host} after the switch-over and was lost here since${why}; the source's copy is older than what ran here `
    + `and must not run again: the source keeps the VM stopped, to be started from its disks.`;
}
