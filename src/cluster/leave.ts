/**
 * `ferry cluster leave H`: whether host H may be taken out of its cluster, and what that changes
 * in etcd (a pure function, tested by a table; src/agent/cluster-leave.ts carries it out).
 *
 * Either H's agent asks for itself (`self`: it then stops taking part and forgets the cluster), or
 * another member asks for a host that holds no lease any more (powered off for good). Etcd keeps
 * no list of members: a host is "in the cluster" while it holds a lease, and it leaves traces that
 * outlive the lease: its drain record (`drains/H`) and HA records naming it as `home` (where
 * failback returns a VM) or `moveTo`. Leaving removes those traces. A host gone for good may also
 * still own HA VMs the cluster does not restart (stopped by a user, or `--restart never`): those are
 * handed over, stopped, to a live member, as a failover cluster moves an evicted node's offline
 * roles: placed like a restart ({@link placeRestarts}: outside maintenance, with room for the VM,
 * preferring a member without its anti-affinity group, most free memory), their home first when it
 * qualifies; when none does, {@link fallback}, and the record says why.
 * Leaving never starts or stops a VM.
 */
import { FerryError } from '../errors/index.js';
import type { HaEntry, HaRecord, MemberRecord } from './model.js';
import { groupsOnLive, placeRestarts } from './placement.js';

/** What etcd and the asking agent know when a leave of `host` is decided. */
export interface LeaveFacts {
  cluster: string;
  /** The host to take out. */
  host: string;
  /** The member whose agent decides (`host` itself with `self`); absent: the first other live member. */
  by?: string;
  /** True when `host`'s own agent decides (it then revokes its lease and forgets the cluster). */
  self: boolean;
  /** The hosts that hold a lease now (member keys), as they last described themselves. */
  members: readonly MemberRecord[];
  /** `host`'s drain record, if etcd has one: its revision and the run it asks for (null when none runs). */
  drain?: { rev: string; running: { operation: string; startedAt: string } | null };
  ha: readonly HaEntry[];
  /** With `self`: the VMs that run on the host (or are being started, moved in or out). */
  localVms?: readonly string[];
  /** With `self`: a drain or resume the host's own agent runs now. */
  localRun?: { operation: string; startedAt: string } | null;
  /** With `self`: the host's own maintenance state (`active`, `draining`, `drained`); it must be `drained`. */
  localState?: string;
  /** With `self`: the HA VMs defined on the host, running or not. */
  localHa?: readonly string[];
}

/** What the host's own agent knows of itself when it leaves (LeaveFacts with `self`). */
export type LocalFacts = Pick<LeaveFacts, 'localVms' | 'localRun' | 'localState' | 'localHa'>;

/** The records a leave writes, each at the revision it was read at. */
export interface LeavePlan {
  /** The drain record's revision, when there is one to delete. */
  deleteDrainRev?: string;
  /** HA records that named the host as home (or as failback target), with their new value. */
  rehome: { rec: HaRecord; rev: string; from: string }[];
  /** HA VMs the host (gone for good) owned and nobody restarts: given, stopped, to a live member. */
  handOver: { rec: HaRecord; rev: string; from: string }[];
}

export type LeaveDecision = { ok: true; plan: LeavePlan } | { ok: false; error: FerryError };

const list = (xs: readonly string[]): string => xs.join(', ');

/** A VM the cluster restarts by itself once its owner has no lease. */
const restartable = (r: HaRecord): boolean => r.restart === 'always' && r.state !== 'stopped';

function refuse(error: FerryError): LeaveDecision { return { ok: false, error }; }

/** Why `host`, which holds no lease, still owns HA VMs the cluster is to restart, and what the operator can do. */
function ownedByDead(host: string, waiting: readonly HaRecord[]): string {
  return `${host} still owns HA VMs in etcd: the cluster has not restarted ${list(waiting.map((r) => r.name))} elsewhere yet `
    + '(wait for `ferry cluster status` to show them on another host, or make room for them).';
}

