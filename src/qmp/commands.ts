/**
 * The typed QMP command map: for each command QEMU 7.2 offers that Ferry uses, the type of
 * its `arguments` and of its `return`. `args: void` marks a command that takes none.
 * The client sends whatever is named here the same way; nothing is special-cased.
 */
import type { QmpEmpty } from './qapi-common.js';
import type {
  BlockdevMirrorArgs, BlockdevOptions, BlockDeviceInfo, BlockExportOptions, BlockInfo,
  BlockJobInfo, NbdServerStartArgs, YankInstance,
} from './qapi-block.js';
import type {
  AnnounceParameters, MigrateArgs, MigrateSetParameters, MigrationCapabilityStatus,
  MigrationInfo, MigrationParameters, MigrationStatus,
} from './qapi-migration.js';
import type {
  CpuDefinitionInfo, CpuInfoFast, CpuModelExpansionType, CpuModelInfo, KvmInfo, MachineInfo,
  Netdev, ObjectOptions, StatusInfo, VersionInfo,
} from './qapi-machine.js';

/** One entry of the map. */
interface Cmd<A, R> {
  args: A;
  ret: R;
}

/** QMP commands Ferry may send, keyed by their QMP name. */
export interface QmpCommands {
  // Session and run state
  qmp_capabilities: Cmd<{ enable?: 'oob'[] }, QmpEmpty>;
  'query-status': Cmd<void, StatusInfo>;
  'query-version': Cmd<void, VersionInfo>;
  /** `name` is absent when QEMU was started without `-name`. */
  'query-name': Cmd<void, { name?: string }>;
  /** All zeroes when QEMU was started without `-uuid`. */
  'query-uuid': Cmd<void, { UUID: string }>;
  'query-kvm': Cmd<void, KvmInfo>;
  cont: Cmd<void, QmpEmpty>;
  stop: Cmd<void, QmpEmpty>;
  system_powerdown: Cmd<void, QmpEmpty>;
  system_reset: Cmd<void, QmpEmpty>;
  /** QEMU answers after it emitted SHUTDOWN, then drops the connection. */
  quit: Cmd<void, QmpEmpty>;
  'human-monitor-command': Cmd<{ 'command-line': string; 'cpu-index'?: number }, string>;

  // Migration
  'query-migrate': Cmd<void, MigrationInfo>;
  migrate: Cmd<MigrateArgs, QmpEmpty>;
  /** For a destination started with `-incoming defer`. */
  'migrate-incoming': Cmd<{ uri: string }, QmpEmpty>;
  migrate_cancel: Cmd<void, QmpEmpty>;
  /** Leaves a pause (`pre-switchover` with pause-before-switchover); `state` names it. */
  'migrate-continue': Cmd<{ state: MigrationStatus }, QmpEmpty>;
  /** Switches a running migration to post-copy (needs the postcopy-ram capability on both ends). */
  'migrate-start-postcopy': Cmd<void, QmpEmpty>;
  'migrate-set-capabilities': Cmd<{ capabilities: MigrationCapabilityStatus[] }, QmpEmpty>;
  'migrate-set-parameters': Cmd<MigrateSetParameters, QmpEmpty>;
  'query-migrate-capabilities': Cmd<void, MigrationCapabilityStatus[]>;
  'query-migrate-parameters': Cmd<void, MigrationParameters>;
  'announce-self': Cmd<AnnounceParameters, QmpEmpty>;

  // CPUs and machine
  'query-cpus-fast': Cmd<void, CpuInfoFast[]>;
  'query-cpu-definitions': Cmd<void, CpuDefinitionInfo[]>;
  'query-cpu-model-expansion': Cmd<{ type: CpuModelExpansionType; model: CpuModelInfo }, { model: CpuModelInfo }>;
  'query-machines': Cmd<void, MachineInfo[]>;

  // Block layer, jobs and exports
  'query-block': Cmd<void, BlockInfo[]>;
  /** `flat: true` lists each node once instead of nesting backing images. */
  'query-named-block-nodes': Cmd<{ flat?: boolean }, BlockDeviceInfo[]>;
  'blockdev-add': Cmd<BlockdevOptions, QmpEmpty>;
  'blockdev-del': Cmd<{ 'node-name': string }, QmpEmpty>;
  'blockdev-mirror': Cmd<BlockdevMirrorArgs, QmpEmpty>;
  /** On a READY mirror without `force`, cancel completes the copy without pivoting. */
  'block-job-cancel': Cmd<{ device: string; force?: boolean }, QmpEmpty>;
  'block-job-complete': Cmd<{ device: string }, QmpEmpty>;
  'query-block-jobs': Cmd<void, BlockJobInfo[]>;
  'job-dismiss': Cmd<{ id: string }, QmpEmpty>;
  'block-export-add': Cmd<BlockExportOptions, QmpEmpty>;
  'block-export-del': Cmd<{ id: string; mode?: 'safe' | 'hard' }, QmpEmpty>;
  'nbd-server-start': Cmd<NbdServerStartArgs, QmpEmpty>;
  'nbd-server-stop': Cmd<void, QmpEmpty>;
  /** Shuts the connections of the given instances at once, failing their pending I/O (QEMU 6.0+). */
  yank: Cmd<{ instances: YankInstance[] }, QmpEmpty>;

  // Objects, QOM and network
  'object-add': Cmd<ObjectOptions, QmpEmpty>;
  'object-del': Cmd<{ id: string }, QmpEmpty>;
  /** The property's value, whatever its QOM type. */
  'qom-get': Cmd<{ path: string; property: string }, unknown>;
  netdev_add: Cmd<Netdev, QmpEmpty>;
  netdev_del: Cmd<{ id: string }, QmpEmpty>;
}

/** A command name from the map. */
export type QmpCommandName = keyof QmpCommands;

/** The `arguments` type of a command (`void` when it takes none). */
export type QmpArgs<K extends QmpCommandName> = QmpCommands[K]['args'];

/** The `return` type of a command. */
export type QmpReturn<K extends QmpCommandName> = QmpCommands[K]['ret'];
