/**
 * What a Ferry cluster keeps in etcd, and where. Everything lives under `/ferry/<cluster>/`:
 *
 * | key | value | lease |
 * |---|---|---|
 * | `config` | {@link ClusterConfig}: name, endpoints, lease TTL, fence margin | none |
 * | `members/<host>` | {@link MemberRecord}: URL, capacity, free memory, maintenance | the host's lease |
 * | `manager/…` | election keys (etcd3's Election), the manager's host name | the host's lease |
 * | `ha/<vm>` | {@link HaRecord}: the VM's spec, owner, home, policies, state | none |
 * | `migration-slots/<i>` | the id of a move holding cluster-wide slot i (i < maxMigrations) | the source host's lease |
 * | `drains/<host>` | a drain the manager runs: the host's maintenance state, the run asked for, the ledger (src/agent/cluster-drain.ts) | none |
 *
 * A member key vanishes when its host stops renewing its lease: that is how the cluster learns a
 * host died. An HA record never expires; its `owner` changes only in a transaction that compares
 * the record's mod revision with the one the writer read (see {@link HaStore}).
 */
import { FerryError } from '../errors/index.js';
import type { VmSpec } from '../vm/index.js';

/** The cluster's settings, written once by `ferry cluster create`. */
export interface ClusterConfig {
  name: string;
  /** etcd client URLs. */
  endpoints: string[];
  /** Seconds a host's lease lives without renewal (default 10). */
  leaseTtlSec: number;
  /** Seconds survivors wait past a lease's expiry before restarting its VMs, so the dead host has fenced itself. */
  fenceMarginSec: number;
  /** Live migrations that may run at once in the whole cluster (each also counts against its hosts' own limits). */
  maxMigrations?: number;
  createdAt: string;
}

export const DEFAULT_LEASE_TTL_SEC = 10;
export const DEFAULT_FENCE_MARGIN_SEC = 5;
export const DEFAULT_CLUSTER_MIGRATIONS = 4;

/** What a member publishes about itself, under its lease, every few seconds. */
export interface MemberRecord {
  name: string;
  url: string;
  memoryMiB: number;
  freeMemoryMiB: number;
  cpus: number;
  /** True while the host is draining or drained: the manager places nothing there. */
  maintenance: boolean;
  updatedAt: string;
}

/** What happens to an HA VM whose host died. */
export const RESTART_POLICIES = ['always', 'never'] as const;
export type RestartPolicy = typeof RESTART_POLICIES[number];
/** What happens when the HA VM's home host comes back: nothing, or a live move back at once. */
export const FAILBACK_POLICIES = ['none', 'immediate'] as const;
export type FailbackPolicy = typeof FAILBACK_POLICIES[number];

/**
 * An HA VM as the cluster knows it. `state`: `running` (its owner runs it), `stopped` (by a user:
 * never restarted), `placing` (the manager gave it to `owner`, which has not started it yet),
 * `failed` (no host could take it, or its start failed on `owner`; the manager retries elsewhere).
 */
export interface HaRecord {
  name: string;
  spec: VmSpec;
  owner: string;
  /** The host the VM was created on (or last placed by a user), where failback returns it. */
  home: string;
  priority: number;
  restart: RestartPolicy;
  failback: FailbackPolicy;
  state: 'running' | 'stopped' | 'placing' | 'failed';
  /** Set by the manager for a failback: the owner moves the VM there live, then clears it. */
  moveTo?: string;
  /** When the owner last started a failback move (ms since the epoch); the manager does not ask again for a while. */
  failbackAt?: number;
  /** Why the last placement happened or failed, for `ferry cluster status`. */
  note?: string;
  /** How many times the cluster restarted it after a host failure (or a start that failed). */
  restarts: number;
  /** Hosts where the cluster's last starts of it failed, since it last ran; the manager places it elsewhere. */
  failedOn?: string[];
  /**
   * Set by `ferry cluster leave` of a host gone for good that owned this VM, stopped and not to be
   * restarted by the cluster: the host it names left, and `owner` took the VM over. The owner records
   * the VM locally (stopped, to be started there by a user) and clears this field.
   */
  handedOverFrom?: string;
  updatedAt: string;
}

/** The key that tells VMs apart across hosts: a record is a local VM's only when name and uuid match. */
export const vmKey = (v: Pick<VmSpec, 'name' | 'uuid'>): string => `${v.name}/${v.uuid}`;
/** {@link vmKey} of the VM a record describes. */
export const recordKey = (r: HaRecord): string => vmKey({ name: r.name, uuid: r.spec.uuid });