/** The record of a VM handed over, stopped, from `host` (gone for good) to `to`; `why`: why `to` though it does not qualify. */
function handedOver(r: HaRecord, host: string, to: string, why?: string): HaRecord {
  const { moveTo: _m, failbackAt: _f, failedOn: _o, ...rest } = r;
  return {
    ...rest, owner: to, home: r.home === host ? to : r.home, state: 'stopped', handedOverFrom: host,
    note: `handed over, stopped, from ${host}, which left the cluster; start it on ${to} (ferry vm start ${r.name})${why === undefined ? '' : ` (${why})`}`,
  };
}

/**
 * Where a VM that no member qualifies for goes anyway (a stopped VM uses no memory): a member
 * outside maintenance first, where a user can start it once there is room (its home, the member
 * that asks, the one with the most free memory), else its home, the member that asks, the first.
 */
function fallback(r: HaRecord, others: readonly MemberRecord[], by: string | undefined): { to: string; which: string } {
  const open = others.filter((m) => !m.maintenance).sort((a, b) => b.freeMemoryMiB - a.freeMemoryMiB || a.name.localeCompare(b.name));
  const pick = (ms: readonly MemberRecord[], firstIs: string): { to: string; which: string } | undefined => {
    if (ms.some((m) => m.name === r.home)) return { to: r.home, which: 'its home' };
    if (by !== undefined && ms.some((m) => m.name === by)) return { to: by, which: 'the member that asked' };
    const first = ms[0];
    return first ? { to: first.name, which: firstIs } : undefined;
  };
  return pick(open, 'the member with the most free memory') ?? pick(others, 'the first live member') ?? { to: r.home, which: 'its home' };
}

/** Where each HA VM `host` owned goes (see the file's comment), with the record it gets there. */
function handOvers(f: LeaveFacts, records: readonly HaRecord[], owned: readonly HaEntry[], others: readonly MemberRecord[]): LeavePlan['handOver'] {
  const alive = new Set(others.map((m) => m.name));
  // Room is counted across this leave's VMs only: a batch decided again after a failed guard
  // counts the VMs already handed over as the members report them, not as placed here.
  const placed = new Map(placeRestarts(owned.map((e) => e.rec), others, groupsOnLive(records, alive), undefined, (r) => r.home)
    .map((p) => [p.vm, p]));
  return owned.map(({ rec, rev }) => {
    const p = placed.get(rec.name);
    if (p && p.to !== null) return { rec: handedOver(rec, f.host, p.to), rev, from: f.host };
    const { to, which } = fallback(rec, others, f.by);
    return { rec: handedOver(rec, f.host, to, `${p?.reason ?? 'not placed'}, so it went to ${which}`), rev, from: f.host };
  });
}

/**
 * Why the host's own agent may not leave now, from what it knows of itself alone (null: nothing
 * in the way): not drained (HOST_NOT_DRAINED; only a drained host refuses new VMs, starts and
 * incoming moves, and the manager places nothing on it), or VMs run on it or HA VMs are defined on
 * it (HOST_NOT_EMPTY), beside the HA VMs etcd says it owns (`owned`). decideLeave() asks it, and
 * the agent asks it again after its transaction, before it forgets the cluster.
 */
export function localRefusal(host: string, cluster: string, f: LocalFacts, owned: readonly HaRecord[] = []): FerryError | null {
  if (f.localState !== 'drained') {
    return new FerryError('HOST_NOT_DRAINED', `${host} cannot leave the cluster ${cluster}: it is ${f.localState ?? 'in an unknown maintenance state'}, not drained. Drain it first (\`ferry host drain ${host}\`): a drained host takes no new VM, start or incoming move while it leaves.`);
  }
  const vms = f.localVms ?? [];
  const ha = (f.localHa ?? []).filter((n) => !vms.includes(n));
  const what = [
    ...(vms.length > 0 ? [`VMs run on it (${list(vms)})`] : []),
    ...(ha.length > 0 ? [`HA VMs are defined on it (${list(ha)})`] : []),
    ...(owned.length > 0 ? [`it owns HA VMs (${list(owned.map((r) => `${r.name} ${r.state}`))})`] : []),
  ];
  if (what.length === 0) return null;
  return new FerryError('HOST_NOT_EMPTY', `${host} cannot leave the cluster ${cluster}: ${what.join(', and ')}. Drain it first (\`ferry host drain ${host}\`), then delete or move what is left.`);
}

