/**
 * `ferry cluster leave H` on one agent (DELETE /v1/cluster/members/H): takes host H out of the
 * cluster for good, as Proxmox's `pvecm delnode` or a failover cluster's "Evict node" do.
 *
 * Asked of H itself, H must be drained and run nothing (HOST_NOT_DRAINED, HOST_NOT_EMPTY): it
 * decides once read-only, so a refusal leaves its part in the cluster untouched. Then it stops
 * ticking (no reconcile, no campaign; its lease lives, fence checks and watchdog feeds go on),
 * forgets the cluster in its SQLite (an agent that crashes from here on restarts standalone, and a
 * member removes its records once its lease has expired), reads etcd and decides again, writes the
 * change in one guarded transaction, checks once more that nothing came to it, revokes its lease
 * (its member key, any manager key and migration slots go with it) and forgets the cluster: it is
 * standalone again, keeps its maintenance state and does not rejoin on restart. Any refusal or
 * failure on the way puts the membership back and the node ticks again.
 * Asked of another member for an H without a lease (powered off for good), that member writes the
 * same change, guarded also by H's member key still being absent.
 *
 * The change: H's drain record goes; each HA record whose home was H gets its current host as its
 * home (a failback asked for towards H is dropped); for an H gone for good, the HA VMs it owned that
 * nobody restarts are handed over, stopped, to live members (src/cluster/leave.ts). A refusal
 * changes nothing; so does a guard that failed, after which the agent reads and decides again.
 */
import { decideLeave, localRefusal, type ClusterNode, type LeaveFacts } from '../cluster/index.js';
import { FerryError } from '../errors/index.js';
import { parseDrainRecord } from './cluster-drain.js';

/** What a leave did, for the API and `ferry cluster leave --json`. */
export interface LeaveResult {
  cluster: string;
  host: string;
  /** The agent that made the change: `host` itself, or a member removing a host that holds no lease. */
  by: string;
  /** True when the host's own agent left: it revoked its lease and is standalone now. */
  self: boolean;
  /** True when etcd held a drain record of the host, now deleted. */
  drainRemoved: boolean;
  /** HA records that named the host as home (or failback target): their home before and after. */
  homes: { vm: string; from: string; to: string }[];
  /** HA VMs the host, gone for good, owned and nobody restarts: the member that owns them now, stopped. */
  handedOver: { vm: string; from: string; to: string }[];
}

/** The agent's parts a leave uses. */
export interface LeaveParts {
  /** This agent's host name. */
  host: string;
  node: ClusterNode;
  /** This host's VMs that run, or are being started or moved. */
  localVms(): string[];
  /** A drain or resume this host's agent runs now. */
  localRun(): { operation: string; startedAt: string } | null;
  /** This host's maintenance state (`active`, `draining`, `drained`). */
  localState(): string;
  /** The HA VMs defined on this host, running or not. */
  localHa(): string[];
  /** Before the transaction: the host no longer rejoins the cluster at start (undone by `keep()`). */
  detach(): void;
  /** A self-leave that did not happen: the host rejoins at start again. */
  keep(): void;
  /** Stops taking part for good: forgets the cluster and revokes the lease; never throws. */
  forget(): Promise<void>;
}

/** How often a leave reads and decides again when a guard failed (someone wrote in between). */
const ATTEMPTS = 5;

const local = (p: LeaveParts): Pick<LeaveFacts, 'localVms' | 'localRun' | 'localState' | 'localHa'> =>
  ({ localVms: p.localVms(), localRun: p.localRun(), localState: p.localState(), localHa: p.localHa() });

async function facts(p: LeaveParts, host: string): Promise<LeaveFacts> {
  const { store } = p.node;
  const [members, drains, ha] = await Promise.all([store.members(), store.drains(), store.haEntries()]);
  const drain = drains.find((d) => d.host === host);
  const self = host === p.host;
  return {
    cluster: p.node.config.name, host, by: p.host, self, members, ha,
    ...(drain ? { drain: { rev: drain.rev, running: parseDrainRecord(drain.value)?.running ?? null } } : {}),
    ...(self ? local(p) : {}),
  };
}

/** Reads, decides and writes until a transaction's guards hold; throws the refusal's error. */
async function write(p: LeaveParts, host: string): Promise<LeaveResult> {
  const { node } = p;
  const self = host === p.host;
  for (let i = 0; i < ATTEMPTS; i++) {
    const d = decideLeave(await facts(p, host));
    if (!d.ok) throw d.error;
    const { handOver, ...plan } = d.plan;
    if (!(await node.store.removeHost(host, { ...plan, rehome: [...plan.rehome, ...handOver] }, !self))) continue;
    return {
      cluster: node.config.name, host, by: p.host, self, drainRemoved: d.plan.deleteDrainRev !== undefined,
      homes: plan.rehome.map((e) => ({ vm: e.rec.name, from: e.from, to: e.rec.home })),
      handedOver: handOver.map((e) => ({ vm: e.rec.name, from: e.from, to: e.rec.owner })),
    };
  }
  throw new FerryError('CLUSTER_RECORDS_CHANGING', `The cluster's records of ${host} kept changing while the leave wrote them (${ATTEMPTS} tries); try again.`);
}

/** Takes `host` out of the cluster `p.node` belongs to; throws the refusal's error, changing nothing. */
export async function leaveCluster(p: LeaveParts, host: string): Promise<LeaveResult> {
  const { node } = p;
  const self = host === p.host;
  if (!node.renewing()) {
    throw new FerryError('CLUSTER_UNAVAILABLE', `${p.host} cannot renew its cluster lease now, so it cannot tell who is a member; try again when etcd answers.`);
  }
  // Read-only first: a refusal leaves this node as it was (ticking, fencing, feeding the watchdog).
  const first = decideLeave(await facts(p, host));
  if (!first.ok) throw first.error;
  if (!self) return write(p, host);
  await node.pause();
  p.detach();
  try {
    const done = await write(p, host);
    // A drained host admits nothing, but the write took time: anything that came meanwhile keeps it in.
    const late = localRefusal(p.host, node.config.name, local(p));
    if (late) {
      const written = [...(done.drainRemoved ? ['its drain record is gone'] : []), ...(done.homes.length > 0 ? ['HA VMs homed on it have new homes'] : [])];
      throw new FerryError(late.code, `${late.message} It stays in the cluster${written.length > 0 ? `, although etcd was changed already (${written.join('; ')})` : ''}.`);
    }
    await p.forget();
    return done;
  } catch (e) {
    p.keep();
    node.resume();
    throw e;
  }
}
