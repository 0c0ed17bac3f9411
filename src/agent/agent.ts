import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus as osCpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { Inventory, isActive, tapName, type VmRecord } from '../vm/index.js';
import { Pools, poolSpace, type Pool } from '../storage/index.js';
import { CpuModelProbe, QEMU_BIN, holdQuickAck, sweepLinks, sweepQuickAck, tunnelName, isQemuAlive, needsRamTrim, parseQemuVersion, resolveAccel, runFiles, type Accel, type AccelProbe } from '../qemu/index.js';
import { findImage, GUEST_READY_MARKER } from '../image/index.js';
import { openDb, readPidFile, type Db } from '../util/index.js';
import type { AgentConfig } from './config.js';
import { EventBus } from './events.js';
import { Supervisor } from './supervisor.js';
import { VmActions } from './vm-actions.js';
import { Slots } from './slots.js';
import { StorageMover } from './storage-move.js';
import { setVmSettings, type HaPolicies, type VmSettingsInput } from './vm-settings.js';
import { HostSettingsStore, settingsDefaults } from './settings-store.js';
import { TokenStore } from './tokens.js';
import { AuditLog } from './audit.js';
import { checkCpuModel, hostFacts } from './host-facts.js';
import { toVmView, type HostView, type VmView } from './views.js';
import { HostMaintenance } from './maintenance.js';
import { ClusterLink } from './cluster-link.js';
import type { LeaveResult } from './cluster-leave.js';
import { ClusterDrains } from './cluster-drain.js';
import { clusterHost, ranHere } from './cluster-host.js';
import { WatchdogFeeder } from './watchdog.js';
import { HaPolicyMemory } from './ha-policies.js';
import { askAddresses, IpAllocator, PEER_ASK_TIMEOUT_MS } from './ip-allocator.js';
import { DEFAULT_POLICY, faultPoint, JobStore, MigrationService, PeerClient, summarize, type MigrationHost } from '../migration/index.js';
import { FerryError } from '../errors/index.js';
import { ensureDhParams, loadTls, type TlsMaterial } from '../security/index.js';


const run = promisify(execFile);
export const AGENT_VERSION = '0.1.0';

/** A pool's sizes for the host view, or why its file system cannot be read (the view still answers). */
function poolView(p: Pool): { freeBytes: number; totalBytes: number; error: string | null } {
  try {
    return { ...poolSpace(p), error: null };
  } catch (e) {
    return { freeBytes: 0, totalBytes: 0, error: e instanceof Error ? e.message : String(e) };
  }
}

