/**
 * One agent's membership of a cluster: its lease, its member record, self-fencing, carrying out
 * what etcd says it owns, and, when elected, the manager's work (manager.ts). Everything runs
 * from one loop that ticks every second, so the order of decisions is plain and nothing races
 * inside the agent; etcd's guarded transactions settle races between agents.
 */
import type { Lease } from 'etcd3';
import { FerryError } from '../errors/index.js';
import { feedWatchdog, fenceDecision } from './fencing.js';
import { managerTick, type ManagerMemory } from './manager.js';
import { adopt, changeHa, claimForStart, failback, reRegister, type HaChange, type OwnerParts } from './owner.js';
import { fenceTargets, settleMoves } from './moving.js';
import { DEFAULT_CLUSTER_MIGRATIONS, movedTo, newHaRecord, ran, type ClusterConfig, type HaEntry, type HaPolicyInput, type HaRecord } from './model.js';
import { ClusterStore, type EtcdTls } from './store.js';
import type { ClusterHost, NodeView, VmId } from './host.js';
import type { VmSpec } from '../vm/index.js';

export type { ClusterHost, LocalHaVm, NodeView } from './host.js';

const TICK_MS = 1_000;
/** Every how many ticks a host does its housekeeping (ClusterNode.housekeep). */
const HOUSEKEEP_EVERY = 5;
const PUBLISH_EVERY_MS = 3_000;
const FENCE_CHECK_MS = 500;

export class ClusterNode {
  readonly store: ClusterStore;
  private lease: Lease | undefined;
  private lastRenewOk = 0;
  private lastPublish = 0;
  private timer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private fencing = false;
  /** When the fence check under way started (a check that takes too long stops feeding the watchdog). */
  private checkStartedAt = 0;
  private ticking = false;
  private ticks = 0;
  private managerName: string | null = null;
  private readonly fenced = new Set<string>();
  /** The members at the last read that succeeded: the witnesses a fencing decision asks. */
  private members: { name: string; url: string }[] = [];
  /** HA VMs this node is starting now, and those whose move it settles (moving.ts). */
  private readonly starting = new Set<string>();
  private readonly handOversSeen = new Map<string, number>();
  /** Since when each running HA VM here has had no record (owner.ts reRegister). */
  private readonly unrecorded = new Map<string, number>();
  /** Since when a fence check has spared HA VMs etcd has no record of (0: none spared now). */
  private sparedSince = 0;
  private readonly settling = { busy: new Set<string>(), goneSince: new Map<string, number>() };
  private degraded: string | null = null;
  private readonly memory: ManagerMemory = { deadSince: new Map(), electedAt: 0, aliveSince: new Map(), strandedSince: new Map() };

  constructor(readonly config: ClusterConfig, private readonly host: ClusterHost, tls?: EtcdTls) {
    this.store = new ClusterStore(config, tls);
  }

  start(): void {
    this.lastRenewOk = Math.min(Date.now(), this.host.lastRenewal?.() ?? Date.now());
    // Fencing runs on a timer of its own: a tick can wait seconds on an etcd that does not answer.
    this.fenceTimer = setInterval(() => {
      feedWatchdog(this.host, { now: Date.now(), lastRenewOk: this.lastRenewOk, ttlMs: this.config.leaseTtlSec * 1000, fenceMarginSec: this.config.fenceMarginSec, checkStartedAt: this.fencing ? this.checkStartedAt : null });
      if (this.fencing) return;
      this.fencing = true;
      this.checkStartedAt = Date.now();
      void this.checkFence().catch((e: unknown) => this.host.log.error({ err: e }, 'fence check failed')).finally(() => { this.fencing = false; });
    }, FENCE_CHECK_MS);
    this.resume();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    // Not revoked: this host's QEMUs outlive the agent, and a revoked lease would let the manager
    // restart them elsewhere a few seconds after an agent restart. Unrenewed, it lasts its TTL.
    this.lease?.release();
    this.store.close();
  }

