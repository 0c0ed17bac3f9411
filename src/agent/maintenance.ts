/**
 * Host maintenance as the standalone agent runs it: `ferry host drain` and `ferry host resume`
 * (POST /v1/host/drain, /v1/host/resume) start a run here in the background, so it goes on when
 * the CLI goes away; the state and the ledger of which VM went where live in the agent's SQLite
 * file (src/host/store.ts). The other hosts answer for themselves over peer RPC
 * (GET /v1/peer/host, POST /v1/peer/failback); moves go through this host's migration queue.
 * In a cluster, a drain is recorded in etcd and the manager runs it (cluster-drain.ts); this host
 * keeps a copy of the record, so that it refuses new VMs at once and shows the run as standalone.
 */
import type { Logger } from 'pino';
import { FerryError, isErrorCode, toFerryError, type ErrorCode } from '../errors/index.js';
import {
  drainHost, MaintenanceStore, resumeHost, type DrainDeps, type DrainEntry, type DrainOutcome, type HostVm, type MaintenanceState, type PlacementHost, type ResumeDeps,
} from '../host/index.js';
import {
  compareMove, isTerminal, PeerClient, summarize, PROTOCOL_VERSION, type JobRecord, type MigrationService, type JobStore, type MigrationHost,
} from '../migration/index.js';
import { isActive, type Inventory, type VmState } from '../vm/index.js';
import type { Db } from '../util/index.js';
import { DrainStop } from './drain-stop.js';

/** What one host tells another about itself for a drain's placement (GET /v1/peer/host). */
export interface PeerHostSummary {
  protocol: number;
  host: string;
  maintenance: MaintenanceState;
  memoryMiB: number;
  freeMemoryMiB: number;
  cpus: number;
  /** `moving`: the VM has an outgoing move queued or under way (a cluster manager continuing a drain waits for it). */
  vms: { name: string; state: string; memoryMiB: number; cpus: number; group: string | null; moving?: boolean }[];
}

/** A drain or resume run: what it was, when, and how it ended (null while it runs, and when it went well). */
export interface MaintenanceRun {
  operation: 'drain' | 'resume';
  force?: boolean;
  failback?: boolean;
  startedAt: string;
  endedAt: string | null;
  error: { code: ErrorCode; message: string } | null;
}

/** The host's maintenance as GET /v1/host shows it (`maintenance`). */
export interface MaintenanceView {
  state: MaintenanceState;
  since: string | null;
  force: boolean;
  /** The run under way on this agent, or null. */
  running: MaintenanceRun | null;
  /** The last run that ended since the agent started, or null. */
  lastRun: MaintenanceRun | null;
  /** What became of each VM of the drain (the ledger). */
  vms: DrainEntry[];
}

/**
 * A host's maintenance as etcd keeps it in cluster mode (`drains/<host>`): `running` is the drain
 * the manager is asked to run; `manager` the last manager that took the run up.
 */
export type DrainRecord = MaintenanceView & { host: string; manager?: string };

/** Cluster mode: where a drain is recorded for the manager (cluster-drain.ts). */
export interface MaintenanceCluster {
  /** True while this host is in a cluster. */
  active(): boolean;
  /** Records the drain in etcd (DRAIN_IN_PROGRESS while one runs, CLUSTER_UNAVAILABLE without etcd); resolves with the record written. */
  request(rec: DrainRecord): Promise<DrainRecord>;
  /** Removes this host's drain record before a resume (DRAIN_IN_PROGRESS while the manager runs a drain of it); resolves with the record removed. */
  release(): Promise<DrainRecord | undefined>;
}

/** What the maintenance actions need of the agent. */
export interface MaintenanceDeps {
  db: Db;
  host: string;
  log: Logger;
  inv: Inventory;
  jobs: JobStore;
  migrations: MigrationService;
  migrationHost: () => MigrationHost;
  peers: () => string[];
  capacity: () => { memoryMiB: number; cpus: number };
  usedMemoryMiB: () => number;
  startVm: (name: string) => Promise<unknown>;
  stopVm: (name: string) => Promise<unknown>;
  emit: (type: string, data: Record<string, unknown>) => void;
  /** Cluster mode; absent or inactive on a standalone host. */
  cluster?: MaintenanceCluster;
  /** How long a resume waits for the drain it stops to end (default {@link STOP_DRAIN_MS}). */
  stopDrainMs?: number;
}

const POLL_MS = 1000;
/** How long a resume waits for the drain it stops to end. */
const STOP_DRAIN_MS = 60_000;

