/**
 * Migration types from QEMU 7.2's QAPI schema (qapi/migration.json), checked against
 * `query-qmp-schema`. Fields that arrived after 7.2 (for example `vcpu-dirty-limit`) are
 * deliberately absent.
 */
import type { SocketAddress, StrOrNull } from './qapi-common.js';

/** QAPI `MigrationStatus`: the states of an outgoing or incoming migration. */
export type MigrationStatus =
  | 'none' | 'setup' | 'cancelling' | 'cancelled' | 'active' | 'postcopy-active'
  | 'postcopy-paused' | 'postcopy-recover' | 'completed' | 'failed' | 'colo'
  | 'pre-switchover' | 'device' | 'wait-unplug';

/** QAPI `MigrationStats`: RAM (and, with the `block` capability, disk) progress. */
export interface MigrationStats {
  /** Bytes sent so far. */
  transferred: number;
  /** Bytes still to send in this pass. */
  remaining: number;
  total: number;
  /** Pages that were all zeroes (sent as a marker only). */
  duplicate: number;
  skipped: number;
  normal: number;
  'normal-bytes': number;
  /** Pages dirtied per second by the guest; 0 until the first pass is measured. */
  'dirty-pages-rate': number;
  /** Throughput in megabits per second. */
  mbps: number;
  /** How many times the dirty bitmap was synchronised (a new pass begins each time). */
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'multifd-bytes': number;
  'pages-per-second': number;
  'precopy-bytes': number;
  'downtime-bytes': number;
  'postcopy-bytes': number;
  'dirty-sync-missed-zero-copy': number;
}

/** QAPI `XBZRLECacheStats`. */
export interface XBZRLECacheStats {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  'encoding-rate': number;
  overflow: number;
}

/** QAPI `CompressionStats`. */
export interface CompressionStats {
  pages: number;
  busy: number;
  'busy-rate': number;
  'compressed-size': number;
  'compression-rate': number;
}

/**
 * QAPI `MigrationInfo`, the return of query-migrate. Every member is optional: QEMU leaves
 * out what does not apply to the current status (no `ram` before `setup`, no
 * `expected-downtime` once completed, `downtime` only when completed).
 */
export interface MigrationInfo {
  status?: MigrationStatus;
  ram?: MigrationStats;
  disk?: MigrationStats;
  vfio?: { transferred: number };
  'xbzrle-cache'?: XBZRLECacheStats;
  /** Milliseconds since the migration started (or total once completed). */
  'total-time'?: number;
  /** Milliseconds QEMU predicts the final stop-and-copy would take now. */
  'expected-downtime'?: number;
  /** Milliseconds the guest was actually paused; present once completed. */
  downtime?: number;
  'setup-time'?: number;
  /** Percentage of vCPU time taken away by auto-converge. */
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
  /** Why migration is blocked right now, when it is (for example a device without migration support). */
  'blocked-reasons'?: string[];
  'postcopy-blocktime'?: number;
  'postcopy-vcpu-blocktime'?: number[];
  compression?: CompressionStats;
  /** Where an incoming migration listens. */
  'socket-address'?: SocketAddress[];
}

/** QAPI `MigrationCapability`: every name QEMU 7.2 accepts. */
export type MigrationCapability =
  | 'xbzrle' | 'rdma-pin-all' | 'auto-converge' | 'zero-blocks' | 'compress' | 'events'
  | 'postcopy-ram' | 'x-colo' | 'release-ram' | 'block' | 'return-path'
  | 'pause-before-switchover' | 'multifd' | 'dirty-bitmaps' | 'postcopy-blocktime'
  | 'late-block-activate' | 'x-ignore-shared' | 'validate-uuid' | 'background-snapshot'
  | 'zero-copy-send' | 'postcopy-preempt';

/** QAPI `MigrationCapabilityStatus`. */
export interface MigrationCapabilityStatus {
  capability: MigrationCapability;
  state: boolean;
}

/** QAPI `MultiFDCompression`. */
export type MultiFDCompression = 'none' | 'zlib' | 'zstd';

/** QAPI `BitmapMigrationBitmapAlias`. */
export interface BitmapMigrationBitmapAlias {
  name: string;
  alias: string;
  transform?: { persistent?: boolean };
}

/** QAPI `BitmapMigrationNodeAlias`. */
export interface BitmapMigrationNodeAlias {
  'node-name': string;
  alias: string;
  bitmaps: BitmapMigrationBitmapAlias[];
}

/**
 * The parameters common to QAPI `MigrationParameters` (what query-migrate-parameters
 * returns) and `MigrateSetParameters` (what migrate-set-parameters takes). Units are QEMU's:
 * `max-bandwidth` in bytes per second, `downtime-limit` in milliseconds.
 */
interface MigrationParametersCommon {
  'announce-initial'?: number;
  'announce-max'?: number;
  'announce-rounds'?: number;
  'announce-step'?: number;
  'compress-level'?: number;
  'compress-threads'?: number;
  'compress-wait-thread'?: boolean;
  'decompress-threads'?: number;
  'throttle-trigger-threshold'?: number;
  'cpu-throttle-initial'?: number;
  'cpu-throttle-increment'?: number;
  'cpu-throttle-tailslow'?: boolean;
  /** Bytes per second. */
  'max-bandwidth'?: number;
  /** Milliseconds of pause QEMU may take for the final stop-and-copy. */
  'downtime-limit'?: number;
  'x-checkpoint-delay'?: number;
  'block-incremental'?: boolean;
  'multifd-channels'?: number;
  'xbzrle-cache-size'?: number;
  'max-postcopy-bandwidth'?: number;
  'max-cpu-throttle'?: number;
  'multifd-compression'?: MultiFDCompression;
  'multifd-zlib-level'?: number;
  'multifd-zstd-level'?: number;
  'block-bitmap-mapping'?: BitmapMigrationNodeAlias[];
}

/** QAPI `MigrationParameters`: an unset TLS string reads back as `""`, not absent. */
export interface MigrationParameters extends MigrationParametersCommon {
  'tls-creds'?: string;
  'tls-hostname'?: string;
  'tls-authz'?: string;
}

/** QAPI `MigrateSetParameters`: a TLS string set to `null` (or `""`) turns TLS off again. */
export interface MigrateSetParameters extends MigrationParametersCommon {
  'tls-creds'?: StrOrNull;
  'tls-hostname'?: StrOrNull;
  'tls-authz'?: StrOrNull;
}

/** Arguments of `migrate` in 7.2: a URI only (the `channels` form came later). */
export interface MigrateArgs {
  /** `tcp:HOST:PORT`, `unix:PATH`, `exec:CMD`, `fd:NAME` or `rdma:HOST:PORT`. */
  uri: string;
  /** Deprecated block migration; Ferry mirrors disks with blockdev-mirror instead. */
  blk?: boolean;
  inc?: boolean;
  detach?: boolean;
  /** Resume a paused post-copy migration. */
  resume?: boolean;
}

/** QAPI `AnnounceParameters`, the arguments of announce-self (all four timings are required). */
export interface AnnounceParameters {
  /** Milliseconds before the first announcement. */
  initial: number;
  /** Longest gap between announcements, in milliseconds. */
  max: number;
  rounds: number;
  /** Growth of the gap per round, in milliseconds. */
  step: number;
  /** Interface (netdev) names to announce; all when absent. */
  interfaces?: string[];
  /** Names a timer so a later announce-self with the same id replaces it. */
  id?: string;
}