/**
 * Decides a leave. Refusals, in this order, change nothing: `host` unknown to the cluster
 * (NOT_IN_CLUSTER), alive but asked of another host (MEMBER_ALIVE), the only live member
 * (CLUSTER_LAST_MEMBER), a drain or resume of it running (DRAIN_IN_PROGRESS), with `self` the host
 * not drained (HOST_NOT_DRAINED), VMs running on it, HA VMs defined on it or, for a host without a
 * lease, HA VMs it owns that the cluster is still to restart elsewhere (HOST_NOT_EMPTY). A host without a lease need not be drained: its agent runs nothing the
 * cluster could place, start or move onto it (a member key back fails the transaction's guard).
 */
export function decideLeave(f: LeaveFacts): LeaveDecision {
  const { host, cluster } = f;
  const records = f.ha.map((e) => e.rec);
  const named = records.some((r) => r.owner === host || r.home === host || r.moveTo === host);
  const alive = f.members.some((m) => m.name === host);
  if (!f.self && !alive && f.drain === undefined && !named) {
    return refuse(new FerryError('NOT_IN_CLUSTER', `${host} is not a member of the cluster ${cluster}: it holds no lease, and etcd keeps no drain or HA VM of it; there is nothing to remove (it has left already, or never joined).`));
  }
  if (!f.self && alive) {
    return refuse(new FerryError('MEMBER_ALIVE', `${host} still holds its lease in the cluster ${cluster} (its agent runs), so only ${host} itself can leave: ask it (\`ferry cluster leave ${host}\` does when its agent answers), or stop its agent after a drain and try again once its lease has expired.`));
  }
  const others = f.members.filter((m) => m.name !== host);
  if (others.length === 0) {
    return refuse(new FerryError('CLUSTER_LAST_MEMBER', `${host} is the only live member of the cluster ${cluster}: nobody would be left to run its HA VMs or manage it.`));
  }
  const run = f.drain?.running ?? f.localRun ?? null;
  if (run) {
    return refuse(new FerryError('DRAIN_IN_PROGRESS', `A ${run.operation} of ${host} is running (since ${run.startedAt}); wait for it to end, then leave.`));
  }
  const owned = records.filter((r) => r.owner === host);
  if (f.self) {
    const why = localRefusal(host, cluster, f, owned);
    if (why) return refuse(why);
  }
  // Past the self check, `host` holds no lease: what the cluster restarts must be restarted first.
  const waiting = owned.filter(restartable);
  if (waiting.length > 0) return refuse(new FerryError('HOST_NOT_EMPTY', ownedByDead(host, waiting)));
  const handOver = handOvers(f, records, f.ha.filter((e) => e.rec.owner === host), others);
  const rehome = f.ha.filter((e) => e.rec.owner !== host && (e.rec.home === host || e.rec.moveTo === host)).map(({ rec, rev }) => {
    const { moveTo, ...rest } = rec;
    // Its home is where it runs now (failback has nowhere else to go); a failback asked for
    // towards the host that leaves is dropped.
    const keep = moveTo !== undefined && moveTo !== host ? { moveTo } : {};
    return { rec: { ...rest, ...keep, home: rec.home === host ? rec.owner : rec.home }, rev, from: rec.home };
  });
  return { ok: true, plan: { ...(f.drain ? { deleteDrainRev: f.drain.rev } : {}), rehome, handOver } };
}