/** The agent's drain, resume and maintenance admission. */
export class HostMaintenance {
  readonly store: MaintenanceStore;
  /** What a resume during a drain uses to stop it; the cluster's drain steps on this host consult it too. */
  readonly drainStop: DrainStop;
  private running: MaintenanceRun | null = null;
  private lastRun: MaintenanceRun | null = null;
  /** In a cluster: the runs of this host's drain record in etcd (the manager runs the drain). */
  private remote: Pick<MaintenanceView, 'running' | 'lastRun'> | null = null;

  constructor(private readonly d: MaintenanceDeps) {
    this.store = new MaintenanceStore(d.db);
    this.drainStop = new DrainStop(d.host, d.jobs);
    this.remote = this.store.remoteRuns<Pick<MaintenanceView, 'running' | 'lastRun'>>();
  }

  state(): MaintenanceState { return this.store.get().state; }

  /** Throws HOST_IN_MAINTENANCE while the host is draining or drained; `what` names the refused action. */
  admit(what: string): void {
    const s = this.state();
    if (s !== 'active') {
      throw new FerryError('HOST_IN_MAINTENANCE', `Host ${this.d.host} is ${s} for maintenance and refuses ${what}; \`ferry host resume ${this.d.host}\` ends maintenance.`);
    }
  }

  view(): MaintenanceView {
    const r = this.store.get();
    return {
      state: r.state, since: r.since, force: r.force, running: this.current(),
      lastRun: this.clusterRuns()?.lastRun ?? this.lastRun, vms: this.store.entries(),
    };
  }

  /**
   * Starts a drain (DRAIN_IN_PROGRESS when a run is under way); answers the view with the host
   * already `draining`. Standalone it runs here in the background; in a cluster it is recorded in
   * etcd and the manager runs it.
   */
  async drain(opts: { force: boolean }): Promise<MaintenanceView> {
    if (this.d.cluster?.active()) return this.drainInCluster(this.d.cluster, opts);
    this.begin({ operation: 'drain', force: opts.force }, async () => drainIncomplete(this.d.host, await drainHost(this.drainDeps(), opts)));
    return this.view();
  }

  private async drainInCluster(cluster: MaintenanceCluster, opts: { force: boolean }): Promise<MaintenanceView> {
    this.refuseIfRunning();
    const cur = this.store.get();
    const now = new Date().toISOString();
    const rec = await cluster.request({
      host: this.d.host, state: 'draining', since: cur.state === 'draining' ? cur.since : now, force: opts.force,
      running: { operation: 'drain', force: opts.force, startedAt: now, endedAt: null, error: null },
      lastRun: this.view().lastRun, vms: cur.state === 'active' ? [] : this.store.entries(),
    });
    this.mirror(rec);
    return this.view();
  }

  /**
   * In a cluster, makes this host's copy match its drain record in etcd (the manager writes the
   * ledger as the drain goes); with no record (standalone maintenance, or resumed) the host's own
   * state stands.
   */
  mirror(rec: DrainRecord | undefined): void {
    const before = JSON.stringify(this.view());
    if (rec) {
      const mine = { state: rec.state, since: rec.since, force: rec.force };
      const vms = [...rec.vms].sort((a, b) => a.vm.localeCompare(b.vm));
      if (JSON.stringify([this.store.get(), this.store.entries()]) !== JSON.stringify([mine, vms])) this.store.load(mine, vms);
      this.setRemote({ running: rec.running, lastRun: rec.lastRun });
    } else {
      // The record is gone (a resume): its last run stays this host's last run.
      if (this.remote?.lastRun) this.lastRun = this.remote.lastRun;
      this.setRemote(null);
    }
    if (JSON.stringify(this.view()) !== before) this.changed();
  }

  /** The runs of this host's drain record, while the host is in a cluster (a copy left from before counts for nothing outside one). */
  private clusterRuns(): Pick<MaintenanceView, 'running' | 'lastRun'> | null {
    return this.d.cluster?.active() ? this.remote : null;
  }

  private setRemote(r: Pick<MaintenanceView, 'running' | 'lastRun'> | null): void {
    if (JSON.stringify(r) !== JSON.stringify(this.remote)) this.store.setRemoteRuns(r);
    this.remote = r;
  }

  /**
   * Leaves maintenance at once and, in the background, starts the VMs a forced drain stopped and
   * (with failback) brings moved VMs back. In a cluster the drain record leaves etcd first.
   */
  async resume(opts: { failback: boolean }): Promise<MaintenanceView> {
    await this.stopDrain();
    if (this.d.cluster?.active()) {
      this.refuseIfRunning();
      // The record as etcd last had it: this host's copy may be a tick behind the manager's last writes.
      const last = await this.d.cluster.release();
      if (last) this.mirror(last);
      this.mirror(undefined);
    }
    this.begin({ operation: 'resume', failback: opts.failback }, async () => {
      const out = await resumeHost(this.resumeDeps(), opts);
      if (out.failed.length === 0) return null;
      return new FerryError('FAILBACK_INCOMPLETE', `${this.d.host} is back in service, but ${out.failed.length} VM${out.failed.length === 1 ? '' : 's'} did not come back: ${lines(out.failed)}.`);
    });
    return this.view();
  }

