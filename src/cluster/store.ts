/**
 * The cluster's etcd: one client per agent, one lease per agent life (see model.ts for the keys).
 * Every read and write here is a single etcd call or transaction; nothing is cached, so each
 * decision works on what etcd holds now.
 */
import { Etcd3, type Lease } from 'etcd3';
import { FerryError } from '../errors/index.js';
import { clusterKeys, recordKey, vmKey, type ClusterConfig, type HaEntry, type HaRecord, type MemberRecord } from './model.js';
import type { VmId } from './host.js';
import { FENCE_ASK_MS } from './fencing.js';

/** Wraps an etcd error as CLUSTER_UNAVAILABLE, with what was being done. */
export function unavailable(what: string, e: unknown): FerryError {
  if (e instanceof FerryError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new FerryError('CLUSTER_UNAVAILABLE', `etcd did not answer while ${what}: ${why}.`, { cause: e });
}

async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) { throw unavailable(what, e); }
}

/**
 * TLS to etcd (https:// endpoints): the CA etcd's certificate chains to, and this host's own
 * certificate and key (PEM), which etcd checks with `--client-cert-auth`. Agents use their host
 * identity (src/security): the lab's etcd has certificates from the hosts' CA.
 */
export interface EtcdTls { ca: Buffer; cert: Buffer; key: Buffer }

/**
 * An etcd client; `deadlineMs` bounds every unary call (streams such as watches are not bounded).
 * `tls` is used only for https:// endpoints: an http:// etcd is spoken to in plain text even by a
 * host that has credentials (etcd3 would otherwise use TLS for every endpoint).
 */
export function etcdClient(endpoints: string[], tls: EtcdTls | undefined, o: { dialTimeoutMs: number; deadlineMs?: number }): Etcd3 {
  const { deadlineMs } = o;
  const secure = endpoints.some((e) => e.startsWith('https://'));
  return new Etcd3({
    hosts: endpoints, dialTimeout: o.dialTimeoutMs,
    ...(tls && secure ? { credentials: { rootCertificate: tls.ca, privateKey: tls.key, certChain: tls.cert } } : {}),
    ...(deadlineMs !== undefined ? { defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + deadlineMs }) } : {}),
  });
}

/** Calls `fn` with a client of `endpoints` that is closed afterwards. */
export async function withEtcd<T>(endpoints: string[], tls: EtcdTls | undefined, fn: (c: Etcd3) => Promise<T>): Promise<T> {
  const c = etcdClient(endpoints, tls, { dialTimeoutMs: 2_000 });
  try { return await fn(c); } finally { c.close(); }
}

/** Writes the cluster's config unless one exists (CLUSTER_EXISTS then). */
export async function createConfig(cfg: ClusterConfig, tls?: EtcdTls): Promise<void> {
  await withEtcd(cfg.endpoints, tls, async (c) => {
    const r = await guard('creating the cluster', () => c.if(clusterKeys(cfg.name).config, 'Create', '==', 0)
      .then(c.put(clusterKeys(cfg.name).config).value(JSON.stringify(cfg))).commit());
    if (!r.succeeded) throw new FerryError('CLUSTER_EXISTS', `A cluster named "${cfg.name}" already exists in that etcd; join it instead.`);
  });
}

/** The config of cluster `name` in the etcd at `endpoints` (CLUSTER_NOT_FOUND when there is none). */
export async function readConfig(name: string, endpoints: string[], tls?: EtcdTls): Promise<ClusterConfig> {
  const text = await withEtcd(endpoints, tls, (c) => guard('reading the cluster config', () => c.get(clusterKeys(name).config).string()));
  if (text === null) throw new FerryError('CLUSTER_NOT_FOUND', `No cluster named "${name}" exists in the etcd at ${endpoints.join(', ')}.`);
  return JSON.parse(text) as ClusterConfig;
}

/** How many HA records one transaction of a leave rewrites (etcd's default limit is 128 operations). */
export const LEAVE_BATCH = 100;

/** One agent's view of its cluster's etcd. */
export class ClusterStore {
  readonly keys: ReturnType<typeof clusterKeys>;
  readonly client: Etcd3;

  constructor(readonly config: ClusterConfig, private readonly tls?: EtcdTls) {
    this.keys = clusterKeys(config.name);
    this.client = etcdClient(config.endpoints, tls, { dialTimeoutMs: 2_000, deadlineMs: 3_000 });
  }

  close(): void { this.client.close(); }

  /** A new lease of the cluster's TTL, kept alive by the client until revoked or lost. */
  lease(): Lease { return this.client.lease(this.config.leaseTtlSec); }

  async putMember(lease: Lease, m: MemberRecord): Promise<void> {
    await guard('publishing this host', () => lease.put(this.keys.member(m.name)).value(JSON.stringify(m)).exec());
  }