  /**
   * While leaving the cluster (src/agent/cluster-leave.ts): no more ticks (no reconcile, campaign or
   * manager's work), once the tick under way has ended. Fence checks and watchdog feeds go on, and
   * the lease is kept alive; `resume()` takes part again, `revoke()` ends it.
   */
  async pause(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.ticking) await new Promise((r) => setTimeout(r, 50));
  }

  /** Ticks again after `pause()`; the last renewal seen stands (`start()` would rewind it to the watchdog's). */
  resume(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.tick(); }, TICK_MS);
    void this.tick();
  }

  /** The last step of leaving: stops the loops, revokes the lease (the member key, any manager key and slots go at once) and closes the client. */
  async revoke(): Promise<void> {
    await this.pause();
    clearInterval(this.fenceTimer);
    while (this.fencing) await new Promise((r) => setTimeout(r, 50));
    try { if (this.lease) await this.store.revoke(this.lease); } finally { this.store.close(); }
  }

  /** How long ago this host's lease was last renewed, ms (peers deciding to fence compare it with their own). */
  sinceRenewMs(): number { return Date.now() - this.lastRenewOk; }
  /** True while this host's lease was renewed within half a TTL. */
  renewing(): boolean { return this.sinceRenewMs() < this.config.leaseTtlSec * 1000 * 0.5; }

  view(): NodeView {
    return {
      name: this.host.name, renewing: this.renewing(), lastRenewAt: this.lastRenewOk ? new Date(this.lastRenewOk).toISOString() : null,
      manager: this.managerName, isManager: this.managerName === this.host.name, fenced: [...this.fenced], degraded: this.degraded,
    };
  }

  /** Registers a new HA VM owned by this host, only while its lease lives. */
  async register(spec: VmSpec, policy: HaPolicyInput): Promise<void> { await this.createOwn(newHaRecord(spec, this.host.name, policy)); }

  /**
   * Sets an HA VM's state after a user's start or stop on this host (a stopped one is never
   * restarted). Only a record of this VM (its uuid) that this host owns changes.
   */
  async setState(vm: VmId, state: HaRecord['state']): Promise<void> {
    await this.update(vm.name, (r) => (r.owner === this.host.name && r.spec.uuid === vm.uuid ? (state === 'running' ? ran(r) : { ...r, state }) : undefined));
  }

  /** A user's start of an HA VM here: see owner.ts {@link claimForStart}. */
  async claimForStart(spec: VmSpec, register?: boolean): Promise<void> { await claimForStart(this.owner(), spec, register); }

  /** A user's change of an HA VM's policies or group (`ferry vm set`): see owner.ts {@link changeHa}. */
  async changeHa(spec: VmSpec, c: HaChange): Promise<HaRecord> { return changeHa(this.owner(), spec, c); }

  /**
   * After a move to this host ran the VM here: this host owns it now, and it is its new home. Only
   * while the lease held at the call lives (the record is read again at the write, so its revision
   * does not date the decision): a write held up past that lease's expiry would land after this
   * host fenced the VM and its source restarted it, and this host would start it a second time.
   */
  async tookOver(vm: VmId, from: string): Promise<void> {
    if (!this.lease) return; // no lease: the next tick's reconcile hands it over, if the VM still runs here
    const holder = await this.holder();
    await this.update(vm.name, (r) => (r.spec.uuid === vm.uuid && (r.owner === from || r.owner === this.host.name) ? movedTo(r, this.host.name, from) : undefined), holder);
  }

  /** Removes the record of a deleted HA VM: only its own (its uuid), not another VM's of that name. */
  async unregister(vm: VmId): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const e = await this.store.haEntry(vm.name);
      if (!e || e.rec.spec.uuid !== vm.uuid || await this.store.deleteHa(vm.name, e.rev)) return;
    }
    throw new FerryError('VM_BUSY', `The cluster record of "${vm.name}" kept changing while its delete removed it: the VM is gone from ${this.host.name}, its record stays in etcd (\`ferry cluster status\` shows it).`);
  }

  /** A cluster-wide slot for a live move this host sends (false: the cluster's limit is reached, or etcd is away). */
  async takeMigrationSlot(job: string): Promise<boolean> {
    if (!this.lease || !this.renewing()) return false;
    return this.store.takeSlot(this.lease, job, this.config.maxMigrations ?? DEFAULT_CLUSTER_MIGRATIONS);
  }

  async releaseMigrationSlot(job: string): Promise<void> { await this.store.releaseSlot(job); }

  /** What owner.ts (failback, taking over a handed-over VM) uses of this node. */
  private owner(): OwnerParts {
    return {
      store: this.store, host: this.host, update: (name, change) => this.update(name, change),
      fenceMarginMs: this.config.fenceMarginSec * 1000, handOversSeen: this.handOversSeen,
      createOwn: (rec) => this.createOwn(rec),
    };
  }

  /** Creates a record owned by this host, only while its lease lives (VM_EXISTS when one of that name exists). */
  private async createOwn(rec: HaRecord): Promise<void> { await this.store.createHa(rec, { holder: await this.holder() }); }

  /** This host and its lease: a write guarded by it lands only while that lease lives (CLUSTER_UNAVAILABLE without one). */
  private async holder(): Promise<{ host: string; lease: string }> { return { host: this.host.name, lease: await this.store.leaseId(this.requireLease(), 'reading this host\'s lease') }; }

  /** Read, change, write guarded by revision; retried a few times when someone else wrote in between. */
  private async update(name: string, change: (r: HaRecord) => HaRecord | undefined, holder?: { host: string; lease: string }): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      const e = await this.store.haEntry(name);
      const next = e ? change(e.rec) : undefined;
      if (!e || !next) return false;
      if (await this.store.updateHa(next, e.rev, holder ? { holder } : {})) return true;
    }
    return false;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.ensureLease();
      if (!this.renewing()) return;
      this.members = (await this.store.members()).map((m) => ({ name: m.name, url: m.url }));
      const entries = await this.store.haEntries();
      this.host.rememberPolicies?.(entries.map((e) => e.rec));
      settleMoves(this.host, entries, this.members, this.settling, this.config.fenceMarginSec * 1000);
      await this.reconcile(entries);
      await reRegister(this.owner(), this.host.localHa(), entries, this.unrecorded);
      this.managerName = await this.store.campaign(this.requireLease(), this.host.name);
      if (this.managerName === this.host.name) {
        if (this.memory.electedAt === 0) { this.memory.electedAt = Date.now(); this.host.log.info('elected cluster manager'); }
        await managerTick(this.store, entries, this.memory);
      } else {
        this.memory.electedAt = 0;
        for (const m of [this.memory.deadSince, this.memory.aliveSince, this.memory.strandedSince]) m.clear();
      }
      await this.host.afterTick?.(this.store, this.managerName === this.host.name);
      if (++this.ticks % HOUSEKEEP_EVERY === 0) await this.housekeep();
      this.degraded = null;
    } catch (e) {
      this.host.log.warn({ err: e }, 'cluster tick failed');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Every few ticks: the manager writes the cluster's settings back when etcd lost them (a host
   * joins with them); each host releases the cluster-wide slots it holds for moves no longer here.
   */
  private async housekeep(): Promise<void> {
    if (this.managerName === this.host.name && await this.store.restoreConfig().catch(() => false)) this.host.log.warn('the cluster\'s settings were missing from etcd (its data lost?): wrote them back');
    const holds = this.host.moveHoldsSlot;
    if (!holds || !this.lease) return;
    for (const job of await this.store.slotsOf(await this.store.leaseId(this.lease, 'listing this host\'s migration slots'))) {
      if (holds(job)) continue;
      await this.store.releaseSlot(job);
      this.host.log.info({ job }, 'released a cluster migration slot its move no longer holds');
    }
  }

  private requireLease(): Lease {
    if (!this.lease) throw new FerryError('CLUSTER_UNAVAILABLE', 'This host holds no cluster lease yet.');
    return this.lease;
  }

  /** Grants a lease when there is none (first tick, or the last one was lost) and publishes this host. */
  private async ensureLease(): Promise<void> {
    if (!this.lease) {
      const lease = this.store.lease();
      lease.on('keepaliveSucceeded', () => { this.lastRenewOk = Date.now(); });
      lease.on('lost', (err) => {
        this.host.log.warn({ err }, 'cluster lease lost');
        if (this.lease === lease) this.lease = undefined;
      });
      this.lease = lease;
      const id = await this.store.leaseId(lease, 'granting this host\'s lease');
      this.lastRenewOk = Date.now();
      this.lastPublish = 0;
      this.host.log.info({ lease: id }, 'cluster lease granted');
    }
    if (Date.now() - this.lastPublish >= PUBLISH_EVERY_MS) {
      await this.store.putMember(this.lease, { ...this.host.facts(), name: this.host.name, url: this.host.url, updatedAt: new Date().toISOString() });
      this.lastPublish = Date.now();
    }
  }

  /** Fences this host's HA VMs (running or in a move: moving.ts) when its lease is about to lapse and peers do not say etcd is down for all. */
  private async checkFence(): Promise<void> {
    const since = Date.now() - this.lastRenewOk;
    const ttl = this.config.leaseTtlSec * 1000;
    let d = fenceDecision(since, ttl);
    if (d.action === 'none') { this.sparedSince = 0; return; }
    const local = this.host.localHa();
    let running = fenceTargets(local);
    if (running.length === 0) return;
    // etcd answers and still holds this host's member key: its lease has not expired, and a
    // placement of its VMs needs that key gone (manager.ts), so nothing can take them yet. This is
    // the moment after a lost quorum returns, before this host's own renewal gets through. When
    // the key does expire, the survivors wait the fence margin, and this check runs every 0.5 s.
    // If etcd answers without that key, only a VM it holds a record of can be placed elsewhere: one
    // without (etcd rebuilt empty after its data was lost) is spared, for twice the fence margin at
    // most (a host whose lease does not come back then fences it too); this host registers it again.
    // The peers are asked at the same time (what they say is used only if etcd does not hold the
    // key): one after the other, the two FENCE_ASK_MS waits would outlast checkStuckMs.
    const others = this.members.filter((m) => m.name !== this.host.name);
    const [view, peers] = await Promise.all([
      this.store.fenceView(this.host.name, local.filter((v) => running.includes(v.name))),
      others.length > 0 ? this.host.peerLeases(others, this.config.name) : undefined,
    ]);
    if (view?.alive) return;
    if (view && view.recorded.length < running.length && Date.now() - (this.sparedSince ||= Date.now()) < 2000 * this.config.fenceMarginSec) {
      running = view.recorded.map((v) => v.name);
    }
    if (running.length === 0) return;
    d = peers === undefined
      ? { action: 'hold', reason: 'no other member is known: nobody could take these VMs over' }
      : fenceDecision(since, ttl, peers);
    if (d.action === 'hold') {
      if (this.degraded !== d.reason) this.host.log.warn({ reason: d.reason }, 'cluster degraded');
      this.degraded = d.reason;
      return;
    }
    if (d.action !== 'fence') return;
    // The asking took time: a renewal (or a new lease) may have come through meanwhile.
    if (fenceDecision(Date.now() - this.lastRenewOk, ttl).action === 'none') return;
    this.host.log.warn({ vms: running, reason: d.reason }, 'fencing: stopping HA VMs');
    await this.host.fence(running);
    for (const n of running) this.fenced.add(n);
  }

  /**
   * Makes this host match etcd: starts what it owns and does not run (placed here, or crashed
   * with the host), forgets what another host owns now (it ran here before a failure), and starts
   * a failback move the manager asked for.
   */
  private async reconcile(entries: HaEntry[]): Promise<void> {
    const local = new Map(this.host.localHa().map((v) => [v.name, v]));
    for (const { rec, rev } of entries) {
      const named = local.get(rec.name);
      // A VM of that name here that is another VM (another uuid: a record lost and the name used
      // again) is never this record's copy: not fenced, forgotten or taken for it.
      const here = named?.uuid === rec.spec.uuid ? named : undefined;
      if (named && !here && rec.owner !== this.host.name) {
        this.host.log.warn({ vm: rec.name, owner: rec.owner, uuid: named.uuid, recorded: rec.spec.uuid }, 'an HA VM of this name here is another VM than the cluster\'s record: left alone');
        continue;
      }
      // A move from the owner ran the VM here (its job may still wait for the source's confirm) and
      // the hand-over to etcd has not landed yet: before the busy check, so that a source cut off
      // after the switch-over cannot leave the VM to the manager's restart while it runs here.
      if (rec.owner !== this.host.name && here?.running && this.host.arrivedFrom(rec.name) === rec.owner) {
        await this.tookOver(rec.spec, rec.owner);
        continue;
      }
      if (here?.busy || this.starting.has(rec.name)) continue;
      if (rec.owner !== this.host.name) {
        if (here?.running) {
          // Never expected (claims are guarded and a cut-off host fences): the owner's copy wins.
          this.host.log.error({ vm: rec.name, owner: rec.owner }, 'an HA VM another host owns runs here too: stopping this copy');
          await this.host.fence([rec.name]);
        } else if (here) {
          this.host.log.info({ vm: rec.name, owner: rec.owner }, 'forgetting an HA VM another host owns now');
          await this.host.forget(rec.name);
          this.fenced.delete(rec.name);
        }
        continue;
      }
      if (rec.handedOverFrom !== undefined) {
        await adopt(this.owner(), rec, rev, here !== undefined).catch((e: unknown) => this.host.log.warn({ vm: rec.name, err: e }, 'taking over a handed-over HA VM failed'));
        continue;
      }
      if (rec.state === 'stopped' || rec.state === 'failed') continue;
      // Not for a VM the manager placed here since ('placing'): it came back after leaving, e.g.
      // moved home by a failback whose host died since. Handing it over again would undo the
      // restart at every tick.
      const leftTo = here || rec.state === 'placing' ? undefined : this.host.leftTo(rec.name);
      if (leftTo !== undefined) {
        // It moved away and the destination's hand-over has not landed: hand it over from here,
        // never start it again (the destination runs it).
        this.host.log.info({ vm: rec.name, to: leftTo }, 'handing an HA VM that moved away over to its new host');
        await this.store.updateHa(movedTo(rec, leftTo, this.host.name), rev);
        continue;
      }
      if (!here?.running) {
        // In the background and side by side: a TCG boot takes seconds, and the loop must keep
        // renewing, fencing and managing meanwhile.
        if (!this.starting.has(rec.name)) {
          this.starting.add(rec.name);
          void this.startOwned(rec, rev)
            .catch((e: unknown) => this.host.log.error({ vm: rec.name, err: e }, 'could not claim an HA VM'))
            .finally(() => this.starting.delete(rec.name));
        }
        continue;
      }
      if (rec.state === 'placing') {
        await this.store.updateHa({ ...rec, state: 'running' }, rev);
        continue; // the revision changed: a failback waits for the next tick's read
      }
      if (rec.moveTo !== undefined) await failback(this.owner(), rec, rev);
    }
  }

  /**
   * Starts a VM etcd says this host owns. The claim is written first, guarded by the revision
   * read: if the manager gave the VM to another host in between, the claim fails and nothing
   * starts here; once the claim is in, the manager's own guarded write fails instead.
   */
  private async startOwned(rec: HaRecord, rev: string): Promise<void> {
    const claim: HaRecord = { ...rec, state: 'placing', note: `starting on ${this.host.name}` };
    if (!(await this.store.updateHa(claim, rev))) return;
    this.host.log.info({ vm: rec.name, state: rec.state }, 'starting an HA VM this host owns');
    try {
      await this.host.startHa(rec.spec);
      this.fenced.delete(rec.name);
      await this.update(rec.name, (r) => (r.owner === this.host.name ? { ...ran(r), note: `started on ${this.host.name}` } : undefined));
    } catch (e) {
      if (e instanceof FerryError && e.code === 'VM_BUSY') {
        // Another action holds the VM here (a user's start): no failure of this host; the next tick looks again.
        this.host.log.info({ vm: rec.name }, 'an HA VM this host owns is busy with another action; its start waits');
        return;
      }
      this.host.log.error({ vm: rec.name, err: e }, 'could not start an HA VM');
      const note = `start on ${this.host.name} failed: ${e instanceof Error ? e.message : String(e)}`;
      const failedOn = [...new Set([...(rec.failedOn ?? []), this.host.name])];
      await this.update(rec.name, (r) => (r.owner === this.host.name ? { ...r, state: 'failed', note, failedOn } : undefined));
    }
  }
}
