import type { Agent } from './agent.js';
import type { HostView, VmView } from './views.js';
import { PeerClient, summarize, type JobRecord, type JobSummary, type ProgressView } from '../migration/index.js';
import { toFerryError } from '../errors/index.js';

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

/** One host's state as the dashboard shows it: the host, its VMs and its recent jobs. */
export interface HostOverview { host: HostView; vms: VmView[]; migrations: JobView[] }

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

/** This host's overview (what GET /v1/peer/overview answers a peer). */
export function hostOverview(agent: Agent): HostOverview {
  const m = agent.migrations;
  return {
    host: agent.hostView(),
    vms: agent.inv.list().map((r) => agent.vmView(r)),
    migrations: agent.jobs.list({ limit: OVERVIEW_JOBS }).map((j) => jobView(j, m.queuePosition(j.id))),
  };
}

/**
 * This host and every peer of its config, each peer read over peer RPC (mutual TLS, the host's
 * certificate) in parallel. A peer that does not answer within `timeoutMs` is listed unreachable
 * with the error, so one host down never blanks the dashboard.
 */
export async function contextOverview(agent: Agent, timeoutMs = 4_000): Promise<OverviewEntry[]> {
  const h = agent.migrationHost();
  const self: OverviewEntry = { name: agent.config.hostName, url: agent.config.url, self: true, reachable: true, data: hostOverview(agent) };
  const peers = await Promise.all(agent.config.peers.map(async (p): Promise<OverviewEntry> => {
    try {
      const data = await new PeerClient(p.url, p.name, timeoutMs, h.tls?.material).overview<HostOverview>();
      return { name: p.name, url: p.url, self: false, reachable: true, data };
    } catch (e) {
      const fe = toFerryError(e);
      return { name: p.name, url: p.url, self: false, reachable: false, error: { code: fe.code, message: fe.message } };
    }
  }));
  return [self, ...peers];
}
