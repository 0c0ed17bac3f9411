/**
 * Drains in a cluster (issue 7, point 4; Hyper-V's "Pause, drain roles" in a failover cluster).
 * `ferry host drain H` asks H's agent as standalone; in a cluster H records the drain in etcd
 * (`drains/H`, no lease: it outlives any one agent) and the elected manager runs the standalone
 * executor, drainHost(), for it: the cluster's live members are the inventory, H is asked over
 * peer RPC (mutual TLS) for its VMs, each compatibility report, each move (through H's queue and
 * the cluster-wide slots) and, with --force, each stop; the record is the ledger. H copies its
 * record every tick (HostMaintenance.mirror), so `ferry host show H` and the CLI's progress read
 * H as standalone, and `host resume --failback` works from the same ledger.
 *
 * A new manager finds a record still `running` and runs the drain again: it first waits until no
 * move is under way on H (its predecessor may have started some), then drainHost() continues (VMs
 * that left stay in the ledger, the others are planned afresh).
 */
import type { Logger } from 'pino';
import type { ClusterStore } from '../cluster/index.js';
import { FerryError, isErrorCode, toFerryError } from '../errors/index.js';
import { drainHost, type DrainDeps, type HostVm } from '../host/index.js';
import {
  compareMove, PeerClient, PROTOCOL_VERSION, type Incompatibility, type JobStore, type MigrationHost, type MigrationService, type StatusReply,
} from '../migration/index.js';
import { RecordLedger, RecordWriter } from './drain-ledger.js';
import { drainIncomplete, placementHost, type DrainRecord, type HostMaintenance, type PeerHostSummary } from './maintenance.js';

/** What the manager asks of the drained host (POST /v1/peer/drain-step): a compatibility report, a move, or a clean stop. */
export interface DrainStepRequest { protocol: number; action: 'compare' | 'move' | 'stop'; vm: string; destination?: string }
export interface DrainStepReply { protocol: number; incompatibilities?: Incompatibility[]; jobId?: string }

/** One host as the manager's drain reaches it: itself directly, another over peer RPC. */
export interface HostPort {
  summary(): Promise<PeerHostSummary>;
  step(req: Omit<DrainStepRequest, 'protocol'>): Promise<DrainStepReply>;
  job(id: string): Promise<StatusReply>;
}

/** The agent's parts a cluster drain uses. */
export interface ClusterDrainParts {
  host: string;
  log: Logger;
  maintenance: HostMaintenance;
  migrations: MigrationService;
  jobs: JobStore;
  migrationHost(): MigrationHost;
  stopVm(name: string): Promise<unknown>;
  /** The cluster's store while this host is in a cluster. */
  store(): ClusterStore | undefined;
  /** Whether this host manages the cluster (as of its last tick). */
  isManager(): boolean;
  /** Tests: how the manager reaches each host (default: this agent directly, others over peer RPC), and how often it polls. */
  reach?(host: string): HostPort;
  pollMs?: number;
}

/** How long the manager keeps asking a drained host that does not answer before the run gives up on it. */
const UNREACHABLE_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The record as written (a value that does not parse is no record); leave and status read it here too. */
export function parseDrainRecord(value: string): DrainRecord | undefined {
  try { return JSON.parse(value) as DrainRecord; } catch { return undefined; }
}

const inProgress = (host: string, r: { operation: string; startedAt: string }): FerryError =>
  new FerryError('DRAIN_IN_PROGRESS', `A ${r.operation} of ${host} is already running (since ${r.startedAt}); wait for it to end.`);

export class ClusterDrains {
  /** The drains this host runs as manager, by drained host. */
  private readonly runs = new Map<string, Promise<void>>();
  /** Counts this host's own writes of its record: a tick whose read began before one does not copy what it read. */
  private writes = 0;
  /** The runs this host ended (host@startedAt): a tick whose read began before the end was written does not run one again. */
  private readonly ended = new Set<string>();

  constructor(private readonly p: ClusterDrainParts) {}

