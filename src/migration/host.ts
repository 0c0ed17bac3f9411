import type { Logger } from 'pino';
import type { Qmp } from '../qmp/index.js';
import type { Inventory, VmSpec } from '../vm/index.js';
import type { JobStore } from './store.js';
import type { ConvergencePolicy } from './policy.js';
import type { Pools } from '../storage/index.js';
import type { HostSettings } from './host-settings.js';
import type { HostFacts } from './compare.js';
import type { TlsMaterial } from '../security/index.js';

/**
 * What the migration executor needs from its agent. The agent (the composition root) implements
 * it over its inventory, supervisor and QEMU launcher, so this folder never imports the agent.
 */
/** Live-migration slots free on `h` now: maxMigrations − moves running there (as source or destination). */
export const freeMigrationSlots = (h: Pick<MigrationHost, 'settings' | 'jobs'>): number =>
  Math.max(0, h.settings().maxMigrations - h.jobs.countRunning());

export interface MigrationHost {
  /**
   * Cluster mode: a cluster-wide slot for each move this host sends (`maxMigrations` of the
   * cluster), taken before the move starts and released when it ends. Absent when standalone.
   */
  readonly clusterSlots?: { take(job: string): Promise<boolean>; release(job: string): Promise<void> };
  /**
   * Cluster mode: true when this host's fencing watchdog (src/agent/watchdog.ts) powered off the
   * QEMU of `vm` at or after `since` (epoch ms), or was due to. The agent's own fence marks a move
   * first (MigrationService.fencing); a QEMU that died otherwise was not fenced, cut off or not.
   * Absent when standalone.
   */
  watchdogFired?(vm: string, since: number): boolean;
  /**
   * Cluster mode: why this host takes no HA VM now (it has not renewed its cluster lease for half a
   * TTL: cut off from etcd, or etcd lost quorum), else null. Absent when standalone.
   */
  haRefusal?(): string | null;
  /** This host's name. */
  readonly name: string;
  /** The address an incoming QEMU listens on (the host's migration network address). */
  readonly migrationAddress: string;
  /** The bridge VM taps join; the hand-over tunnel joins it too. */
  readonly bridge: string;
  /**
   * Makes this host ACK the destination's segments at once while a move streams to it (a quick-ACK
   * route, src/qemu/quickack.ts); returns the release. Absent in unit tests, which route nothing.
   */
  holdQuickAck?(address: string): Promise<() => Promise<void>>;
  readonly log: Logger;
  /** This host's convergence policy for the moves it sends (each move may allow post-copy or not on top). */
  readonly convergence: ConvergencePolicy;
  readonly jobs: JobStore;
  readonly inv: Inventory;
  /**
   * This host's identity, when it has one: its certificate for peer RPC (mutual TLS) and the folder
   * QEMU's tls-creds-x509 objects read for encrypted migration and NBD streams.
   */
  readonly tls?: { material: TlsMaterial; dir: string };
  /** The peer's API base URL, or UNKNOWN_HOST. */
  peerUrl(host: string): string;
  /** Takes the VM's lock for the whole move; VM_BUSY when another action holds it. Returns the release. */
  lockVm(name: string, what: string): () => void;
  /** The running VM's QMP session, borrowed from the supervisor. */
  qmp(name: string): Qmp | undefined;
  /** Throws INSUFFICIENT_MEMORY unless the host can take a VM of that size now. */
  checkCapacity(memoryMiB: number): void;
  /** Records the VM as `migrating` here and starts QEMU with `-S -incoming defer`; returns its QMP session. */
  startIncoming(spec: VmSpec): Promise<Qmp>;
  /** Destination clean-up: kills the incoming QEMU and removes its tap, run folder and record (and its disk images when they were copies made for the move). */
  discardIncoming(name: string, deleteDisks: boolean): Promise<void>;
  /**
   * Source after success: quits QEMU and removes the tap, run folder and record (and the disk images
   * after a storage move); the VM lives on `destination` now, and its address stays reserved here.
   */
  releaseSource(name: string, deleteDisks: boolean, destination: string): Promise<void>;
  /**
   * Source, when the destination ran the VM after the switch-over and lost it: quits the paused QEMU
   * without running it, keeps the disks and the record, the VM `stopped` with `reason` (start boots it from its disks).
   */
  powerOffKept(name: string, reason: string): Promise<void>;
  /** This host's facts for a compatibility report: free memory, CPUs, machine types, its offer of `cpuModel`, its bridge. */
  hostFacts(cpuModel: string): Promise<HostFacts>;
  /** This host's migration settings now (they may change between moves). */
  settings(): HostSettings;
  /** `draining` or `drained` while the host is in maintenance (it then takes no incoming moves); null in service. */
  inMaintenance?(): string | null;
  /** This host's storage pools. */
  readonly pools: Pools;
  /** Takes one of the host's storage-migration slots (maxStorageMigrations) or throws STORAGE_MIGRATION_LIMIT; returns the release. */
  takeStorageSlot(): () => void;
  /** Calls the test fault hook at a named point (`source:prepare`, `destination:finish`…). */
  fault(point: string): void;
  /** Streams an event to API clients (SSE). */
  emit(type: string, data: Record<string, unknown>): void;
}
