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
import { usesMultifd, type PerformanceOption } from './host-settings.js';

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
 * makes a wrong destination QEMU refuse the stream. `multifd` is set either way: a QEMU that
 * arrived here by an earlier move keeps that move's capabilities.
 */
export function sourceSettings(policy: ConvergencePolicy, maxBandwidth = DEFAULT_MAX_BANDWIDTH, performance: PerformanceOption = 'tcp'): QemuMigrationSettings {
  const parameters: MigrateSetParameters = { 'downtime-limit': policy.downtimeTargetMs, 'max-bandwidth': maxBandwidth, ...multifdParameters(performance) };
  if (policy.allowAutoConverge) {
    Object.assign(parameters, {
      'cpu-throttle-initial': HELD_THROTTLE_PERCENT, 'cpu-throttle-increment': 10, 'max-cpu-throttle': HELD_THROTTLE_PERCENT,
    });
  }
  return {
    capabilities: caps({
      events: true, 'pause-before-switchover': true, 'return-path': true, 'validate-uuid': true,
      'auto-converge': policy.allowAutoConverge, 'postcopy-ram': policy.allowPostcopy, multifd: usesMultifd(performance),
    }),
    parameters,
  };
}

/** multifd channels per performance option: several for raw throughput, two for zstd (each channel compresses on its own thread). */
export const MULTIFD_CHANNELS: Readonly<Record<Exclude<PerformanceOption, 'tcp'>, number>> = Object.freeze({ multichannel: 4, compression: 2 });

/**
 * The multifd parameters of a performance option, the same at both ends (the destination must
 * expect as many channels, decompressing the same way). Nothing for `tcp`: one migration stream.
 */
function multifdParameters(performance: PerformanceOption): MigrateSetParameters {
  if (performance === 'tcp') return {};
  return {
    'multifd-channels': MULTIFD_CHANNELS[performance],
    'multifd-compression': performance === 'compression' ? 'zstd' : 'none',
  };
}

/** QEMU announces the NICs itself when the incoming state loads; these pace those rounds. */
export const LOAD_ANNOUNCE = Object.freeze({ initial: 50, max: 550, rounds: 5, step: 100 });

/**
 * The destination's settings, set before `migrate-incoming`. `postcopy-ram`, `return-path` and
 * `multifd` (with its channels and compression) must match the source's; multifd must be set
 * before `migrate-incoming`, which opens the listener for that many channels. The announce-*
 * parameters pace the announcements QEMU makes on load.
 */
export function destinationSettings(policy: ConvergencePolicy, performance: PerformanceOption = 'tcp'): QemuMigrationSettings {
  return {
    capabilities: caps({ events: true, 'return-path': true, 'postcopy-ram': policy.allowPostcopy, multifd: usesMultifd(performance) }),
    parameters: {
      'announce-initial': LOAD_ANNOUNCE.initial, 'announce-max': LOAD_ANNOUNCE.max,
      'announce-rounds': LOAD_ANNOUNCE.rounds, 'announce-step': LOAD_ANNOUNCE.step,
      ...multifdParameters(performance),
    },
  };
}

/**
 * announce-self after `cont` on the destination (and after a rollback resumes the source):
 * with the guest running, virtio-net's guest announce sends gratuitous ARPs from inside too.
 * The id makes a repeated call replace, not stack, the timer.
 */
export const RESUME_ANNOUNCE: AnnounceParameters = Object.freeze({ initial: 20, max: 200, rounds: 4, step: 50, id: 'ferry-move' });

/** A move's transport security at one end: the QEMU tls-creds object, and the peer's name (source) or authz object (destination). */
export type StreamTls = { creds: string; hostname: string } | { creds: string; authz: string };

/**
 * The TLS parameters of one end of a move. Encrypted, the source names the destination host as
 * `tls-hostname` (its certificate's SAN) and the destination admits only the identity of its
 * `tls-authz` object; unencrypted, every TLS string is cleared, since a QEMU that arrived by an
 * encrypted move keeps that move's parameters.
 */
export function tlsParameters(tls: StreamTls | undefined, end: 'source' | 'destination'): MigrateSetParameters {
  if (!tls) return end === 'source' ? { 'tls-creds': '', 'tls-hostname': '' } : { 'tls-creds': '', 'tls-authz': '' };
  return 'hostname' in tls ? { 'tls-creds': tls.creds, 'tls-hostname': tls.hostname } : { 'tls-creds': tls.creds, 'tls-authz': tls.authz };
}

/** Is a move between two hosts unencrypted? Only when both allow it (HostSettings.allowInsecureMigration). */
export const movesInPlain = (sourceAllows: boolean, destinationAllows: boolean): boolean => sourceAllows && destinationAllows;
