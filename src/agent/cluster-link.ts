/**
 * The agent's side of cluster mode (src/cluster): which cluster this host belongs to (kept in its
 * SQLite, so a restarted agent rejoins), the ClusterHost the cluster code acts through, and the
 * hooks VM actions and moves call so etcd follows what happens here. Standalone hosts have no node
 * and every hook is a no-op.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  ClusterNode, DEFAULT_CLUSTER_MIGRATIONS, DEFAULT_FENCE_MARGIN_SEC, DEFAULT_LEASE_TTL_SEC, createConfig, quorum, readConfig,
  type ClusterConfig, type ClusterHost, type EtcdTls, type FailbackPolicy, type HaChange, type HaRecord, type MemberRecord, type NodeView, type PeerLease, type QuorumView, type RestartPolicy,
} from '../cluster/index.js';
import { FerryError } from '../errors/index.js';
import { leaveCluster, type LeaveParts, type LeaveResult } from './cluster-leave.js';
import { parseDrainRecord } from './cluster-drain.js';
import type { Db } from '../util/index.js';
import type { VmSpec } from '../vm/index.js';

/** What `ferry cluster create` or `join` asks of a host. */
export interface ClusterJoinRequest { name: string; endpoints: string[]; create?: boolean; leaseTtlSec?: number; fenceMarginSec?: number; maxMigrations?: number }

/** What a leave asks of the agent about this host itself (src/agent/agent.ts gives it). */
export type LocalParts = Pick<LeaveParts, 'localVms' | 'localRun' | 'localState' | 'localHa'>;

/** `ferry cluster status` as one host sees it. */
export interface ClusterStatus {
  name: string;
  endpoints: string[];
  leaseTtlSec: number;
  fenceMarginSec: number;
  maxMigrations: number;
  quorum: QuorumView;
  node: NodeView;
  /** The hosts that hold a lease now (a member key lives with its host's lease). */
  members: MemberRecord[];
  manager: string | null;
  haVms: Pick<HaRecord, 'name' | 'owner' | 'home' | 'state' | 'priority' | 'restart' | 'failback' | 'restarts' | 'note'>[];
  /** The hosts etcd keeps a drain record of (`drains/<host>`, docs/maintenance.md): their maintenance state, and whether a drain runs. */
  drains: { host: string; state: string; running: boolean }[];
  /** Null when healthy; else why the cluster places nothing now. */
  degraded: string | null;
}

/** Policies of a new HA VM (`ferry vm create --ha`). */
export interface HaPolicy { priority?: number; restart?: RestartPolicy; failback?: FailbackPolicy }

/** A drain record as `ferry cluster status` shows it. */
function drainSummary(host: string, value: string): ClusterStatus['drains'][number] {
  const r = parseDrainRecord(value);
  return r ? { host, state: r.state, running: r.running !== null } : { host, state: 'unreadable', running: false };
}

export class ClusterLink {
  private node: ClusterNode | undefined;

  private tlsRead: EtcdTls | undefined;

  /** The leave under way (`ferry cluster leave`), if any. */
  private leaving: Promise<unknown> = Promise.resolve();

  /**
   * `tlsFiles`: the PEM files of this host's credentials for https:// etcd endpoints (ferryd.json
   * `etcdTls`, else `tls`), read at first use; absent without TLS.
   */
  constructor(private readonly db: Db, private readonly host: ClusterHost, private readonly log: Logger,
    private readonly tlsFiles?: { caCert: string; cert: string; key: string }) {
    db.exec('CREATE TABLE IF NOT EXISTS cluster_membership (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL)');
  }

  /** Rejoins the cluster this host was in before a restart, if any. */
  resume(): void {
    const row = this.db.prepare('SELECT config FROM cluster_membership WHERE id = 1').get() as { config: string } | undefined;
    if (row) this.begin(JSON.parse(row.config) as ClusterConfig);
  }

  get active(): ClusterNode | undefined { return this.node; }

  /**
   * Why this member takes no HA VM now (an incoming move of one is refused in prepare, a user's
   * start too; `doing` says which), else null:
   * its lease has not been renewed for half a TTL (cut off from etcd, or etcd lost quorum), so it
   * would power the VM off (fencing) as soon as it ran here, or hold it where the cluster can
   * neither see nor place it.
   */
  haRefusal(doing: 'take' | 'start' = 'take'): string | null {
    const n = this.node;
    if (!n || n.renewing()) return null;
    const then = doing === 'take' ? 'takes no HA VM now; move it elsewhere, or again' : 'starts no HA VM now; start it again';
    return `Host ${this.host.name} has not renewed its cluster lease for ${Math.round(n.sinceRenewMs() / 1000)} s (cut off from etcd, or etcd has lost quorum), so it ${then} once ${this.host.name} renews.`;
  }