/** ferryd's composition root: wires inventory, storage, QEMU and the actions every transport calls. */
export class Agent {
  readonly db: Db;
  readonly inv: Inventory;
  readonly pools: Pools;
  readonly bus = new EventBus();
  readonly sup: Supervisor;
  readonly vms: VmActions;
  /** Host-wide limits on concurrent operations (storage copies: maxStorageMigrations). */
  readonly slots: Slots;
  readonly storage: StorageMover;
  readonly jobs: JobStore;
  readonly migrations: MigrationService;
  /** The host's migration settings (`ferry host settings`), read by every move and disk copy. */
  readonly settings: HostSettingsStore;
  /** API tokens and their roles (`ferry token`); the API checks every TCP request against them. */
  readonly tokens: TokenStore;
  /** Mutating API requests: who, what, when (`ferry audit`). */
  readonly audit: AuditLog;
  /** Drain, resume and the maintenance state that refuses new VMs and incoming moves (`ferry host drain`). */
  readonly maintenance: HostMaintenance;
  /** Cluster mode (`ferry cluster create/join`): etcd membership, HA, fencing; idle on a standalone host. */
  readonly cluster: ClusterLink;
  /** In a cluster: drains recorded in etcd, run by the manager (`ferry host drain` of a member). */
  readonly drains: ClusterDrains;
  /** New VMs' addresses, unique among the VMs of this host, its peers and its cluster; reservations for VMs that moved away. */
  readonly ipam: IpAllocator;
  /** The host's certificate and QEMU TLS folder (config `tls`), read once at start. */
  private readonly tls: { material: TlsMaterial; dir: string } | undefined;
  /** The fencing watchdog beside this agent (cluster mode): fed by the cluster node, asked by moves whether it powered their QEMU off. */
  private readonly watchdog: WatchdogFeeder;
  private accelProbe?: Promise<AccelProbe>;
  private accelResult?: AccelProbe;
  /** The CPU models and machine types this host's QEMU offers (compatibility report, `vm create --cpu-model`). */
  readonly cpuModels: CpuModelProbe;
  private constructor(readonly config: AgentConfig, readonly log: Logger, private readonly machine: string, private readonly qemuVersion: string) {
    this.tls = config.tls ? { material: loadTls(config.tls), dir: config.tls.dir } : undefined;
    if (config.tls) {
      // QEMU's TLS servers read it; without it each incoming move waits ~200 ms for GnuTLS to make parameters (dh-params.ts).
      const dh = ensureDhParams(config.tls.dir);
      if (dh.kind === 'written') log.info({ dir: config.tls.dir }, 'wrote dh-params.pem (RFC 7919 ffdhe3072) for QEMU\'s TLS servers');
      if (dh.kind === 'failed') log.warn({ err: dh.error, dir: config.tls.dir }, 'could not write dh-params.pem: QEMU will generate Diffie-Hellman parameters for every incoming move (about 200 ms each)');
    }
    this.db = openDb(join(config.stateDir, 'ferry.db'));
    this.cpuModels = new CpuModelProbe(() => this.accel(), qemuVersion, join(config.stateDir, 'cpu-models.json'));
    this.inv = new Inventory(this.db);
    this.pools = new Pools(config.pools);
    for (const p of this.pools.list()) {
      const { error } = poolView(p);
      if (error) log.warn({ pool: p.name, error }, 'a storage pool cannot be read; it is unavailable until it can');
    }
    this.sup = new Supervisor(this.inv, log);
    this.inv.onTransition((vm, from, to, ev) => {
      log.info({ vm, from, to, event: ev.type }, 'vm state');
      this.bus.emit('vm.state', { vm, from, to, host: config.hostName });
    });
    this.ipam = new IpAllocator({
      host: config.hostName, range: config.vmNetwork, db: this.db, log, peers: config.peers,
      local: () => this.inv.list().map((r) => ({ uuid: r.spec.uuid, name: r.spec.name, ip: r.spec.ip, arriving: this.jobs.activeFor(r.spec.name)?.role === 'destination' })),
      cluster: () => this.cluster.addressSources(),
      ask: (p) => askAddresses(new PeerClient(p.url, p.name, PEER_ASK_TIMEOUT_MS, this.tls?.material), p.name),
    });
    this.vms = new VmActions({
      config, inv: this.inv, pools: this.pools, sup: this.sup, log, machine, qemuVersion, ipam: this.ipam,
      accel: () => this.accel(), capacity: () => this.capacity(), checkCpuModel: (m) => checkCpuModel(this.cpuModels, m),
      admit: (what) => this.maintenance.admit(what),
      cluster: {
        checkHa: (shared) => this.cluster.checkHa(shared), registered: (spec, p) => this.cluster.registered(spec, p),
        claimForStart: (spec, register) => this.cluster.claimForStart(spec, register), started: (spec) => this.cluster.started(spec), stopped: (spec) => this.cluster.stopped(spec), deleted: (spec) => this.cluster.deleted(spec),
        owner: (spec) => this.cluster.owner(spec),
      },
    });
    this.settings = new HostSettingsStore(this.db, settingsDefaults(config));
    this.tokens = new TokenStore(this.db);
    this.audit = new AuditLog(this.db);
    this.slots = new Slots(() => ({ storage: this.settings.get().maxStorageMigrations }));
    this.storage = new StorageMover({
      inv: this.inv, pools: this.pools, slots: this.slots, log, qmp: (name) => this.sup.qmp(name),
      lockVm: (name, what) => this.vms.tryLock(name, what), emit: (type, data) => this.bus.emit(type, data),
    });
    this.jobs = new JobStore(this.db, { onListenerError: (err) => log.error({ err }, 'job listener failed') });
    this.jobs.onChange((c) => {
      if (c.kind === 'progress') return; // progress reaches clients through migration.progress events
      const j = c.job;
      log.info({ job: j.id, vm: j.vm, role: j.role, state: j.state }, 'migration job');
      // As soon as the VM runs here (cluster-host.ts, ranHere): a source cut off after the switch-over never confirms.
      // Not for a VM powered off here since (fenced): the cluster may have restarted it elsewhere.
      const arrived = j.role === 'destination' && ranHere(j) ? this.inv.find(j.vm) : undefined;
      if (arrived && isActive(arrived.state)) {
        const spec = arrived.spec;
        void this.cluster.movedHere(spec, j.source).catch((err: unknown) => log.warn({ err, vm: j.vm }, 'could not record the move in the cluster'));
      }
      this.bus.emit('migration.state', { ...summarize(j), role: j.role });
    });
    this.watchdog = new WatchdogFeeder(config.stateDir, log);
    this.migrations = new MigrationService(this.migrationHost());
    this.cluster = new ClusterLink(this.db, clusterHost({
      config, log, watchdog: this.watchdog, inv: this.inv, vms: this.vms, jobs: this.jobs, migrations: this.migrations, capacity: () => this.capacity(),
      policies: new HaPolicyMemory(this.db, log),
      inMaintenance: () => this.maintenance.state() !== 'active', migrationHost: () => this.migrationHost(),
      afterTick: (store, isManager) => this.drains.tick(store, isManager),
    }), log, config.etcdTls ?? config.tls);
    this.maintenance = new HostMaintenance({
      db: this.db, host: config.hostName, log, inv: this.inv, jobs: this.jobs, migrations: this.migrations,
      migrationHost: () => this.migrationHost(), peers: () => config.peers.map((p) => p.name),
      capacity: () => this.capacity(), usedMemoryMiB: () => this.vms.usedMemoryMiB(),
      startVm: (name) => this.vms.start(name), stopVm: (name) => this.vms.stop(name), emit: (type, data) => this.bus.emit(type, data),
      cluster: { active: () => this.cluster.active !== undefined, request: (rec) => this.drains.request(rec), release: () => this.drains.release() },
    });
    this.drains = new ClusterDrains({
      host: config.hostName, log, maintenance: this.maintenance, migrations: this.migrations, jobs: this.jobs, migrationHost: () => this.migrationHost(),
      stopVm: (name) => this.vms.stop(name), store: () => this.cluster.active?.store,
      // A manager cut off from etcd stops starting moves once its lease may have expired, when its post may pass to another.
      isManager: () => {
        const n = this.cluster.active;
        const v = n?.view();
        return !!n && !!v?.isManager && v.lastRenewAt !== null && Date.now() - Date.parse(v.lastRenewAt) < n.config.leaseTtlSec * 1000;
      },
    });
  }