  /**
   * What a fence check asks etcd, on a client of its own and within FENCE_ASK_MS (null: no answer):
   * whether `host`'s member key is still there, and which of `vms` it holds a record of (same name
   * and uuid).
   */
  async fenceView(host: string, vms: readonly VmId[]): Promise<{ alive: boolean; recorded: VmId[] } | null> {
    return this.askFresh(async (c) => {
      const [alive, all] = await Promise.all([c.get(this.keys.member(host)).exists(), c.getAll().prefix(this.keys.ha).strings()]);
      const ids = new Set(Object.values(all).map((v) => recordKey(JSON.parse(v) as HaRecord)));
      return { alive, recorded: vms.filter((v) => ids.has(vmKey(v))) };
    });
  }

  /** One question to etcd on a client of its own, answered within FENCE_ASK_MS or not at all (null). */
  private async askFresh<T>(ask: (c: Etcd3) => Promise<T>): Promise<T | null> {
    // A client of its own: the long-lived one's circuit breaker stays open for a while after etcd
    // was away, and this must see etcd as it is now.
    const c = etcdClient(this.config.endpoints, this.tls, { dialTimeoutMs: 1_000, deadlineMs: 1_000 });
    let timer: NodeJS.Timeout | undefined;
    try {
      // The client tries each endpoint in turn, a dial timeout each: bound the whole answer too.
      const late = new Promise<null>((r) => { timer = setTimeout(() => r(null), FENCE_ASK_MS); });
      const answer = ask(c);
      answer.catch(() => undefined); // the loser of the race rejects once the client is closed
      return await Promise.race([answer, late]);
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
      c.close();
    }
  }

  async members(): Promise<MemberRecord[]> {
    const all = await guard('listing members', () => this.client.getAll().prefix(this.keys.members).strings());
    return Object.values(all).map((v) => JSON.parse(v) as MemberRecord);
  }

  /** The id of `lease` once etcd granted it (CLUSTER_UNAVAILABLE, saying what for, when etcd does not answer). */
  async leaseId(lease: Lease, what: string): Promise<string> { return guard(what, () => lease.grant()); }

  /** Revokes `lease` (its member key, manager key and slots go at once). */
  async revoke(lease: Lease): Promise<void> { await guard('revoking this host\'s lease', () => lease.revoke()); }

  /** Becomes the manager when nobody is (the key lives with `lease`); resolves with the manager's name. */
  async campaign(lease: Lease, host: string): Promise<string> {
    const id = await this.leaseId(lease, 'campaigning');
    const r = await guard('campaigning', () => this.client.if(this.keys.manager, 'Create', '==', 0)
      .then(this.client.put(this.keys.manager).value(host).lease(id))
      .else(this.client.get(this.keys.manager)).commit());
    if (r.succeeded) return host;
    const kv = r.responses[0]?.response_range?.kvs[0];
    return kv ? kv.value.toString() : '';
  }

  async manager(): Promise<string | null> {
    return guard('reading the manager', () => this.client.get(this.keys.manager).string());
  }

  /** The manager and its term: the create revision of the manager key (a new election makes a new one, even for the same host). */
  async managerTerm(): Promise<{ name: string; term: string } | null> {
    const res = await guard('reading the manager', () => this.client.get(this.keys.manager).exec());
    const kv = res.kvs[0];
    return kv ? { name: kv.value.toString(), term: kv.create_revision } : null;
  }

  async haEntries(): Promise<HaEntry[]> {
    const res = await guard('listing HA VMs', () => this.client.getAll().prefix(this.keys.ha).exec());
    return res.kvs.map((kv) => ({ rec: JSON.parse(kv.value.toString()) as HaRecord, rev: kv.mod_revision }));
  }

  async haEntry(vm: string): Promise<HaEntry | undefined> {
    const res = await guard('reading an HA VM', () => this.client.get(this.keys.haVm(vm)).exec());
    const kv = res.kvs[0];
    return kv ? { rec: JSON.parse(kv.value.toString()) as HaRecord, rev: kv.mod_revision } : undefined;
  }

  /**
   * Creates an HA record if none of that name exists (VM_EXISTS otherwise); with `holder`, only
   * while that host's member key lives under that lease (CLUSTER_UNAVAILABLE otherwise), as for
   * {@link updateHa}: a record a host makes for a VM it runs must not land once others may act on
   * its lease's expiry.
   */
  async createHa(rec: HaRecord, opts: { holder?: { host: string; lease: string } } = {}): Promise<void> {
    const key = this.keys.haVm(rec.name);
    const r = await guard('registering an HA VM', () => {
      let cmp = this.client.if(key, 'Create', '==', 0);
      if (opts.holder !== undefined) cmp = cmp.and(this.keys.member(opts.holder.host), 'Lease', '==', opts.holder.lease);
      return cmp.then(this.client.put(key).value(JSON.stringify(rec))).commit();
    });
    if (r.succeeded) return;
    if (opts.holder === undefined || await this.haEntry(rec.name)) throw new FerryError('VM_EXISTS', `The cluster already has an HA VM named "${rec.name}".`);
    throw new FerryError('CLUSTER_UNAVAILABLE', `${opts.holder.host} holds no live cluster lease now, so it registers no HA VM; try again once it has one.`);
  }

