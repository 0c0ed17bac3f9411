/**
 * What Ferry asks of QEMU for a move, decided here (pure) and sent by the executor:
 * the capabilities and parameters each side gets before `migrate` / `migrate-incoming`,
 * the announcements after resume, and when to redirect the VM's MAC for the network
 * cut-over (docs/design/0001-migration-protocol.md, "Network cut-over").
 */
import type {
  AnnounceParameters, MigrateSetParameters, MigrationCapability, MigrationCapabilityStatus,
} from '../qmp/index.js';
import type { ConvergencePolicy } from './policy.js';

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