  /**
   * A resume while a drain runs stops the drain first, as resuming a node that drains does in
   * Hyper-V (drain-stop.ts): the drain's moves not yet at their stream's end are cancelled (the VM
   * keeps running here, `blocked` MIGRATION_CANCELLED), one past it completes, and this host refuses
   * the drain's further moves and `--force` stops; the resume goes on once the run has ended (in a
   * cluster: once the manager wrote its end). DRAIN_IN_PROGRESS when it has not ended within a minute.
   */
  private async stopDrain(): Promise<void> {
    const drainRuns = (): boolean => this.current()?.operation === 'drain';
    if (!drainRuns()) return;
    this.d.log.info({ host: this.d.host }, 'resume during a drain: stopping the drain');
    await this.drainStop.stop(drainRuns, (id) => {
      try { this.d.migrations.cancel(id); } catch (err) { this.d.log.info({ job: id, err }, 'a drain move could not be cancelled; it completes'); }
    }, () => this.refuseIfRunning(), this.d.stopDrainMs ?? STOP_DRAIN_MS);
  }

  /** The run under way: this agent's own, or in a cluster the manager's as this host's drain record says. */
  private current(): MaintenanceRun | null {
    return this.running ?? this.clusterRuns()?.running ?? null;
  }

  private refuseIfRunning(): void {
    const r = this.current();
    if (r) throw new FerryError('DRAIN_IN_PROGRESS', `A ${r.operation} of ${this.d.host} is already running (since ${r.startedAt}); wait for it to end.`);
  }

  private begin(what: Omit<MaintenanceRun, 'startedAt' | 'endedAt' | 'error'>, body: () => Promise<FerryError | null>): void {
    this.refuseIfRunning();
    const run: MaintenanceRun = { ...what, startedAt: new Date().toISOString(), endedAt: null, error: null };
    this.running = run;
    // The executors set the state before their first await, so the answer already shows it.
    const p = body();
    void p.catch((e: unknown) => toFerryError(e)).then((err) => {
      run.endedAt = new Date().toISOString();
      run.error = err ? { code: err.code, message: err.message } : null;
      this.lastRun = run;
      this.running = null;
      this.d.log.info({ run }, `host ${what.operation} ended`);
      this.changed();
    });
  }

  private changed(): void {
    const v = this.view();
    this.d.emit('host.maintenance', { host: this.d.host, state: v.state, running: v.running?.operation ?? null, vms: v.vms });
  }

  /** This host for a peer's drain placement and failback lookup. */
  summary(): PeerHostSummary {
    const cap = this.d.capacity();
    return {
      protocol: PROTOCOL_VERSION, host: this.d.host, maintenance: this.state(), memoryMiB: cap.memoryMiB,
      freeMemoryMiB: cap.memoryMiB - this.d.usedMemoryMiB(), cpus: cap.cpus,
      vms: this.localVms().map((v) => ({
        name: v.name, state: v.state, memoryMiB: v.memoryMiB, cpus: v.cpus, group: v.group ?? null, moving: this.d.jobs.activeFor(v.name)?.role === 'source',
      })),
    };
  }

  /** A peer resuming with failback asks this host to move `vm` back to it (it must be the caller). */
  async failbackFrom(vm: string, caller: string): Promise<{ protocol: number; jobId: string }> {
    if (!this.d.peers().includes(caller)) throw new FerryError('UNKNOWN_HOST', `No host named "${caller}" is a peer of ${this.d.host}.`);
    const job = await this.d.migrations.start({ vm, destination: caller, options: { includeStorage: false } });
    return { protocol: PROTOCOL_VERSION, jobId: job.id };
  }

  /** This host's VMs, without the incoming copies of moves to here. */
  private localVms(): HostVm[] {
    return this.d.inv.list().filter((r) => this.d.jobs.activeFor(r.spec.name)?.role !== 'destination')
      .map((r) => ({ name: r.spec.name, memoryMiB: r.spec.memoryMiB, cpus: r.spec.cpus, group: r.spec.group, state: r.state }));
  }

  private async peerSummaries(): Promise<{ name: string; summary: PeerHostSummary | null }[]> {
    const h = this.d.migrationHost();
    return Promise.all(this.d.peers().filter((p) => p !== this.d.host).map(async (name) => ({
      name, summary: await peerOf(h, name, 10_000).hostSummary<PeerHostSummary>().catch((e: unknown) => {
        this.d.log.warn({ peer: name, err: e }, 'peer did not describe itself for a drain');
        return null;
      }),
    })));
  }

