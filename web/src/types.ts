// What the API answers (src/agent/views.ts, src/agent/overview.ts); only the fields the dashboard reads.

export type Role = 'viewer' | 'operator' | 'admin';

export interface ApiErrorBody { error?: { code: string; message: string } }

export interface HostSettings {
  incomingEnabled: boolean; outgoingEnabled: boolean; maxMigrations: number; maxStorageMigrations: number;
  networks: { cidr: string; priority: number }[]; performance: string; maxBandwidthBytesPerSec: number | null;
  downtimeTargetMs: number; allowPostcopy: boolean; allowInsecureMigration: boolean;
}

export interface MaintenanceRun {
  operation: 'drain' | 'resume'; startedAt: string; endedAt: string | null; error: { code: string; message: string } | null;
}

export interface Maintenance {
  state: 'active' | 'draining' | 'drained'; since: string | null; force: boolean;
  running: MaintenanceRun | null; lastRun: MaintenanceRun | null;
  vms: { vm: string; destination: string | null; status: string; error: { code: string; message: string } | null }[];
}

export interface Host {
  name: string; url: string; version: string; qemuVersion: string; machine: string; accel: string | null; state: string;
  memoryMiB: number; freeMemoryMiB: number; cpus: number; vmCount: number; runningVmCount: number;
  /** `error`: why the pool cannot be read now (sizes 0 then). */
  pools: { name: string; path: string; sharedId: string | null; freeBytes: number; totalBytes: number; error?: string | null }[];
  settings: HostSettings;
  /** Maintenance (ferry host drain/resume, docs/maintenance.md). */
  maintenance?: Maintenance;
}

export interface Vm {
  name: string; host: string; state: string; memoryMiB: number; cpus: number; ip: string; incoming: boolean; reason: string | null;
  disks: { path: string; sizeBytes: number; pool: string }[];
}

export interface Progress {
  status: string; percent: number; transferredBytes: number; remainingBytes: number; totalBytes: number;
  throughputBytesPerSec: number; dirtyRateMBps: number; pass: number; expectedDowntimeMs: number | null;
}

export interface Job {
  id: string; vm: string; source: string; destination: string; role: 'source' | 'destination';
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled'; phase: string;
  totalMs: number | null; downtimeMs: number | null; transferredBytes: number | null; diskBytes: number | null;
  /** Guest-perceived downtime, when a probe recorded one. */
  blackoutMs?: number | null;
  postcopy: boolean; encrypted: boolean | null; progress: Progress | null; createdAt: string; endedAt: string | null;
  queuePosition?: number; error?: { code: string; message: string };
}

/** The host's failover cluster (null: standalone); `degraded` says why it places nothing now. */
export interface ClusterBrief { name: string; manager: string | null; members: string[]; degraded: string | null }

export interface HostEntry {
  name: string; url: string; self: boolean; reachable: boolean;
  error?: { code: string; message: string };
  data?: { host: Host; vms: Vm[]; migrations: Job[]; cluster?: ClusterBrief | null };
}

export interface Overview { you: { name: string; role: Role }; hosts: HostEntry[] }

export interface StreamEvent { type: string; at: string; id?: string; [k: string]: unknown }