  /** The agent as the migration executor sees it (src/migration never imports the agent). */
  migrationHost(): MigrationHost {
    const { config, log } = this;
    return {
      name: config.hostName, migrationAddress: config.listen.host, bridge: config.bridge, log, jobs: this.jobs, inv: this.inv,
      holdQuickAck: (address) => holdQuickAck(address, (msg, err) => log.warn({ err, address }, msg)),
      convergence: { ...DEFAULT_POLICY, ...config.convergence },
      ...(this.tls ? { tls: this.tls } : {}),
      clusterSlots: { take: (job) => this.cluster.takeMigrationSlot(job), release: (job) => this.cluster.releaseMigrationSlot(job) },
      watchdogFired: (vm, since) => this.watchdog.firedOn(vm, since),
      haRefusal: () => this.cluster.haRefusal(),
      peerUrl: (host) => {
        const p = config.peers.find((x) => x.name === host);
        if (!p) throw new FerryError('UNKNOWN_HOST', `No host named "${host}" is a peer of ${config.hostName}.`);
        return p.url;
      },
      lockVm: (name, what) => this.vms.tryLock(name, what),
      qmp: (name) => this.sup.qmp(name),
      checkCapacity: (mib) => this.vms.checkCapacity(mib),
      startIncoming: (spec) => this.vms.startIncoming(spec),
      discardIncoming: (name, deleteDisks) => this.vms.discard(name, deleteDisks),
      releaseSource: (name, deleteDisks, destination) => this.vms.releaseMoved(name, destination, deleteDisks),
      powerOffKept: (name, reason) => this.vms.powerOffKept(name, reason),
      pools: this.pools,
      takeStorageSlot: () => this.slots.tryTake('storage'),
      settings: () => this.settings.get(),
      inMaintenance: () => { const s = this.maintenance.state(); return s === 'active' ? null : s; },
      hostFacts: (model) => hostFacts({ cpuModels: this.cpuModels, capacity: () => this.capacity(), usedMemoryMiB: () => this.vms.usedMemoryMiB(), bridge: config.bridge,
        tcgDirtyBug: async () => needsRamTrim(await this.accel(), this.qemuVersion) }, model),
      emit: (type, data) => this.bus.emit(type, data),
      fault: (point) => faultPoint(config.stateDir, point),
    };
  }