/** What one host answered about its VMs (`vms` null: it did not answer; `error`: what it said instead, if anything). */
export interface HostVmList { host: string; vms: readonly { name: string; state: string }[] | null; error?: string }

/**
 * Before an HA VM without a record is registered by a user (`vm start NAME --register`, etcd's data
 * lost): etcd cannot say whether another host runs a copy, so each other host is asked. Throws
 * AGENT_UNREACHABLE when one did not answer, VM_BAD_STATE when one has a VM of that name in any
 * state but stopped or failed (also one arriving by a move, and one in a state this release does
 * not know). Used by the agent (owner.ts, every member) and the CLI (every host of its context).
 */
export function checkNoCopyElsewhere(name: string, here: string, answers: readonly HostVmList[]): void {
  const silent = answers.filter((a) => a.vms === null).map((a) => `${a.host}${a.error ? ` (${a.error})` : ''}`);
  if (silent.length > 0) {
    throw new FerryError('AGENT_UNREACHABLE', `${silent.join(', ')} did not answer with its VMs, so nobody can tell that none of them runs a VM named "${name}"; --register waits until they do.`);
  }
  const copies = answers.filter((a) => a.host !== here && (a.vms ?? []).some((v) => v.name === name && v.state !== 'stopped' && v.state !== 'failed'));
  if (copies.length > 0) {
    throw new FerryError('VM_BAD_STATE', `A VM named "${name}" runs on ${copies.map((a) => a.host).join(', ')}; --register would give the cluster a second copy.`);
  }
}

/** The policies a new HA record gets; each defaults as `vm create --ha` does. */
export interface HaPolicyInput { priority?: number; restart?: RestartPolicy; failback?: FailbackPolicy }

/** A new HA record of `spec`, owned by `host` and at home there, running. */
export function newHaRecord(spec: VmSpec, host: string, policy: HaPolicyInput, note?: string): HaRecord {
  return {
    name: spec.name, spec, owner: host, home: host, priority: policy.priority ?? 0, restart: policy.restart ?? 'always',
    failback: policy.failback ?? 'none', state: 'running', restarts: 0, ...(note ? { note } : {}), updatedAt: new Date().toISOString(),
  };
}

/**
 * What a host keeps of an HA VM's record, to register it again as it was after etcd lost it;
 * `asOf` is the kept record's `updatedAt`.
 */
export type KeptPolicies = Pick<HaRecord, 'priority' | 'restart' | 'failback' | 'home'> & { asOf: string };

/** What a host keeps of record `r` (src/agent/ha-policies.ts). */
export const keptPolicies = (r: HaRecord): KeptPolicies => ({ priority: r.priority, restart: r.restart, failback: r.failback, home: r.home, asOf: r.updatedAt });

/**
 * The record of a VM registered again by `host` after its record was lost: with the policies and
 * home `kept` from the last record this host saw of it, else the defaults (at home on `host`).
 */
export function registeredAgain(spec: VmSpec, host: string, kept: KeptPolicies | undefined, note: string): HaRecord {
  if (!kept) return newHaRecord(spec, host, {}, note);
  const { asOf: _a, home, ...policy } = kept;
  return { ...newHaRecord(spec, host, policy, note), home };
}

/** The record with its failed starts forgotten: it ran, or every host may be tried again. */
export function clearFailures(r: HaRecord): HaRecord {
  const { failedOn: _f, ...rest } = r;
  return rest;
}

/** The record after a completed move of the VM from `from` to `to`: owned there, its home, any failback done. */
export function movedTo(r: HaRecord, to: string, from: string): HaRecord {
  const { moveTo: _m, failbackAt: _f, ...rest } = r;
  return { ...rest, owner: to, home: to, state: 'running', note: `moved from ${from}` };
}

/** The record of a VM that runs now: any failed starts are forgotten. */
export function ran(r: HaRecord): HaRecord {
  return { ...clearFailures(r), state: 'running' };
}

/** An HA record with the etcd mod revision it was read at (what a guarded write compares). */
export interface HaEntry { rec: HaRecord; rev: string }

/** The key layout of cluster `name`. */
export function clusterKeys(name: string): {
  root: string; config: string; members: string; member: (h: string) => string; manager: string; ha: string; haVm: (vm: string) => string; slots: string;
  drains: string; drain: (h: string) => string;
} {
  const root = `/ferry/${name}/`;
  return {
    root,
    config: `${root}config`,
    members: `${root}members/`,
    member: (h) => `${root}members/${h}`,
    manager: `${root}manager`,
    ha: `${root}ha/`,
    haVm: (vm) => `${root}ha/${vm}`,
    slots: `${root}migration-slots/`,
    drains: `${root}drains/`,
    drain: (h) => `${root}drains/${h}`,
  };
}
