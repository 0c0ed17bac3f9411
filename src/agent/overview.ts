import type { Agent } from './agent.js';
import type { HostView, VmView } from './views.js';
import { PeerClient, summarize, type JobRecord, type JobSummary, type ProgressView } from '../migration/index.js';
import { FerryError, toFerryError } from '../errors/index.js';

/** A migration job as the API shows it (GET /v1/migrations). */
export type JobView = JobSummary & {
  role: JobRecord['role']; progress: ProgressView | null; createdAt: string; endedAt: string | null;
  performance: string; maxBandwidthBytesPerSec: number | null; queuePosition?: number;
};

/** A job record as the API shows it, with its place in the queue when it waits. */
export const jobView = (j: JobRecord, queuePosition: number | null = null): JobView => ({
  ...summarize(j), role: j.role, progress: j.progress, createdAt: j.createdAt, endedAt: j.endedAt,
  performance: j.options.performance ?? 'tcp', maxBandwidthBytesPerSec: j.options.maxBandwidthBytesPerSec ?? null,
  ...(queuePosition !== null ? { queuePosition } : {}),
});

/** The host's failover cluster as the dashboard shows it (null: standalone). */
export interface ClusterBrief { name: string; manager: string | null; members: string[]; degraded: string | null }

/** One host's state as the dashboard shows it: the host, its VMs, its recent jobs, its cluster. */
export interface HostOverview { host: HostView; vms: VmView[]; migrations: JobView[]; cluster: ClusterBrief | null }

/** A host of the context in an overview: its data, or why it could not be read. */
export interface OverviewEntry {
  name: string; url: string;
  /** The host that answered the request. */
  self: boolean;
  reachable: boolean;
  error?: { code: string; message: string };
  data?: HostOverview;
}

/** Jobs per host in an overview: enough for the history chart, small enough to poll every 2 s. */
export const OVERVIEW_JOBS = 50;

/**
 * The host's cluster in brief: null when it is standalone; `degraded` says why when etcd does not
 * answer within `timeoutMs` (the overview never waits on etcd longer than that).
 */
async function clusterBrief(agent: Agent, timeoutMs: number): Promise<ClusterBrief | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new FerryError('CLUSTER_UNAVAILABLE', 'The cluster store did not answer in time.')), timeoutMs); });
  try {
    const s = await Promise.race([agent.cluster.status(), late]);
    return { name: s.name, manager: s.manager, members: s.members.map((x) => x.name).sort(), degraded: s.degraded };
  } catch (e) {
    const fe = toFerryError(e);
    if (fe.code === 'NOT_IN_CLUSTER') return null;
    return { name: '', manager: null, members: [], degraded: `${fe.code}: ${fe.message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** This host's overview (what GET /v1/peer/overview answers a peer). */
export async function hostOverview(agent: Agent): Promise<HostOverview> {
  const m = agent.migrations;
  return {
    host: agent.hostView(),
    vms: agent.inv.list().map((r) => agent.vmView(r)),
    migrations: agent.jobs.list({ limit: OVERVIEW_JOBS }).map((j) => jobView(j, m.queuePosition(j.id))),
    cluster: await clusterBrief(agent, 2_000),
  };
}

/**
 * This host and every peer of its config, each peer read over peer RPC (mutual TLS, the host's
 * certificate) in parallel. A peer that does not answer within `timeoutMs` is listed unreachable
 * with the error, so one host down never blanks the dashboard.
 */
export async function contextOverview(agent: Agent, timeoutMs = 4_000): Promise<OverviewEntry[]> {
  const h = agent.migrationHost();
  const peer = async (p: { name: string; url: string }): Promise<OverviewEntry> => {
    try {
      const data = await new PeerClient(p.url, p.name, timeoutMs, h.tls?.material).overview<HostOverview>();
      return { name: p.name, url: p.url, self: false, reachable: true, data };
    } catch (e) {
      const fe = toFerryError(e);
      return { name: p.name, url: p.url, self: false, reachable: false, error: { code: fe.code, message: fe.message } };
    }
  };
  const [data, peers] = await Promise.all([hostOverview(agent), Promise.all(agent.config.peers.map(peer))]);
  return [{ name: agent.config.hostName, url: agent.config.url, self: true, reachable: true, data }, ...peers];
}
