/**
 * What Ferry asks of QEMU for a move, decided here (pure) and sent by the executor:
 * the capabilities and parameters each side gets before `migrate` / `migrate-incoming`,
 * the announcements after resume, and when to redirect the VM's MAC for the network
 * cut-over (docs/design/0001-migration-protocol.md, "Network cut-over").
 */
import type {
  AnnounceParameters, MigrateSetParameters, MigrationCapability, MigrationCapabilityStatus,
} from '../qmp/index.js';
import type { ConvergencePolicy, ProgressSample } from './policy.js';
import { transferBytesPerSec } from './policy.js';

/** Capabilities and parameters for one side, sent before the migration starts. */
export interface QemuMigrationSettings {
  /** Sent with migrate-set-capabilities; QEMU refuses capability changes once migration runs. */
  capabilities: MigrationCapabilityStatus[];
  /** Sent with migrate-set-parameters; parameters may change later (the policy does). */
  parameters: MigrateSetParameters;
}

/** Effectively unlimited: the lab measured 0.38 s moves at this limit against 0.7 s at QEMU's default. */
export const DEFAULT_MAX_BANDWIDTH = 16 * 1024 ** 3;

/**
 * Auto-converge's start ceiling. The capability must be on before `migrate`, but the policy
 * wants to throttle only after raising the downtime limit; holding max-cpu-throttle at 1%
 * keeps QEMU's own trigger harmless until the policy raises the ceiling.
 */
export const HELD_THROTTLE_PERCENT = 1;

const caps = (on: Partial<Record<MigrationCapability, boolean>>): MigrationCapabilityStatus[] =>
  Object.entries(on).map(([capability, state]) => ({ capability: capability as MigrationCapability, state: state === true }));

/**
 * The source's settings. `events` gives MIGRATION / MIGRATION_PASS; `pause-before-switchover`
 * stops at pre-switchover so disk mirrors settle before the switch; `return-path` lets the
 * destination report a failed load so the source does not resume into a lie; `validate-uuid`
 * makes a wrong destination QEMU refuse the stream.
 */
export function sourceSettings(policy: ConvergencePolicy, maxBandwidth = DEFAULT_MAX_BANDWIDTH): QemuMigrationSettings {
  const parameters: MigrateSetParameters = { 'downtime-limit': policy.downtimeTargetMs, 'max-bandwidth': maxBandwidth };
  if (policy.allowAutoConverge) {
    Object.assign(parameters, {
      'cpu-throttle-initial': HELD_THROTTLE_PERCENT, 'cpu-throttle-increment': 10, 'max-cpu-throttle': HELD_THROTTLE_PERCENT,
    });
  }
  return {
    capabilities: caps({
      events: true, 'pause-before-switchover': true, 'return-path': true, 'validate-uuid': true,
      'auto-converge': policy.allowAutoConverge, 'postcopy-ram': policy.allowPostcopy,
    }),
    parameters,
  };
}

/** QEMU announces the NICs itself when the incoming state loads; these pace those rounds. */
export const LOAD_ANNOUNCE = Object.freeze({ initial: 50, max: 550, rounds: 5, step: 100 });

/**
 * The destination's settings, set before `migrate-incoming`. `postcopy-ram` and `return-path`
 * must be on at both ends; the announce-* parameters pace the announcements QEMU makes on load.
 */
export function destinationSettings(policy: ConvergencePolicy): QemuMigrationSettings {
  return {
    capabilities: caps({ events: true, 'return-path': true, 'postcopy-ram': policy.allowPostcopy }),
    parameters: {
      'announce-initial': LOAD_ANNOUNCE.initial, 'announce-max': LOAD_ANNOUNCE.max,
      'announce-rounds': LOAD_ANNOUNCE.rounds, 'announce-step': LOAD_ANNOUNCE.step,
    },
  };
}

/**
 * announce-self after `cont` on the destination (and after a rollback resumes the source):
 * with the guest running, virtio-net's guest announce sends gratuitous ARPs from inside too.
 * The id makes a repeated call replace, not stack, the timer.
 */
