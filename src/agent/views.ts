import type { VmRecord, VmState } from '../vm/index.js';
import type { HostSettings } from '../migration/index.js';
import type { MaintenanceView } from './maintenance.js';

/** A VM as the API and CLI show it (CLI.md's `vm show` fields, plus a few more). */
export interface VmView {
  name: string; uuid: string; host: string; state: VmState; pid: number | null; memoryMiB: number; cpus: number;
  ip: string; mac: string; cpuModel: string; machine: string; ha: boolean; reason: string | null;
  /** Anti-affinity group, or null. */
  group: string | null;
  disks: { path: string; sizeBytes: number; pool: string }[];
  createdAt: string; updatedAt: string;
  /** True for the destination's copy of a VM being moved here (not yet the VM's home). */
  incoming: boolean;
}

export interface HostView {
  name: string; url: string; version: string; qemuVersion: string; machine: string;
  accel: 'kvm' | 'tcg' | null; accelReason: string | null; state: string;
  memoryMiB: number; freeMemoryMiB: number; cpus: number; vmCount: number; runningVmCount: number;
  /** `error`: why the pool's file system cannot be read now (its sizes are 0 then), else null. */
  pools: { name: string; path: string; sharedId: string | null; freeBytes: number; totalBytes: number; error: string | null }[];
  /** Migration settings (`ferry host settings`). */
  settings: HostSettings;
  /** Maintenance: `state` (active, draining, drained), the run under way, and where each drained VM went. */
  maintenance: MaintenanceView;
  /**
   * The range new VMs get addresses from, and the addresses this host keeps for VMs that moved
   * away (`host`: where the VM went; docs/install.md, "VM addresses"): what `NO_FREE_IP` counts.
   */
  addresses: { rangeStart: string; rangeEnd: string; prefixLength: number; reservations: { vm: string; uuid: string; ip: string; host: string; since: string }[] };
}

export const toVmView = (r: VmRecord, host: string, incoming = false): VmView => ({
  name: r.spec.name, uuid: r.spec.uuid, host, state: r.state, pid: r.pid, memoryMiB: r.spec.memoryMiB, cpus: r.spec.cpus,
  ip: r.spec.ip, mac: r.spec.mac, cpuModel: r.spec.cpuModel, machine: r.spec.machine, ha: r.spec.ha, reason: r.reason, group: r.spec.group ?? null,
  disks: r.spec.disks.map((d) => ({ path: d.path, sizeBytes: d.sizeBytes, pool: d.pool })),
  createdAt: r.createdAt, updatedAt: r.updatedAt, incoming,
});