  private store(): ClusterStore {
    const s = this.p.store();
    if (!s) throw new FerryError('NOT_IN_CLUSTER', `The host ${this.p.host} is not in a cluster.`);
    return s;
  }

  private async own(): Promise<{ rec: DrainRecord | undefined; rev: string }> {
    const cur = (await this.store().drains()).find((d) => d.host === this.p.host);
    return { rec: cur ? parseDrainRecord(cur.value) : undefined, rev: cur?.rev ?? '0' };
  }

  /** This host's side of `ferry host drain`: records the drain for the manager (DRAIN_IN_PROGRESS while one runs). */
  async request(rec: DrainRecord): Promise<DrainRecord> {
    const { rec: old, rev } = await this.own();
    if (old?.running) throw inProgress(this.p.host, old.running);
    // A drain that continues keeps the ledger etcd has (this host's copy may be a tick behind).
    const next = old && rec.vms.length > 0 ? { ...rec, vms: old.vms } : rec;
    if (!(await this.store().putDrain(this.p.host, JSON.stringify(next), { rev }))) {
      throw new FerryError('DRAIN_IN_PROGRESS', `The drain record of ${this.p.host} changed while this drain was being recorded; try again.`);
    }
    this.writes++;
    this.p.log.info({ force: rec.force }, 'drain recorded for the cluster manager');
    return next;
  }

  /** This host's side of `ferry host resume`: its drain record leaves etcd (DRAIN_IN_PROGRESS while the manager runs it). */
  async release(): Promise<DrainRecord | undefined> {
    const { rec, rev } = await this.own();
    if (!rec && rev === '0') return undefined;
    if (rec?.running) throw inProgress(this.p.host, rec.running);
    if (!(await this.store().deleteDrain(this.p.host, rev))) {
      throw new FerryError('DRAIN_IN_PROGRESS', `The drain record of ${this.p.host} changed while the resume read it; try again.`);
    }
    this.writes++;
    return rec;
  }

  /** Each cluster tick: this host follows its record; the manager starts a run for each record that asks for one and has none here. */
  async tick(store: ClusterStore, isManager: boolean): Promise<void> {
    try {
      const writes = this.writes;
      const all = (await store.drains()).map((d) => parseDrainRecord(d.value)).filter((r): r is DrainRecord => r !== undefined);
      if (writes === this.writes) this.p.maintenance.mirror(all.find((r) => r.host === this.p.host));
      if (!isManager) return;
      for (const rec of all) {
        if (rec.running?.operation !== 'drain' || this.runs.has(rec.host) || this.ended.has(`${rec.host}@${rec.running.startedAt}`)) continue;
        this.runs.set(rec.host, this.run(store, rec)
          .catch((err: unknown) => this.p.log.error({ host: rec.host, err }, 'cluster drain failed'))
          .finally(() => this.runs.delete(rec.host)));
      }
    } catch (err) {
      this.p.log.warn({ err }, 'could not read the cluster\'s drains');
    }
  }

  /** The manager's run of one drain: drainHost() with the record as its ledger; the run's end goes into the record. */
  private async run(store: ClusterStore, rec: DrainRecord): Promise<void> {
    const me = this.p.host;
    const run = rec.running;
    if (!run) return;
    // The term this run belongs to: its writes fail once another election happened, even one this host won again.
    const term = await store.managerTerm();
    if (term?.name !== me) return;
    const writer = new RecordWriter(rec, (r) => store.putDrain(r.host, JSON.stringify(r), { manager: me, term: term.term }), () => this.p.isManager(), this.p.log);
    const ledger = new RecordLedger(rec, () => writer.changed());
    const port = this.port(rec.host);
    // Taken up before: a manager died (or lost its post) while it ran, and may have started moves.
    const continuing = rec.manager !== undefined;
    rec.manager = me;
    writer.changed();
    this.p.log.info({ host: rec.host, force: rec.force, continuing, ledger: rec.vms.map((e) => `${e.vm}:${e.status}`) }, 'cluster manager: running a drain');
    let err: FerryError | null;
    try {
      if (continuing) await this.settle(port, rec, writer);
      err = drainIncomplete(rec.host, await drainHost(this.deps(store, ledger, port, writer), { force: rec.force }));
    } catch (e) {
      err = toFerryError(e);
    }
    if (err?.code === 'NOT_CLUSTER_MANAGER' || writer.deposed || !this.p.isManager()) {
      // Deposed: the record keeps asking for the run, so the next manager continues it.
      this.p.log.warn({ host: rec.host, error: err?.code ?? null }, 'cluster manager: lost its post during a drain; the next manager continues it');
      return;
    }
    rec.lastRun = { ...run, endedAt: new Date().toISOString(), error: err ? { code: err.code, message: err.message } : null };
    rec.running = null;
    writer.changed();
    await writer.flushed();
    if (!writer.deposed) this.ended.add(`${rec.host}@${run.startedAt}`);
    this.p.log.info({ host: rec.host, error: err?.code ?? null, deposed: writer.deposed }, 'cluster manager: drain ended');
  }