export const RESUME_ANNOUNCE: AnnounceParameters = Object.freeze({ initial: 20, max: 200, rounds: 4, step: 50, id: 'ferry-move' });

/** When to redirect the VM's MAC to the destination before the switch-over pause. */
export interface CutoverPolicy {
  /**
   * Redirect once RAM still to send falls under this, or under what QEMU would send in one
   * downtime-limit at the current rate (its own switch point), whichever is larger.
   */
  remainingFloorBytes: number;
  /** Undo the redirect if QEMU has not paused this long after it (the pass was not the last). */
  holdMs: number;
}

/** 30 MB is where the lab measured the redirect working (qemu-facts.md); 1 s bounds a black hole. */
export const DEFAULT_CUTOVER: CutoverPolicy = Object.freeze({ remainingFloorBytes: 30 * 1024 * 1024, holdMs: 1000 });

/**
 * QEMU switches over once what remains fits in `downtime-limit` at the measured rate;
 * this is that amount, with `floor` as a lower bound for slow or unmeasured links.
 */
export const switchThresholdBytes = (s: ProgressSample, downtimeLimitMs: number, floor: number): number =>
  Math.max(floor, (transferBytesPerSec(s) * downtimeLimitMs) / 1000);

/**
 * True when the MAC should point at the destination now: the migration is active and about to
 * pause (QEMU's estimate fits the limit, or what remains is under the switch threshold), or it
 * already sits at pre-switchover (late, but better than after the pause). During the bulk pass
 * only the floor counts: the guest's dirty rate is not measured yet, so the end of pass 1 may
 * well not be the end of the move.
 */
export function cutoverDue(s: ProgressSample, downtimeLimitMs: number, c: CutoverPolicy = DEFAULT_CUTOVER): boolean {
  if (s.status === 'pre-switchover') return true;
  if (s.status !== 'active' || s.totalBytes === 0) return false;
  if (s.pass < 2) return s.remainingBytes <= c.remainingFloorBytes;
  if (s.expectedDowntimeMs !== null && s.expectedDowntimeMs <= downtimeLimitMs) return true;
  return s.remainingBytes <= switchThresholdBytes(s, downtimeLimitMs, c.remainingFloorBytes);
}

/** What the executor does about the MAC redirect after a sample. */
export type CutoverAction = 'redirect' | 'restore' | 'none';

/** Where the cut-over stands; the executor keeps it beside its AppliedSettings. */
export interface CutoverState {
  downtimeLimitMs: number;
  /** When the current redirect was made (samples' clock); null while none is in place. */
  redirectedAtMs: number | null;
  /** The pass in which a redirect was last undone; 0 for never. No new redirect in that pass. */
  restoredInPass: number;
}

/**
 * The cut-over decision. A redirect held longer than `holdMs` while QEMU is still copying is
 * undone (frames queued at the destination would otherwise wait ever longer), and not made
 * again before the next pass, so it does not flap.
 */
export function cutoverAction(s: ProgressSample, st: CutoverState, c: CutoverPolicy = DEFAULT_CUTOVER): CutoverAction {
  if (st.redirectedAtMs !== null) return s.status === 'active' && s.atMs - st.redirectedAtMs >= c.holdMs ? 'restore' : 'none';
  if (st.restoredInPass > 0 && s.pass <= st.restoredInPass && s.status !== 'pre-switchover') return 'none';
  return cutoverDue(s, st.downtimeLimitMs, c) ? 'redirect' : 'none';
}

/**
 * How long to wait before the next query-migrate: 100 ms in general, 5 ms near the switch
 * point, so the redirect lands as close to the pause as polling allows.
 */
export function pollIntervalMs(s: ProgressSample | undefined, downtimeLimitMs: number, c: CutoverPolicy = DEFAULT_CUTOVER): number {
  if (!s || s.status !== 'active' || s.totalBytes === 0) return 100;
  return s.remainingBytes <= 4 * switchThresholdBytes(s, downtimeLimitMs, c.remainingFloorBytes) ? 5 : 100;
}
