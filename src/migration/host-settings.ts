/**
 * A host's live-migration settings (Hyper-V's "Live Migrations" host settings, issue 5): whether
 * moves may come in and go out, how many run at once, which networks carry them, the performance
 * option, a bandwidth cap, the downtime target and whether post-copy is allowed. Persisted by the
 * agent (`ferry host settings`), read by the migration executor through MigrationHost.settings().
 */
import { FerryError } from '../errors/index.js';
import type { MoveOptions } from './job.js';

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
  /**
   * May moves to or from this host travel unencrypted (plain TCP for memory and NBD)? A move is
   * unencrypted only when both of its hosts allow it (docs/security.md).
   */
  allowInsecureMigration: boolean;
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
  allowInsecureMigration: false,
});

/**
 * Options that carry memory over multifd channels. QEMU 7.2 accepts `multifd` and `postcopy-ram`
 * together but its post-copy cannot run over multifd channels, and 10.0.2 refuses the pair ("Postcopy
 * is not yet compatible with multifd", tried here), so a
 * move that may switch to post-copy uses one TCP stream (see {@link resolveMoveOptions}).
 */
export const usesMultifd = (p: PerformanceOption): boolean => p !== 'tcp';

/**
 * Throws MIGRATION_DISABLED when this host's settings turn off moves in `direction`: the source
 * checks `outgoing` before it records a job, the destination `incoming` in prepare.
 */
export function checkMigrationEnabled(s: HostSettings, host: string, direction: 'incoming' | 'outgoing'): void {
  if (direction === 'outgoing' && !s.outgoingEnabled) {
    throw new FerryError('MIGRATION_DISABLED', `Host ${host} does not allow outgoing live migrations (ferry host settings ${host} --outgoing on).`);
  }
  if (direction === 'incoming' && !s.incomingEnabled) {
    throw new FerryError('MIGRATION_DISABLED', `Host ${host} does not accept incoming live migrations (ferry host settings ${host} --incoming on).`);
  }
}

/**
 * A move's options as the source fixes them when it records the job, so both ends use the same
 * choices even if the settings change meanwhile: post-copy as the move asked, else as the host
 * allows; the host's performance option (tcp when the move may switch to post-copy over a
 * multifd option); the smaller of the move's and the host's bandwidth caps.
 */
export function resolveMoveOptions(opts: MoveOptions, s: HostSettings): MoveOptions {
  const allowPostcopy = opts.allowPostcopy ?? s.allowPostcopy;
  const caps = [opts.maxBandwidthBytesPerSec, s.maxBandwidthBytesPerSec ?? undefined].filter((x): x is number => x !== undefined);
  return {
    ...opts,
    allowPostcopy,
    performance: allowPostcopy && usesMultifd(s.performance) ? 'tcp' : s.performance,
    ...(caps.length > 0 ? { maxBandwidthBytesPerSec: Math.min(...caps) } : {}),
  };
}