  /**
   * A drain another manager ran before: waits until no VM has a move under way on the drained host
   * (that manager may have started them, and the last changes of its ledger may be lost).
   */
  private async settle(port: HostPort, rec: DrainRecord, writer: RecordWriter): Promise<void> {
    let answered = Date.now();
    for (;;) {
      this.checkManager(writer);
      const s = await port.summary().catch(() => null);
      if (s) {
        answered = Date.now();
        if (!s.vms.some((v) => v.moving)) return;
      } else if (Date.now() - answered > UNREACHABLE_MS) {
        throw new FerryError('HOST_UNREACHABLE', `The agent of ${rec.host} did not answer for ${UNREACHABLE_MS / 1000} s while its drain waited for its moves.`);
      }
      await sleep(this.p.pollMs ?? 1000);
    }
  }

  /** Waits until the ledger's changes so far are in etcd, and throws NOT_CLUSTER_MANAGER when this host no longer manages. */
  private async postedAsManager(writer: RecordWriter): Promise<void> {
    this.checkManager(writer);
    await writer.flushed();
    this.checkManager(writer);
  }

  private checkManager(writer: RecordWriter): void {
    if (writer.deposed || !this.p.isManager()) {
      throw new FerryError('NOT_CLUSTER_MANAGER', `${this.p.host} no longer manages the cluster; the new manager continues the drain.`);
    }
  }

  /** The drain's dependencies as the manager gives them: the cluster's live members, and the drained host over `port`. */
  private deps(store: ClusterStore, ledger: RecordLedger, port: HostPort, writer: RecordWriter): DrainDeps {
    const host = ledger.rec.host;
    return {
      host, ledger, log: this.p.log,
      vms: async () => (await port.summary()).vms.map((v): HostVm => ({ name: v.name, memoryMiB: v.memoryMiB, cpus: v.cpus, group: v.group ?? undefined, state: v.state })),
      hosts: async () => {
        const members = (await store.members()).filter((m) => m.name !== host);
        return Promise.all(members.map(async (m) => placementHost(m.name, await this.port(m.name).summary().catch((e: unknown) => {
          this.p.log.warn({ peer: m.name, err: e }, 'a member did not describe itself for a drain');
          return null;
        }))));
      },
      fatal: (e) => e.code === 'NOT_CLUSTER_MANAGER',
      compare: async (vm, to) => {
        this.checkManager(writer);
        return (await port.step({ action: 'compare', vm, destination: to })).incompatibilities ?? [];
      },
      move: async (vm, to, onJob) => {
        // The ledger's 'moving' entry reaches etcd before the move starts, so a successor sees it.
        await this.postedAsManager(writer);
        const { jobId } = await port.step({ action: 'move', vm, destination: to });
        if (!jobId) throw new FerryError('MIGRATION_FAILED', `${host} started no move of "${vm}" to ${to}.`);
        onJob(jobId);
        await this.waitJob(port, host, vm, to, jobId);
      },
      stop: async (vm) => {
        await this.postedAsManager(writer);
        await port.step({ action: 'stop', vm });
      },
    };
  }