  private drainDeps(): DrainDeps {
    return {
      host: this.d.host, ledger: this.store, log: this.d.log, changed: () => this.changed(),
      vms: async () => this.localVms(),
      hosts: async () => (await this.peerSummaries()).map(({ name, summary }) => placementHost(name, summary)),
      compare: async (vm, host) => (await compareMove(this.d.migrationHost(), { vm, destination: host, options: { includeStorage: false } })).incompatibilities,
      move: async (vm, host, onJob) => {
        const job = await this.drainStop.move(vm, () => this.d.migrations.start({ vm, destination: host, options: { includeStorage: false } }));
        onJob(job.id);
        const end = await jobEnd(this.d.jobs, job.id);
        if (end.state.status !== 'completed') throw jobError(end);
      },
      stop: async (vm) => { this.drainStop.admit('stop', vm); await this.d.stopVm(vm); },
    };
  }

  private resumeDeps(): ResumeDeps {
    return {
      host: this.d.host, ledger: this.store, log: this.d.log, changed: () => this.changed(),
      start: async (vm) => { await this.d.startVm(vm); },
      locate: async (vm) => {
        if (this.localVms().some((v) => v.name === vm)) return this.d.host;
        return (await this.peerSummaries()).find((p) => p.summary?.vms.some((v) => v.name === vm))?.name ?? null;
      },
      moveBack: async (vm, from, onJob) => {
        const peer = peerOf(this.d.migrationHost(), from);
        const { jobId } = await peer.failback<{ jobId: string }>({ protocol: PROTOCOL_VERSION, vm, destination: this.d.host });
        onJob(jobId);
        for (;;) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          const st = await peer.status(jobId).catch(() => undefined);
          if (!st?.job || !['completed', 'failed', 'cancelled'].includes(st.job.status)) continue;
          if (st.job.status === 'completed') return;
          const mine = this.d.jobs.find(jobId);
          throw mine ? jobError(mine) : new FerryError('MIGRATION_FAILED', `The move of "${vm}" back from ${from} ended ${st.job.status} (job ${jobId}).`);
        }
      },
    };
  }
}

/** A host as a drain's placement sees it, from its own summary (null: it did not answer). */
export function placementHost(name: string, s: PeerHostSummary | null): PlacementHost {
  return s ? {
    name, freeMemoryMiB: s.freeMemoryMiB, cpus: s.cpus, maintenance: s.maintenance === 'active' ? null : s.maintenance, reachable: true,
    committedCpus: s.vms.filter((v) => isActive(v.state as VmState)).reduce((a, v) => a + v.cpus, 0),
    groups: s.vms.filter((v) => v.group !== null && isActive(v.state as VmState)).map((v) => v.group as string),
  } : { name, freeMemoryMiB: 0, cpus: 0, committedCpus: 0, groups: [], maintenance: null, reachable: false };
}

/** DRAIN_INCOMPLETE for a drain that left VMs behind, listing each with its reason; null when the host was emptied. */
export function drainIncomplete(host: string, out: DrainOutcome): FerryError | null {
  if (out.blocked.length === 0) return null;
  return new FerryError('DRAIN_INCOMPLETE', `${out.blocked.length} VM${out.blocked.length === 1 ? '' : 's'} could not leave ${host}, which stays draining: ${lines(out.blocked)}.`);
}

/** A peer-RPC client for `host`, with this host's certificate. */
const peerOf = (h: MigrationHost, host: string, timeoutMs?: number): PeerClient => new PeerClient(h.peerUrl(host), host, timeoutMs, h.tls?.material);

/** Resolves with the job once it has ended (queued and running jobs are waited for). */
function jobEnd(jobs: JobStore, id: string): Promise<JobRecord> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const j = jobs.get(id);
      if (!isTerminal(j.state)) return false;
      off();
      clearInterval(poll);
      resolve(j);
      return true;
    };
    const off = jobs.onChange((c) => { if (c.job.id === id && c.kind === 'transition') check(); });
    // A listener could miss nothing in one process, but a poll costs little and guards a lost change.
    const poll = setInterval(check, 5000);
    check();
  });
}

/** The error a job ended with, as a FerryError. */
export function jobError(j: JobRecord): FerryError {
  const e = summarize(j).error;
  if (e && isErrorCode(e.code)) return new FerryError(e.code, e.message);
  return new FerryError('MIGRATION_FAILED', `The move of "${j.vm}" to ${j.destination} ended ${j.state.status} (job ${j.id}).`);
}

const lines = (entries: DrainEntry[]): string => entries.map((e) => `${e.vm}: ${e.error?.code ?? 'UNKNOWN'}: ${(e.error?.message ?? 'no reason recorded').replace(/\.$/, '')}`).join('; ');
