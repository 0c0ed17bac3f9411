/**
 * The ClusterHost the cluster code acts through (src/cluster/node.ts), built from the agent's
 * parts: what the host can offer, its HA VMs, and the actions a failure, a placement or a
 * failback needs. Peers are asked about their leases and their VMs over peer RPC (mutual TLS).
 */
import type { Logger } from 'pino';
import { FENCE_ASK_MS, type ClusterHost, type HostVmList, type PeerLease } from '../cluster/index.js';
import { PeerClient, phaseOf, streamCompleted, type JobRecord, type MigrationService, type JobStore, type MigrationHost } from '../migration/index.js';
import { isActive, type Inventory, type VmRecord } from '../vm/index.js';
import type { AgentConfig } from './config.js';
import { toFerryError } from '../errors/index.js';
import type { VmActions } from './vm-actions.js';
import { WatchdogFeeder } from './watchdog.js';
import type { HaPolicyMemory } from './ha-policies.js';

/** The agent's parts a ClusterHost uses (not the Agent itself, which builds this). */
export interface ClusterHostParts {
  config: AgentConfig;
  log: Logger;
  inv: Inventory;
  vms: VmActions;
  jobs: JobStore;
  migrations: MigrationService;
  capacity(): { memoryMiB: number; cpus: number };
  inMaintenance(): boolean;
  migrationHost(): MigrationHost;
  afterTick?: ClusterHost['afterTick'];
  /** This host's fencing watchdog (the agent also asks it whether it powered off a move's QEMU). */
  watchdog?: WatchdogFeeder;
  /** The policies this host last saw in the records of its HA VMs. */
  policies?: HaPolicyMemory;
}

/** How long a peer is given to list its VMs before a user's `vm start --register` (then it counts as silent). */
const PEER_VMS_TIMEOUT_MS = 5_000;

export function clusterHost(a: ClusterHostParts): ClusterHost {
  const watchdog = a.watchdog ?? new WatchdogFeeder(a.config.stateDir, a.log);
  const haVms = (): VmRecord[] => a.inv.list().filter((v) => v.spec.ha);
  return {
    name: a.config.hostName,
    url: a.config.url,
    log: a.log,
    facts: () => {
      const cap = a.capacity();
      return { memoryMiB: cap.memoryMiB, freeMemoryMiB: a.vms.freeMemoryMiB(), cpus: cap.cpus, maintenance: a.inMaintenance() };
    },
    localHa: () => haVms().map((v) => {
      const job = a.jobs.activeFor(v.spec.name);
      return {
        name: v.spec.name,
        uuid: v.spec.uuid,
        running: isActive(v.state) && v.state !== 'migrating',
        // A VM in a move (either end) or under another action is left to that action.
        busy: v.state === 'migrating' || a.vms.isBusy(v.spec.name) || job !== undefined,
        qemu: isActive(v.state),
        // The destination's VM stays `migrating` until it resumes here (then it is this host's).
        ...(v.state === 'migrating' && job?.role === 'destination' ? { incomingFrom: job.source } : {}),
        ...(job && streamCompleted(job) ? { sentTo: job.destination } : {}),
        ...(job?.role === 'destination' && ranHere(job) && !isActive(v.state) ? { lostArrivalFrom: job.source } : {}),
      };
    }),
    rememberPolicies: (records) => a.policies?.remember(records, new Set(haVms().map((v) => v.spec.uuid))),
    recallPolicies: (uuid) => a.policies?.recall(uuid),
    startHa: (spec) => a.vms.startHa(spec),
    whileIdle: async (name, fn) => {
      let unlock: () => void;
      try { unlock = a.vms.tryLock(name, 'registering it again in the cluster'); } catch { return; }
      try {
        const v = a.inv.find(name);
        if (v && isActive(v.state) && v.state !== 'migrating' && a.jobs.activeFor(name) === undefined) await fn(v.spec);
      } finally {
        unlock();
      }
    },
    arrivedFrom: (name) => {
      const last = a.jobs.list({ vm: name, limit: 1 })[0];
      return last && last.role === 'destination' && ranHere(last) ? last.source : undefined;
    },
    leftTo: (name) => {
      const last = a.jobs.list({ vm: name, limit: 1 })[0];
      return last && last.role === 'source' && last.state.status === 'completed' ? last.destination : undefined;
    },
    fence: async (names) => {
      for (const n of names) {
        // A move of it ends with MIGRATION_FENCED (the destination's rolls back once its QEMU is gone).
        a.migrations.fencing(n);
        await a.vms.fence(n).catch((err: unknown) => a.log.error({ err, vm: n }, 'fencing failed'));
      }
    },
    abandonIncoming: (name, why) => a.migrations.abandonIncoming(name, why),
    abandonOutgoing: (name, why) => a.migrations.giveUpSent(name, why, () => a.vms.fence(name)),
    settleArrival: (name) => a.migrations.settleArrival(name),
    armWatchdog: (deadline, names, renewedAt) => watchdog.arm(deadline, names.flatMap((n) => {
      const v = a.inv.find(n);
      if (v?.pid) return [{ name: n, pid: v.pid, uuid: v.spec.uuid }];
      a.log.warn({ vm: n }, 'an HA VM with a QEMU here has no pid on record: the fencing watchdog cannot cover it');
      return [];
    }), renewedAt),
    lastRenewal: () => watchdog.lastRenewal(),
    forget: (name) => a.vms.discard(name, false),
    define: (spec) => a.vms.startHa(spec, false),
    moveHoldsSlot: (job) => a.migrations.holds(job),
    moveVm: async (name, to) => { await a.migrations.start({ vm: name, destination: to, options: { includeStorage: false } }); },
    ...(a.afterTick ? { afterTick: a.afterTick } : {}),
    peerLeases: (hosts, cluster) => {
      const h = a.migrationHost();
      return Promise.all(hosts.map(async (p): Promise<PeerLease | undefined> => {
        try {
          const r = await new PeerClient(p.url, p.name, FENCE_ASK_MS, h.tls?.material).clusterLease();
          // Only a member of this cluster is a witness; anyone else counts as silent.
          return r.cluster === cluster ? { host: p.name, renewing: r.renewing, ...(typeof r.sinceRenewMs === 'number' ? { sinceRenewMs: r.sinceRenewMs } : {}) } : undefined;
        } catch {
          return undefined;
        }
      }));
    },
    peerVms: (hosts) => {
      const h = a.migrationHost();
      return Promise.all(hosts.map(async (p): Promise<HostVmList> => ({
        host: p.name,
        // The overview lists every VM of its inventory, the incoming end of a move too (the drain summary does not).
        ...await new PeerClient(p.url, p.name, PEER_VMS_TIMEOUT_MS, h.tls?.material).overview<{ vms: { name: string; state: string }[] }>()
          .then((o) => ({ vms: o.vms }), (e: unknown) => { const f = toFerryError(e); return { vms: null, error: `${f.code}: ${f.message}` }; }),
      })));
    },
  };
}

/**
 * A destination's job whose VM ran here: completed, or resumed here and waiting for the source's
 * `confirm`. Either way this host owns the VM (docs/design/0001): the cluster hands it over in etcd
 * at once, not only when the source confirms, which a source cut off after the switch-over never does.
 */
export function ranHere(j: JobRecord): boolean {
  const s = j.state;
  return s.status === 'completed' || (s.status === 'running' && s.direction === 'forward' && phaseOf(s) === 'confirm');
}
