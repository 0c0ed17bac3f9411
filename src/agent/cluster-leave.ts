/**
 * `ferry cluster leave H` on one agent (DELETE /v1/cluster/members/H): takes host H out of the
 * cluster for good, as Proxmox's `pvecm delnode` or a failover cluster's "Evict node" do.
 *
 * Asked of H itself, H stops taking part first (no tick, no campaign; its lease still lives), then
 * reads etcd and decides (src/cluster/leave.ts), writes the change in one guarded transaction,
 * revokes its lease (its member key, any manager key and migration slots go with it) and forgets
 * the cluster: it is standalone again, keeps its maintenance state and does not rejoin on restart.
 * Asked of another member for an H without a lease (powered off for good), that member writes the
 * same change, guarded also by H's member key still being absent.
 *
 * The change: H's drain record goes; each HA record whose home was H gets its current host as its
 * home (a failback asked for towards H is dropped). A refusal changes nothing; so does a guard that
 * failed, after which the agent reads and decides again.
 */
import { decideLeave, type ClusterNode, type LeaveFacts } from '../cluster/index.js';
import { FerryError } from '../errors/index.js';

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
  /** Stops taking part for good: forgets the cluster and revokes the lease; never throws. */
  forget(): Promise<void>;
}

/** How often a leave reads and decides again when a guard failed (someone wrote in between). */
const ATTEMPTS = 5;

/** The run a drain record asks for (the agent owns the record's shape, cluster-drain.ts); null when none or unreadable. */
function running(value: string): { operation: string; startedAt: string } | null {
  try {
    return (JSON.parse(value) as { running?: { operation: string; startedAt: string } | null }).running ?? null;
  } catch {
    return null;
  }
}

async function facts(p: LeaveParts, host: string): Promise<LeaveFacts> {
  const { store } = p.node;
  const [members, drains, ha] = await Promise.all([store.members(), store.drains(), store.haEntries()]);
  const drain = drains.find((d) => d.host === host);
  const self = host === p.host;
  return {
    cluster: p.node.config.name, host, self, members: members.map((m) => m.name), ha,
    ...(drain ? { drain: { rev: drain.rev, running: running(drain.value) } } : {}),
    ...(self ? { localVms: p.localVms(), localRun: p.localRun() } : {}),
  };
}

/** Takes `host` out of the cluster `p.node` belongs to; throws the refusal's error, changing nothing. */
export async function leaveCluster(p: LeaveParts, host: string): Promise<LeaveResult> {
  const { node } = p;
  const self = host === p.host;
  if (!node.renewing()) {
    throw new FerryError('CLUSTER_UNAVAILABLE', `${p.host} cannot renew its cluster lease now, so it cannot tell who is a member; try again when etcd answers.`);
  }
  if (self) await node.pause();
  let done: LeaveResult | undefined;
  try {
    for (let i = 0; i < ATTEMPTS && !done; i++) {
      const d = decideLeave(await facts(p, host));
      if (!d.ok) throw d.error;
      if (!(await node.store.removeHost(host, d.plan, !self))) continue;
      done = {
        cluster: node.config.name, host, by: p.host, self, drainRemoved: d.plan.deleteDrainRev !== undefined,
        homes: d.plan.rehome.map((e) => ({ vm: e.rec.name, from: e.from, to: e.rec.home })),
      };
    }
  } catch (e) {
    if (self) node.start();
    throw e;
  }
  if (!done) {
    if (self) node.start();
    throw new FerryError('VM_BUSY', `The cluster's records of ${host} kept changing while the leave wrote them; try again.`);
  }
  if (self) await p.forget();
  return done;
}