  /** Builds the agent, resolves the machine type and adopts VMs that kept running while it was away. */
  static async create(config: AgentConfig, log: Logger): Promise<Agent> {
    const { stdout } = await run(QEMU_BIN, ['-machine', 'help']);
    const machine = /q35\s+.*\(alias of ([\w.-]+)\)/.exec(stdout)?.[1] ?? 'q35';
    const ver = await run(QEMU_BIN, ['--version']);
    const agent = new Agent(config, log, machine, parseQemuVersion(ver.stdout));
    agent.checkBridge();
    await agent.adopt();
    agent.cluster.resume();
    void sweepQuickAck().then((n) => { if (n > 0) log.info({ routes: n }, 'removed quick-ACK routes left by an earlier run'); });
    void agent.migrations.recover().catch((e: unknown) => log.error({ err: e }, 'migration recovery failed'));
    return agent;
  }

  /**
   * Deletes the taps and tunnels an earlier ferryd left on this host (qemu/links.ts): those of no VM
   * it knows and no unfinished move, judged after the listing. ferryd's own start only: agents in
   * tests share their namespace with whatever else runs there.
   */
  async sweepLinks(): Promise<void> {
    const keep = (name: string): boolean => this.inv.list().some((v) => tapName(v.spec.uuid) === name) || this.jobs.active().some((j) => tunnelName(j.id) === name);
    await sweepLinks(keep).then((gone) => { if (gone.length > 0) this.log.info({ links: gone }, 'removing taps and tunnels left by an earlier run'); },
      (e: unknown) => this.log.warn({ err: e }, 'could not look for taps and tunnels left by an earlier run'));
  }

  /** The accelerator for new QEMUs, probed once in the background and then cached per host and kernel. */
  accel(): Promise<Accel> {
    this.accelProbe ??= (async () => {
      const image = findImage(this.config.imageDir);
      const r = await resolveAccel(this.config.accel, { kernel: image.kernel, initrd: image.initrd, marker: GUEST_READY_MARKER },
        join(this.config.stateDir, 'accel.json'));
      this.accelResult = r;
      this.log.info(r, 'accelerator');
      return r;
    })();
    return this.accelProbe.then((r) => r.accel, (e) => { this.accelProbe = undefined; throw e; });
  }

  /**
   * Warns when the VM bridge has no fixed MAC: Linux then gives it the lowest MAC of its ports, so
   * adding a VM's tap can change the host address's MAC under its peers' ARP caches.
   */
  private checkBridge(): void {
    try {
      const t = readFileSync(`/sys/class/net/${this.config.bridge}/addr_assign_type`, 'utf8').trim();
      if (t !== '3') this.log.warn({ bridge: this.config.bridge }, 'the VM bridge has no fixed MAC address; set one (see docs/install.md)');
    } catch {
      this.log.warn({ bridge: this.config.bridge }, 'the VM bridge does not exist');
    }
  }