  /** The credentials for etcd, read once; CONFIG_INVALID when a file cannot be read. */
  private tls(): EtcdTls | undefined {
    const f = this.tlsFiles;
    if (!f || this.tlsRead) return this.tlsRead;
    try {
      this.tlsRead = { ca: readFileSync(f.caCert), cert: readFileSync(f.cert), key: readFileSync(f.key) };
    } catch (e) {
      throw new FerryError('CONFIG_INVALID', `The agent config's TLS files could not be read for etcd: ${(e as Error).message}.`, { cause: e });
    }
    return this.tlsRead;
  }

  /** Creates the cluster in etcd (with `create`) or reads its config, then joins it. */
  async join(req: ClusterJoinRequest): Promise<ClusterConfig> {
    if (this.node) {
      if (this.node.config.name === req.name) return this.node.config;
      throw new FerryError('CLUSTER_EXISTS', `This host is already in the cluster "${this.node.config.name}".`);
    }
    let cfg: ClusterConfig;
    if (req.create) {
      cfg = {
        name: req.name, endpoints: req.endpoints, leaseTtlSec: req.leaseTtlSec ?? DEFAULT_LEASE_TTL_SEC,
        fenceMarginSec: req.fenceMarginSec ?? DEFAULT_FENCE_MARGIN_SEC, maxMigrations: req.maxMigrations ?? DEFAULT_CLUSTER_MIGRATIONS, createdAt: new Date().toISOString(),
      };
      await createConfig(cfg, this.tls());
    } else {
      cfg = await readConfig(req.name, req.endpoints, this.tls());
    }
    this.remember(cfg);
    this.begin(cfg);
    return cfg;
  }

  private begin(cfg: ClusterConfig): void {
    this.node = new ClusterNode(cfg, this.host, this.tls());
    this.node.start();
    this.log.info({ cluster: cfg.name, endpoints: cfg.endpoints }, 'cluster member');
  }

  /** This host's lease, for a peer deciding whether to fence (GET /v1/peer/cluster). */
  peerView(): PeerLease & { cluster: string | null } {
    return { host: this.host.name, renewing: this.node?.renewing() ?? false, ...(this.node ? { sinceRenewMs: this.node.sinceRenewMs() } : {}), cluster: this.node?.config.name ?? null };
  }

  async status(): Promise<ClusterStatus> {
    const n = this.require();
    const cfg = n.config;
    const q = await quorum(cfg.endpoints, this.tls());
    const view = n.view();
    let members: MemberRecord[] = [];
    let manager: string | null = null;
    let ha: HaRecord[] = [];
    let drains: ClusterStatus['drains'] = [];
    let degraded = view.degraded;
    try {
      [members, manager, ha, drains] = await Promise.all([n.store.members(), n.store.manager(), n.store.haEntries().then((es) => es.map((e) => e.rec)),
        n.store.drains().then((ds) => ds.map((d) => drainSummary(d.host, d.value)))]);
    } catch (e) {
      degraded ??= e instanceof Error ? e.message : String(e);
    }
    if (!q.healthy) degraded ??= 'etcd has no quorum: nothing is placed and running VMs are left alone';
    return {
      name: cfg.name, endpoints: cfg.endpoints, leaseTtlSec: cfg.leaseTtlSec, fenceMarginSec: cfg.fenceMarginSec,
      maxMigrations: cfg.maxMigrations ?? DEFAULT_CLUSTER_MIGRATIONS, quorum: q, node: view,
      members, manager,
      haVms: ha.map(({ name, owner, home, state, priority, restart, failback, restarts, note }) => ({ name, owner, home, state, priority, restart, failback, restarts, ...(note ? { note } : {}) })),
      drains, degraded,
    };
  }

  private require(): ClusterNode {
    if (!this.node) throw new FerryError('NOT_IN_CLUSTER', `The host ${this.host.name} is not in a cluster: run \`ferry cluster create\` or \`ferry cluster join\`.`);
    return this.node;
  }

  /**
   * `ferry cluster leave HOST` asked of this host (cluster-leave.ts): this host itself leaves, or
   * this member takes out a host that holds no lease. NOT_IN_CLUSTER when this host is in none.
   */
  leave(host: string, local: LocalParts): Promise<LeaveResult> {
    // One at a time: a second leave of this host waits, then finds it standalone.
    const next = this.leaving.then(() => this.leaveNow(host, local));
    this.leaving = next.catch(() => undefined);
    return next;
  }