  /**
   * Writes `rec` only if the record is still at revision `rev` (nobody changed it since it was
   * read), with `ownerGone` only while that host has no member key, and with `holder` only while
   * that host's member key still lives under that lease. Resolves false otherwise: the caller reads
   * again and decides again.
   */
  async updateHa(rec: HaRecord, rev: string, opts: { ownerGone?: string; holder?: { host: string; lease: string } } = {}): Promise<boolean> {
    const key = this.keys.haVm(rec.name);
    const r = await guard('updating an HA VM', () => {
      let cmp = this.client.if(key, 'Mod', '==', rev);
      // A placement also needs the old owner still without a lease: it may have come back since it was read.
      if (opts.ownerGone !== undefined) cmp = cmp.and(this.keys.member(opts.ownerGone), 'Version', '==', 0);
      // A write that must land only while its writer's lease lives (ClusterNode.tookOver): once that
      // lease is gone, the others may have acted on its absence (the writer has fenced since).
      if (opts.holder !== undefined) cmp = cmp.and(this.keys.member(opts.holder.host), 'Lease', '==', opts.holder.lease);
      return cmp.then(this.client.put(key).value(JSON.stringify({ ...rec, updatedAt: new Date().toISOString() }))).commit();
    });
    return r.succeeded;
  }