  capacity(): { memoryMiB: number; cpus: number } {
    return {
      memoryMiB: this.config.memoryMiB ?? Math.floor((totalmem() / 1024 / 1024) * 0.8),
      cpus: this.config.cpus ?? osCpus().length,
    };
  }

  /**
   * Re-attaches to QEMUs that outlived the previous agent (pidfile + QMP socket) and marks VMs whose
   * QEMU is gone as failed. Runs before the API opens, so nobody sees a half-adopted inventory.
   */
  private async adopt(): Promise<void> {
    for (const vm of this.inv.list()) {
      if (!isActive(vm.state)) continue;
      const files = runFiles(this.vms.runDir(vm.spec.name));
      const pid = vm.pid ?? readPidFile(files.pid);
      if (pid && isQemuAlive(pid, vm.spec.uuid)) {
        try {
          const qmp = await this.sup.attach(vm.spec.name, files.qmp, pid, vm.spec.uuid);
          const st = await qmp.execute('query-status', undefined, { timeoutMs: 5000 });
          if (vm.state !== 'migrating') this.inv.apply(vm.spec.name, { type: st.running ? 'resumed' : 'paused' }, pid);
          this.log.info({ vm: vm.spec.name, pid }, 'adopted running VM');
          continue;
        } catch (e) {
          this.log.error({ vm: vm.spec.name, err: e }, 'could not adopt a live QEMU');
          continue;
        }
      }
      this.inv.apply(vm.spec.name, { type: 'crashed', reason: 'QEMU was gone when the agent started' }, null);
    }
  }

  /** `ferry vm set` (src/agent/vm-settings.ts). */
  setVm(name: string, input: VmSettingsInput): Promise<{ vm: VmRecord; ha: HaPolicies | null }> {
    return setVmSettings({
      inv: this.inv, lockVm: (n, what) => this.vms.tryLock(n, what), moving: (n) => this.jobs.activeFor(n) !== undefined,
      changeHa: (spec, c) => this.cluster.changeHa(spec, c),
    }, name, input);
  }

  vmView(r: VmRecord): VmView {
    return toVmView(r, this.config.hostName, this.jobs.activeFor(r.spec.name)?.role === 'destination');
  }

  hostView(): HostView {
    const cap = this.capacity();
    const vms = this.inv.list();
    const maintenance = this.maintenance.view();
    return {
      name: this.config.hostName, url: this.config.url, version: AGENT_VERSION, qemuVersion: this.qemuVersion,
      machine: this.machine, accel: this.accelResult?.accel ?? null, accelReason: this.accelResult?.reason ?? null,
      memoryMiB: cap.memoryMiB, freeMemoryMiB: this.vms.freeMemoryMiB(), cpus: cap.cpus,
      vmCount: vms.length, runningVmCount: vms.filter((v) => isActive(v.state)).length,
      state: maintenance.state === 'active' ? 'ready' : maintenance.state, maintenance,
      pools: this.pools.list().map((p) => ({ name: p.name, path: p.path, sharedId: p.sharedId ?? null, ...poolView(p) })),
      settings: this.settings.get(),
      addresses: {
        rangeStart: this.config.vmNetwork.rangeStart, rangeEnd: this.config.vmNetwork.rangeEnd, prefixLength: this.config.vmNetwork.prefixLength,
        reservations: this.ipam.kept().map(({ vm, uuid, ip, host, since }) => ({ vm, uuid, ip, host, since })),
      },
    };
  }

  /** `ferry cluster leave HOST` asked of this host: this host leaves, or takes out a member that holds no lease (cluster-leave.ts). */
  leaveCluster(host: string): Promise<LeaveResult> {
    return this.cluster.leave(host, {
      localVms: () => this.inv.list().filter((v) => isActive(v.state) || this.vms.isBusy(v.spec.name) || this.jobs.activeFor(v.spec.name) !== undefined)
        .map((v) => v.spec.name),
      localRun: () => this.maintenance.view().running,
      localState: () => this.maintenance.state(),
      localHa: () => this.inv.list().filter((v) => v.spec.ha).map((v) => v.spec.name),
    });
  }

  close(): void {
    void this.cluster.close();
    this.sup.detachAll();
    this.db.close();
  }
}