  private async leaveNow(host: string, local: LocalParts): Promise<LeaveResult> {
    const n = this.node;
    const me = this.host.name;
    if (!n) {
      throw new FerryError('NOT_IN_CLUSTER', host === me
        ? `${me} is not in a cluster (it has left, or never joined): there is nothing to leave.`
        : `${me} is not in a cluster, so it cannot take ${host} out of one: ask a member of that cluster.`);
    }
    const r = await leaveCluster({
      host: me, node: n, ...local, forget: () => this.forget(n),
      detach: () => this.unremember(),
      keep: () => this.remember(n.config),
    }, host);
    this.log.info({ cluster: r.cluster, host, drainRemoved: r.drainRemoved, homes: r.homes }, 'took a host out of the cluster');
    return r;
  }

  /** The membership this host rejoins at start. */
  private remember(cfg: ClusterConfig): void {
    this.db.prepare('INSERT OR REPLACE INTO cluster_membership (id, config) VALUES (1, ?)').run(JSON.stringify(cfg));
  }

  private unremember(): void {
    this.db.prepare('DELETE FROM cluster_membership WHERE id = 1').run();
  }

  /** After this host left: it no longer rejoins at start, and its lease is revoked (else it expires within its TTL). */
  private async forget(n: ClusterNode): Promise<void> {
    this.unremember();
    if (this.node === n) this.node = undefined;
    await n.revoke().catch((err: unknown) => this.log.warn({ err }, 'could not revoke the cluster lease; it expires within its TTL'));
    this.log.info({ cluster: n.config.name }, 'left the cluster: standalone again');
  }

  /** Throws unless an HA VM can be created here: the host is in a cluster and every disk is in a shared pool. */
  checkHa(disksShared: boolean): void {
    this.require();
    if (!disksShared) throw new FerryError('HA_NEEDS_SHARED_STORAGE', 'An HA VM keeps its disks in a shared pool (--pool shared), so another host can restart it.');
  }

  async registered(spec: VmSpec, policy: HaPolicy): Promise<void> { await this.require().register(spec, policy); }
  /** A user's start of an HA VM: refused (CLUSTER_UNAVAILABLE) while this host does not renew its lease, which would fence it at once. */
  async claimForStart(spec: VmSpec, register?: boolean): Promise<void> {
    if (!spec.ha) return;
    const node = register === true ? this.require() : this.node;
    const why = this.haRefusal('start');
    if (why) throw new FerryError('CLUSTER_UNAVAILABLE', why);
    await node?.claimForStart(spec, register);
  }
  /** `ferry vm set` of an HA VM: its record's policies and group (NOT_IN_CLUSTER standalone). */
  async changeHa(spec: VmSpec, c: HaChange): Promise<HaRecord> { return this.require().changeHa(spec, c); }
  async started(spec: VmSpec): Promise<void> { if (spec.ha) await this.node?.setState(spec, 'running'); }
  async stopped(spec: VmSpec): Promise<void> { if (spec.ha) await this.node?.setState(spec, 'stopped'); }
  async deleted(spec: VmSpec): Promise<void> { if (spec.ha) await this.node?.unregister(spec); }
  async movedHere(spec: VmSpec, from: string): Promise<void> { if (spec.ha) await this.node?.tookOver(spec, from); }
  async owner(spec: VmSpec): Promise<string | null | undefined> {
    if (!this.node) return null;
    const rec = (await this.node.store.haEntry(spec.name))?.rec;
    return rec?.spec.uuid === spec.uuid ? rec.owner : undefined;
  }

  /** Its live members and its HA VMs' addresses, for a new VM's address (ip-allocator.ts); null standalone. Throws CLUSTER_UNAVAILABLE. */
  async addressSources(): Promise<{ members: { name: string; url: string }[]; haIps: string[] } | null> {
    const n = this.node;
    if (!n) return null;
    const [members, ha] = await Promise.all([n.store.members(), n.store.haEntries()]);
    return { members: members.map(({ name, url }) => ({ name, url })), haIps: ha.map((e) => e.rec.spec.ip) };
  }

  /** Cluster-wide move slots (none needed on a standalone host). */
  async takeMigrationSlot(job: string): Promise<boolean> { return this.node ? this.node.takeMigrationSlot(job).catch(() => false) : true; }
  async releaseMigrationSlot(job: string): Promise<void> { await this.node?.releaseMigrationSlot(job).catch((err: unknown) => this.log.warn({ err, job }, 'could not release a cluster migration slot')); }

  async close(): Promise<void> { await this.node?.stop(); }
}
