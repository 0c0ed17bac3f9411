/**
 * What the cluster needs from its agent (src/cluster never imports the agent), and what a node
 * shows of itself.
 */
import type { Logger } from 'pino';
import type { VmSpec } from '../vm/index.js';
import type { PeerLease } from './fencing.js';
import type { HaRecord, HostVmList, KeptPolicies, MemberRecord } from './model.js';
import type { ClusterStore } from './store.js';

/** A local VM as the cluster cares about it. */
export interface LocalHaVm {
  name: string;
  /** Its uuid: a local VM is the copy of an HA record only when the uuids match. */
  uuid: string;
  /** Runs here, not in a move. */
  running: boolean;
  /** In a move (either end) or under another action: left to that action. */
  busy: boolean;
  /** A QEMU of it lives here, whatever it does: runs, sends a move (source) or waits for one (destination). */
  qemu: boolean;
  /** The source of a move into this host whose VM has not run here yet (its QEMU here is an incoming one). */
  incomingFrom?: string;
  /** The destination of a move from this host whose stream completed: the copy here waits, paused, for its word. */
  sentTo?: string;
  /** The source of a move that ran the VM here, whose QEMU here is gone since (fenced) while its record waits for the source. */
  lostArrivalFrom?: string;
}

/** Which VM: a record belongs to a local VM only when both name and uuid match. */
export type VmId = Pick<VmSpec, 'name' | 'uuid'>;

/** What the cluster needs from its agent (src/cluster never imports the agent). */
export interface ClusterHost {
  name: string;
  url: string;
  log: Logger;
  facts(): Omit<MemberRecord, 'name' | 'url' | 'updatedAt'>;
  /** The host's VMs whose spec says HA. */
  localHa(): LocalHaVm[];
  /** Records the VM here if it is not yet, and starts it. */
  startHa(spec: VmSpec): Promise<void>;
  /** Power-off of these VMs at once (fencing): SIGKILL, recorded as stopped. */
  fence(names: string[]): Promise<void>;
  /**
   * Feeds the fencing watchdog outside the agent (src/agent/watchdog.ts): unless fed again, it
   * powers off `names` at `deadline` (epoch ms). Empty `names` disarms it.
   */
  armWatchdog?(deadline: number, names: string[], renewedAt: number): void;
  /**
   * The last lease renewal the agent before this one saw (epoch ms), as it told the watchdog: a
   * restarted agent counts from it, not from its own start, when it decides to fence.
   */
  lastRenewal?(): number | undefined;
  /**
   * Rolls back this host's half of the move of `name` into it, which has not run the VM here yet
   * (its incoming QEMU killed, what prepare made removed, the job failed with MIGRATION_FENCED).
   */
  abandonIncoming?(name: string, why: string): Promise<void>;
  /**
   * Ends the move of `name` from this host whose stream completed (the destination lost its lease):
   * the paused copy here is powered off, never resumed, and the job fails with MIGRATION_FENCED;
   * unless the destination, asked first, answers that it runs the VM or rolled back without running
   * it (then its word settles the move).
   */
  abandonOutgoing?(name: string, why: string): Promise<void>;
  /** Ends this host's record of a move that ran `name` here and lost it since, as its source ended it (asked over peer RPC). */
  settleArrival?(name: string): Promise<void>;
  /** Forgets a VM here without touching its disks (another host owns it now). */
  forget(name: string): Promise<void>;
  /**
   * Runs `fn` with the spec of VM `name` while holding its lock (a user's stop or delete, a move,
   * wait or are refused meanwhile), if it runs here and is in no move or action; else does nothing.
   */
  whileIdle?(name: string, fn: (spec: VmSpec) => Promise<void>): Promise<void>;
  /**
   * Keeps the policies and home of these records (as a tick read them) for the VMs held here, so
   * that a VM registered again after etcd lost its record gets them back (src/agent/ha-policies.ts).
   */
  rememberPolicies?(records: readonly HaRecord[]): void;
  /** The policies and home this host last saw in the record of the VM of this uuid. */
  recallPolicies?(uuid: string): KeptPolicies | undefined;
  /** Records a VM here, stopped, if it is not yet (an HA VM handed over by a leave); starts nothing. */
  define(spec: VmSpec): Promise<void>;
  /** The source of the last completed move that brought this VM here, if the VM's last move here was one. */
  arrivedFrom(name: string): string | undefined;
  /** The destination of the last completed move that took this VM away, if the VM's last move here was one. */
  leftTo(name: string): string | undefined;
  /**
   * Whether the move `job` is queued or running here (it may hold a cluster-wide slot). Slots held
   * under this host's lease by a move that is neither are released (a release that failed, a take
   * that landed although etcd's answer was lost).
   */
  moveHoldsSlot?(job: string): boolean;
  /** Starts a live move of a local VM to `to` (failback); resolves once it is under way. */
  moveVm(name: string, to: string): Promise<void>;
  /**
   * What each of `hosts` (other members; their URLs from etcd) says about its lease in cluster
   * `cluster`; undefined for one that did not answer or is not a member of that cluster.
   */
  peerLeases(hosts: { name: string; url: string }[], cluster: string): Promise<(PeerLease | undefined)[]>;
  /** What each of `hosts` (other members; their URLs from etcd) says its VMs are, asked over peer RPC (vms null: it did not answer). */
  peerVms(hosts: { name: string; url: string }[]): Promise<HostVmList[]>;
  /**
   * Told at the end of each tick that reached etcd, with whether this host manages the cluster now
   * (the agent follows its drain record and, as manager, runs the drains etcd asks for). It must
   * not wait for long work: a drain runs in the background.
   */
  afterTick?(store: ClusterStore, isManager: boolean): Promise<void>;
}

/** The node's state as `ferry cluster status` and peers see it. */
export interface NodeView {
  name: string;
  renewing: boolean;
  lastRenewAt: string | null;
  manager: string | null;
  isManager: boolean;
  fenced: string[];
  degraded: string | null;
}