  /** Resolves when move `jobId` of `vm` on `host` completed; throws its error when it failed. */
  private async waitJob(port: HostPort, host: string, vm: string, to: string, jobId: string): Promise<void> {
    let answered = Date.now();
    for (;;) {
      await sleep(this.p.pollMs ?? 1000);
      const st = await port.job(jobId).catch(() => undefined);
      if (!st) {
        if (Date.now() - answered > UNREACHABLE_MS) throw new FerryError('HOST_UNREACHABLE', `The agent of ${host} did not answer about the move of "${vm}" (job ${jobId}).`);
        continue;
      }
      answered = Date.now();
      const j = st.job;
      if (!j) throw new FerryError('MIGRATION_FAILED', `${host} has no record of the move of "${vm}" to ${to} (job ${jobId}).`);
      if (j.status === 'completed') return;
      if (j.status !== 'failed' && j.status !== 'cancelled') continue;
      if (j.error && isErrorCode(j.error.code)) throw new FerryError(j.error.code, j.error.message);
      throw new FerryError('MIGRATION_FAILED', `The move of "${vm}" to ${to} ended ${j.status} (job ${jobId}).`);
    }
  }

  /** `host` as the manager reaches it: this agent itself directly, another over peer RPC with this host's certificate. */
  private port(host: string): HostPort {
    if (this.p.reach) return this.p.reach(host);
    if (host === this.p.host) {
      return {
        summary: async () => this.p.maintenance.summary(),
        step: (req) => this.doStep({ protocol: PROTOCOL_VERSION, ...req }),
        job: (id) => this.p.migrations.destination.status(id),
      };
    }
    const h = this.p.migrationHost();
    const peer = (): PeerClient => new PeerClient(h.peerUrl(host), host, 10_000, h.tls?.material);
    return {
      // async: an unknown peer rejects (handled like an unreachable one) instead of throwing at the call.
      summary: async () => peer().hostSummary<PeerHostSummary>(),
      step: async (req) => peer().drainStep<DrainStepReply>({ protocol: PROTOCOL_VERSION, ...req }),
      job: async (id) => peer().status(id),
    };
  }

  /**
   * The drained host's side of POST /v1/peer/drain-step: only the cluster's manager (as etcd says
   * now) may ask; `caller` null is this agent itself or its local socket.
   */
  async step(req: DrainStepRequest, caller: string | null): Promise<DrainStepReply> {
    const store = this.store();
    if (caller !== null && caller !== this.p.host) {
      const manager = await store.manager();
      if (manager !== caller) {
        throw new FerryError('NOT_CLUSTER_MANAGER', `Host ${caller} asked ${this.p.host} to ${req.action} "${req.vm}" for a drain, but ${manager ?? 'no host'} manages the cluster.`);
      }
    }
    return this.doStep(req);
  }

  private async doStep(req: DrainStepRequest): Promise<DrainStepReply> {
    const base = { protocol: PROTOCOL_VERSION };
    const stop = this.p.maintenance.drainStop;
    if (req.action === 'stop') {
      stop.admit('stop', req.vm);
      await this.p.stopVm(req.vm);
      return base;
    }
    const destination = req.destination;
    if (!destination) throw new FerryError('INVALID_INPUT', `A drain's ${req.action} of "${req.vm}" names no destination.`);
    const options = { includeStorage: false };
    if (req.action === 'compare') return { ...base, incompatibilities: (await compareMove(this.p.migrationHost(), { vm: req.vm, destination, options })).incompatibilities };
    // The move a manager that died asked for is the move this one asks for.
    const active = this.p.jobs.activeFor(req.vm);
    if (active?.role === 'source' && active.destination === destination) {
      stop.started(active.id);
      return { ...base, jobId: active.id };
    }
    return { ...base, jobId: (await stop.move(req.vm, () => this.p.migrations.start({ vm: req.vm, destination, options }))).id };
  }
}