  /**
   * Takes a free cluster-wide migration slot for move `job` (one key per slot, created only if
   * absent, living with `lease`, so a dead host's slots free themselves). Resolves false when all
   * `limit` are held.
   */
  async takeSlot(lease: Lease, job: string, limit: number): Promise<boolean> {
    const id = await this.leaseId(lease, 'taking a migration slot');
    const held = await guard('taking a migration slot', () => this.client.getAll().prefix(this.keys.slots).strings());
    if (Object.values(held).includes(job)) return true;
    for (let i = 0; i < limit; i++) {
      const key = `${this.keys.slots}${i}`;
      if (held[key] !== undefined) continue;
      const r = await guard('taking a migration slot', () => this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(job).lease(id)).commit());
      if (r.succeeded) return true;
    }
    return false;
  }

  /** Writes the cluster's settings (`config`) back if etcd has none (its data was lost); true when it wrote them. */
  async restoreConfig(): Promise<boolean> {
    const r = await guard('writing the cluster config back', () => this.client.if(this.keys.config, 'Create', '==', 0)
      .then(this.client.put(this.keys.config).value(JSON.stringify(this.config))).commit());
    return r.succeeded;
  }

  async releaseSlot(job: string): Promise<void> {
    const held = await guard('releasing a migration slot', () => this.client.getAll().prefix(this.keys.slots).strings());
    for (const [key, v] of Object.entries(held)) {
      if (v === job) await guard('releasing a migration slot', () => this.client.if(key, 'Value', '==', job).then(this.client.delete().key(key)).commit());
    }
  }

  /** The moves holding a cluster-wide slot under lease `leaseId` (one host's slots). */
  async slotsOf(leaseId: string): Promise<string[]> {
    const res = await guard('listing migration slots', () => this.client.getAll().prefix(this.keys.slots).exec());
    return res.kvs.filter((kv) => kv.lease === leaseId).map((kv) => kv.value.toString());
  }

  /** Every drain record (`drains/<host>`) as stored, with its mod revision; the agent owns the value's shape. */
  async drains(): Promise<{ host: string; value: string; rev: string }[]> {
    const res = await guard('listing drains', () => this.client.getAll().prefix(this.keys.drains).exec());
    return res.kvs.map((kv) => ({ host: kv.key.toString().slice(this.keys.drains.length), value: kv.value.toString(), rev: kv.mod_revision }));
  }

  /**
   * Writes `host`'s drain record only if it is still at revision `rev` ('0': only if there is none),
   * or, with `manager`, only while that host holds the manager key in the same term (a deposed
   * manager's ledger writes fail, also once it is elected again). Resolves false when the guard failed.
   */
  async putDrain(host: string, value: string, guardBy: { rev: string } | { manager: string; term: string }): Promise<boolean> {
    const key = this.keys.drain(host);
    const r = await guard('recording a drain', () => ('rev' in guardBy
      ? this.client.if(key, 'Mod', '==', guardBy.rev)
      : this.client.if(this.keys.manager, 'Value', '==', guardBy.manager).and(this.keys.manager, 'Create', '==', guardBy.term))
      .then(this.client.put(key).value(value)).commit());
    return r.succeeded;
  }

  /** Removes `host`'s drain record if it is still at revision `rev` (the host leaves maintenance). */
  async deleteDrain(host: string, rev: string): Promise<boolean> {
    const key = this.keys.drain(host);
    const r = await guard('ending a drain', () => this.client.if(key, 'Mod', '==', rev).then(this.client.delete().key(key)).commit());
    return r.succeeded;
  }

  /**
   * Takes `host` out of the cluster's records (`ferry cluster leave`, leave.ts): deletes its drain
   * record and writes each HA record of `rehome`, in one transaction, each only if still at the
   * revision read (a drain record not read must still be absent), and with `gone` only while `host`
   * holds no member key (it may have come back).
   * Resolves false when a guard failed: the caller reads again and decides again. etcd takes at most
   * 128 operations in a transaction by default, so the HA records go in batches of
   * {@link LEAVE_BATCH}; a batch that fails leaves the earlier ones written, and the next decision
   * plans only what is left.
   */
  async removeHost(host: string, plan: { deleteDrainRev?: string; rehome: readonly { rec: HaRecord; rev: string }[] }, gone: boolean): Promise<boolean> {
    const now = new Date().toISOString();
    for (let i = 0; i === 0 || i < plan.rehome.length; i += LEAVE_BATCH) {
      const batch = plan.rehome.slice(i, i + LEAVE_BATCH);
      const drainRev = i === 0 ? plan.deleteDrainRev : undefined;
      // The first batch also holds the drain record where it was read: at its revision, or absent
      // (a drain asked for since must not be left behind, nor a guard-free write happen).
      const drainGuard = i > 0 ? [] : [drainRev !== undefined ? [this.keys.drain(host), 'Mod', drainRev] as const : [this.keys.drain(host), 'Version', 0] as const];
      const guards: (readonly [string, 'Mod' | 'Version', string | number])[] = [
        ...(gone ? [[this.keys.member(host), 'Version', 0] as const] : []),
        ...drainGuard,
        ...batch.map((e) => [this.keys.haVm(e.rec.name), 'Mod', e.rev] as const),
      ];
      const [first, ...more] = guards;
      if (!first) continue;
      const r = await guard('removing a host from the cluster', () => more
        .reduce((c, [key, column, value]) => c.and(key, column, '==', value), this.client.if(first[0], first[1], '==', first[2]))
        .then(
          ...(drainRev !== undefined ? [this.client.delete().key(this.keys.drain(host))] : []),
          ...batch.map((e) => this.client.put(this.keys.haVm(e.rec.name)).value(JSON.stringify({ ...e.rec, updatedAt: now }))),
        ).commit());
      if (!r.succeeded) return false;
    }
    return true;
  }

  /** Removes an HA VM's record; with `rev`, only if it is still that revision (false when it changed). */
  async deleteHa(vm: string, rev?: string): Promise<boolean> {
    const key = this.keys.haVm(vm);
    if (rev === undefined) {
      await guard('removing an HA VM', () => this.client.delete().key(key).exec());
      return true;
    }
    const r = await guard('removing an HA VM', () => this.client.if(key, 'Mod', '==', rev).then(this.client.delete().key(key)).commit());
    return r.succeeded;
  }
}

/** Whether etcd has a quorum: each endpoint's own answer, and a verdict. */
export interface QuorumView { healthy: boolean; endpoints: { url: string; ok: boolean; leader: boolean; error?: string }[] }

/** Asks each endpoint alone for its status (1 s each, in parallel). Healthy: a majority answer and agree on a leader. */
export async function quorum(endpoints: string[], tls?: EtcdTls): Promise<QuorumView> {
  const answers = await Promise.all(endpoints.map(async (url) => {
    const c = etcdClient([url], tls, { dialTimeoutMs: 1_000, deadlineMs: 1_500 });
    try {
      const s = await c.maintenance.status();
      return { url, ok: true, leaderId: s.leader, self: s.header.member_id };
    } catch (e) {
      return { url, ok: false, leaderId: '0', self: '', error: e instanceof Error ? e.message : String(e) };
    } finally {
      c.close();
    }
  }));
  const votes = new Map<string, number>();
  for (const a of answers) if (a.ok && a.leaderId !== '0') votes.set(a.leaderId, (votes.get(a.leaderId) ?? 0) + 1);
  const best = Math.max(0, ...votes.values());
  return {
    healthy: best > endpoints.length / 2,
    endpoints: answers.map((a) => ({ url: a.url, ok: a.ok, leader: a.ok && a.leaderId === a.self, ...(a.error ? { error: a.error } : {}) })),
  };
}
