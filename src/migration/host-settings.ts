/**
 * A host's live-migration settings (Hyper-V's "Live Migrations" host settings, issue 5): whether
 * moves may come in and go out, how many run at once, which networks carry them, the performance
 * option, a bandwidth cap, the downtime target and whether post-copy is allowed. Persisted by the
 * agent (`ferry host settings`), read by the migration executor through MigrationHost.settings().
 */

/** How memory travels: one TCP stream, multifd with zstd compression, or multifd over several channels without compression. */
export type PerformanceOption = 'tcp' | 'compression' | 'multichannel';
export const PERFORMANCE_OPTIONS: readonly PerformanceOption[] = ['tcp', 'compression', 'multichannel'];

/** A network moves may use; the lowest `priority` both hosts have an address in wins. */
export interface MigrationNetwork { cidr: string; priority: number }

export interface HostSettings {
  /** May moves come to this host? */
  incomingEnabled: boolean;
  /** May moves leave this host? */
  outgoingEnabled: boolean;
  /** Live moves running at once on this host, as source or destination; more wait in a queue. */
  maxMigrations: number;
  /** Disk copies running at once (storage moves here, moves that carry disks). */
  maxStorageMigrations: number;
  /** Networks for migration traffic, by priority; empty means any network the hosts share. */
  networks: MigrationNetwork[];
  performance: PerformanceOption;
  /** Cap on one move's migration stream, bytes per second; null: no cap. */
  maxBandwidthBytesPerSec: number | null;
  /** The downtime limit a move starts with, ms (the convergence policy raises it in steps). */
  downtimeTargetMs: number;
  /** May moves from this host switch to post-copy when they do not converge? */
  allowPostcopy: boolean;
}

export const DEFAULT_HOST_SETTINGS: Readonly<HostSettings> = Object.freeze({
  incomingEnabled: true,
  outgoingEnabled: true,
  maxMigrations: 2,
  maxStorageMigrations: 2,
  networks: [],
  performance: 'tcp',
  maxBandwidthBytesPerSec: null,
  downtimeTargetMs: 50,
  allowPostcopy: false,
});
