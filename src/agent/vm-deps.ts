// What VM actions (vm-actions.ts) need from the agent, and what they tell the cluster.
import type { Inventory, VmSpec } from '../vm/index.js';
import type { Pools } from '../storage/index.js';
import type { Accel } from '../qemu/index.js';
import type { AgentConfig } from './config.js';
import type { Supervisor } from './supervisor.js';
import type { IpAllocator } from './ip-allocator.js';
import type { Logger } from 'pino';
import type { HaPolicyInput } from '../cluster/index.js';

/** What VM actions need from the agent. */
export interface VmDeps {
  config: AgentConfig;
  inv: Inventory;
  pools: Pools;
  sup: Supervisor;
  log: Logger;
  accel: () => Promise<Accel>;
  capacity: () => { memoryMiB: number; cpus: number };
  machine: string;
  /** The host's QEMU version (`8.2.1`), which decides the RAM trim of VMs that cold-start here. */
  qemuVersion: string;
  /** Throws INVALID_CPU_MODEL unless this host can run the model. */
  checkCpuModel: (model: string) => Promise<void>;
  /** Throws HOST_IN_MAINTENANCE while the host is draining or drained (`what`: the refused action). */
  admit?: (what: string) => void;
  /** Hands out new VMs' addresses and keeps those of VMs that moved away (ip-allocator.ts). */
  ipam: Pick<IpAllocator, 'allocate' | 'left'>;
  /** Cluster mode: keeps etcd's record of HA VMs in step (src/agent/cluster-link.ts); absent when standalone. */
  cluster?: ClusterHooks;
}

/** What VM actions tell the cluster about HA VMs. Each throws (CLUSTER_UNAVAILABLE…) before the action changes anything. */
export interface ClusterHooks {
  /** Throws NOT_IN_CLUSTER or HA_NEEDS_SHARED_STORAGE unless an HA VM can be created here. */
  checkHa(disksShared: boolean): void;
  registered(spec: VmSpec, policy: HaPolicyInput): Promise<void>;
  /** A user's start: claims the HA VM's record for this host first (VM_BAD_STATE when another host owns it, or the cluster has no record of it; CLUSTER_UNAVAILABLE while this host does not renew its lease). */
  claimForStart(spec: VmSpec, register?: boolean): Promise<void>;
  started(spec: VmSpec): Promise<void>;
  stopped(spec: VmSpec): Promise<void>;
  /** The host etcd says owns this HA VM (null: no cluster; undefined: no record of it, or another VM's); throws CLUSTER_UNAVAILABLE when etcd does not answer. */
  owner(spec: VmSpec): Promise<string | null | undefined>;
  deleted(spec: VmSpec): Promise<void>;
}
