import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { isActive, macFromUuid, newUuid, tapName, validateCreate, type CreateVmInput, type VmRecord, type VmSpec } from '../vm/index.js';
import { createImage, deleteImage, poolSpace, type Pools } from '../storage/index.js';
import { ensureTap, deleteTap, startQemu, signalQemu, waitGone, runFiles, ramTrimFor, type Accel } from '../qemu/index.js';
import { findImage, guestKernelArgs, GUEST_READY_MARKER } from '../image/index.js';
import type { Qmp } from '../qmp/index.js';
import type { VmDeps } from './vm-deps.js';

/** The CPU model of a VM created without one: a baseline every x86-64 host offers, so the VM can move anywhere. */
export const DEFAULT_CPU_MODEL = 'qemu64';

/** VM lifecycle actions: the one place REST, CLI and peer RPC reach through the agent. */
export class VmActions {
  private readonly busy = new Set<string>();

  constructor(private readonly d: VmDeps) {}

  runDir(name: string): string { return join(this.d.config.stateDir, 'vms', name); }

  /** Runs `fn` holding the VM's lock; a second action on the same VM gets VM_BUSY. */
  async withLock<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(name)) throw new FerryError('VM_BUSY', `The VM "${name}" is busy with another action; ${what} must wait.`);
    this.busy.add(name);
    try { return await fn(); } finally { this.busy.delete(name); }
  }

  isBusy(name: string): boolean { return this.busy.has(name); }

  /** Takes the VM's lock until the returned function is called (a move holds it throughout). */
  tryLock(name: string, what: string): () => void {
    if (this.busy.has(name)) throw new FerryError('VM_BUSY', `The VM "${name}" is busy with another action; ${what} must wait.`);
    this.busy.add(name);
    return () => { this.busy.delete(name); };
  }

  /** Throws INSUFFICIENT_MEMORY unless `wantMiB` fits in what is free. */
  checkCapacity(wantMiB: number): void { this.checkMemory(wantMiB); }

  /** Memory (MiB) used by VMs that have a QEMU process or are being started. */
  usedMemoryMiB(): number {
    return this.d.inv.list().filter((v) => isActive(v.state) || this.busy.has(v.spec.name))
      .reduce((s, v) => s + v.spec.memoryMiB, 0);
  }

  /** Memory (MiB) this host can still give VMs: its capacity less what they use. */
  freeMemoryMiB(): number { return this.d.capacity().memoryMiB - this.usedMemoryMiB(); }

  /** Creates a VM (its disk too) and starts it; on any failure nothing is left behind. */
  async create(input: CreateVmInput): Promise<VmRecord> {
    const cap = this.d.capacity();
    const pool = this.d.pools.get(input.diskPool ?? 'default');
    // The pool's file system is read only for a VM with a disk (one without needs no pool).
    const v = validateCreate(input, { maxCpus: cap.cpus, minMemoryMiB: 64, maxDiskBytes: input.diskSizeBytes !== undefined ? poolSpace(pool).totalBytes : 0 });
    return this.withLock(v.name, 'create', async () => {
      // The address first: asking the peers takes time, and the checks below must hold when the VM
      // enters the inventory (it counts against memory, a drain lists it), with no wait in between
      // but the cached CPU-model check (a cluster's HA registration waits on etcd, as before).
      // Refused at once when it can be, before any peer is asked (and asked again below).
      this.d.admit?.(`a new VM ("${v.name}")`);
      if (this.d.inv.find(v.name)) throw new FerryError('VM_EXISTS', `A VM named "${v.name}" already exists on this host.`);
      const lease = await this.d.ipam.allocate();
      try {
        return await this.createWith(v, pool, lease.ip);
      } finally {
        // In the inventory the VM holds its address; after a failure the address is free again.
        lease.release();
      }
    });
  }

  private async createWith(v: ReturnType<typeof validateCreate>, pool: ReturnType<Pools['get']>, ip: string): Promise<VmRecord> {
    this.d.admit?.(`a new VM ("${v.name}")`);
    if (this.d.inv.find(v.name)) throw new FerryError('VM_EXISTS', `A VM named "${v.name}" already exists on this host.`);
    this.checkMemory(v.memoryMiB);
    if (v.diskSizeBytes !== undefined && v.diskSizeBytes > poolSpace(pool).freeBytes) {
      throw new FerryError('INSUFFICIENT_DISK', `The pool "${pool.name}" has no room for a disk of ${v.diskSizeBytes} bytes.`);
    }
    await this.d.checkCpuModel(v.cpuModel ?? DEFAULT_CPU_MODEL);
    if (v.ha) {
      if (!this.d.cluster) throw new FerryError('NOT_IN_CLUSTER', 'An HA VM needs a cluster: run `ferry cluster create` or `join` first.');
      this.d.cluster.checkHa(v.diskSizeBytes === undefined || pool.sharedId !== undefined);
    }
    const spec = await this.newSpec(v, pool, ip);
    try {
      for (const disk of spec.disks) await createImage(disk.path, disk.sizeBytes);
      return await this.startLocked(v.name);
    } catch (e) {
      // The clean-up's own failure is logged: the user hears why the creation failed.
      await this.destroy(spec).catch((err: unknown) => this.d.log.error({ err, vm: spec.name }, 'could not clean up after a failed creation'));
      if (spec.ha) await this.d.cluster?.deleted(spec).catch(() => undefined);
      throw e;
    }
  }

  /**
   * The spec of a new VM with a fresh uuid and address, recorded in the inventory (and registered in
   * the cluster first when it is HA: the name must be free cluster-wide, and the record says
   * `running` before QEMU exists, which the cluster leaves alone while the caller holds the VM's lock).
   */
  private async newSpec(v: ReturnType<typeof validateCreate>, pool: ReturnType<Pools['get']>, ip: string): Promise<VmSpec> {
    const uuid = newUuid();
    const net = this.d.config.vmNetwork;
    const spec: VmSpec = {
      name: v.name, uuid, memoryMiB: v.memoryMiB, cpus: v.cpus, cpuModel: v.cpuModel ?? DEFAULT_CPU_MODEL, machine: this.d.machine,
      mac: macFromUuid(uuid), ip,
      prefixLength: net.prefixLength, ...(net.gateway ? { gateway: net.gateway } : {}), disks: [], ha: v.ha ?? false, ...(v.group ? { group: v.group } : {}),
      boot: (({ kernel, initrd }) => ({ kernel, initrd }))(findImage(this.d.config.imageDir)),
    };
    if (v.diskSizeBytes !== undefined) {
      const path = this.d.pools.imagePath(pool, v.name, 0);
      if (existsSync(path)) throw new FerryError('DISK_EXISTS', `A disk image already exists at ${path} (a VM of that name deleted with its disks kept, or another host's); Ferry does not overwrite it: move it away, or pick another name.`);
      spec.disks.push({ path, sizeBytes: v.diskSizeBytes, pool: pool.name, format: 'qcow2' });
    }
    if (spec.ha) await this.d.cluster?.registered(spec, { priority: v.haPriority, restart: v.haRestart, failback: v.haFailback });
    this.d.inv.insert(spec);
    return spec;
  }

  /** `register`: an HA VM the cluster has no record of is registered again (owner.ts claimForStart). */
  async start(name: string, register = false): Promise<VmRecord> {
    return this.withLock(name, 'start', async () => {
      const vm = this.d.inv.get(name);
      if (isActive(vm.state)) throw new FerryError('VM_BAD_STATE', `The VM "${name}" is already ${vm.state}.`);
      if (register && !vm.spec.ha) throw new FerryError('VM_NOT_HA', `The VM "${name}" is not an HA VM: it has no cluster record to register.`);
      this.d.admit?.(`starting "${name}"`);
      this.checkMemory(vm.spec.memoryMiB);
      await this.d.cluster?.claimForStart(vm.spec, register);
      const rec = await this.startLocked(name);
      if (vm.spec.ha) await this.d.cluster?.started(vm.spec);
      return rec;
    });
  }

  /**
   * Cluster mode: starts an HA VM this host was given (its host failed, or it crashed here with
   * its host), recording it first when this host has not seen it. Not refused by maintenance:
   * the cluster places nothing on a host in maintenance. `start` false: only records it, stopped (an
   * HA VM handed over by a leave, its owner gone for good).
   */
  async startHa(spec: VmSpec, start = true): Promise<void> {
    await this.withLock(spec.name, start ? 'an HA restart' : 'taking over an HA VM', async () => {
      const vm = this.d.inv.find(spec.name);
      if (vm && vm.spec.uuid !== spec.uuid) throw new FerryError('VM_EXISTS', `Another VM named "${spec.name}" is on ${this.d.config.hostName} (uuid ${vm.spec.uuid}).`);
      if (!start && !vm) this.d.inv.insert(spec);
      if (!start || (vm && isActive(vm.state))) return;
      this.checkMemory(spec.memoryMiB);
      if (!vm) this.d.inv.insert(spec);
      try {
        await this.startLocked(spec.name);
      } catch (e) {
        if (!vm) await this.destroy({ ...spec, disks: [] });
        throw e;
      }
    });
  }

  private checkMemory(wantMiB: number): void {
    const free = this.freeMemoryMiB();
    if (wantMiB > free) {
      throw new FerryError('INSUFFICIENT_MEMORY', `The host has ${free} MiB free for VMs, less than the ${wantMiB} MiB asked for.`);
    }
  }

  private async startLocked(name: string): Promise<VmRecord> {
    const spec = this.coldStartSpec(name, await this.d.accel());
    const t0 = Date.now();
    const pid = await this.launch(spec, false);
    let rec: VmRecord;
    try {
      rec = this.d.inv.apply(name, { type: 'started' }, pid);
    } catch (e) {
      // Not recorded (the state database cannot be written): a QEMU nobody tracks must not run on.
      await this.killNow(name, pid, spec.uuid);
      throw e;
    }
    await this.waitGuestReady(name, this.runDir(name), t0);
    return rec;
  }

  /** The VM's spec with the RAM trim of this host's QEMU: a cold start may change it; a move never does. */
  private coldStartSpec(name: string, accel: Accel): VmSpec {
    const { spec } = this.d.inv.get(name);
    const trim = ramTrimFor(accel, this.d.qemuVersion);
    if (spec.ramTrimKiB === trim) return spec;
    const { ramTrimKiB: _old, ...rest } = spec;
    return this.d.inv.updateSpec(trim === undefined ? rest : { ...rest, ramTrimKiB: trim }).spec;
  }

  /** Starts QEMU for the spec (its tap first) and attaches the supervisor; returns QEMU's pid. */
  private async launch(spec: VmSpec, incoming: boolean): Promise<number> {
    const image = spec.boot ?? findImage(this.d.config.imageDir);
    const runDir = this.runDir(spec.name);
    const tap = tapName(spec.uuid);
    await ensureTap(tap, this.d.config.bridge);
    const pid = await startQemu({
      name: spec.name, uuid: spec.uuid, machine: spec.machine, accel: await this.d.accel(), cpuModel: spec.cpuModel,
      memoryMiB: spec.memoryMiB, ...(spec.ramTrimKiB !== undefined ? { ramTrimKiB: spec.ramTrimKiB } : {}), cpus: spec.cpus, runDir, nic: { tap, mac: spec.mac }, incoming,
      boot: {
        kernel: image.kernel, initrd: image.initrd,
        append: guestKernelArgs({ ip: spec.ip, prefixLength: spec.prefixLength, name: spec.name, ...(spec.gateway ? { gateway: spec.gateway } : {}) }),
      },
      disks: spec.disks.map((d) => ({ path: d.path, format: d.format, shared: this.d.pools.list().some((p) => p.name === d.pool && p.sharedId !== undefined) })),
    });
    try {
      await this.d.sup.attach(spec.name, runFiles(runDir).qmp, pid, spec.uuid);
    } catch (e) {
      signalQemu(pid, spec.uuid, 'SIGKILL');
      throw e;
    }
    return pid;
  }

  /**
   * Destination of a move: records the VM as `migrating` and starts QEMU paused (-S) waiting for
   * the stream (-incoming defer). On failure nothing is left behind.
   */
  async startIncoming(spec: VmSpec): Promise<Qmp> {
    this.d.inv.insert(spec);
    try {
      const pid = await this.launch(spec, true);
      this.d.inv.apply(spec.name, { type: 'incoming' }, pid);
      const qmp = this.d.sup.qmp(spec.name);
      if (!qmp) throw new FerryError('QEMU_GONE', `The incoming QEMU of "${spec.name}" went away at once.`);
      return qmp;
    } catch (e) {
      await this.discard(spec.name);
      throw e;
    }
  }

  /**
   * Destination clean-up after a failed or cancelled move: kill QEMU, remove tap, run folder and
   * record. Disks stay unless `deleteDisks` (they were empty copies made for a storage move).
   */
  async discard(name: string, deleteDisks = false): Promise<void> {
    const vm = this.d.inv.find(name);
    if (!vm) return;
    await this.destroy(deleteDisks ? vm.spec : { ...vm.spec, disks: [] });
  }

  /**
   * Source after a completed move: QEMU has handed the VM over and sits in `postmigrate`; quit it
   * and forget the VM here. Its disks stay when they are shared; after a storage move the caller
   * passes `deleteDisks` (unless the user asked to retain them). The VM's address stays reserved
   * here (it went to `to`) before the VM leaves the inventory, so no new VM gets it meanwhile.
   */
  async releaseMoved(name: string, to: string, deleteDisks = false): Promise<void> {
    const vm = this.d.inv.find(name);
    if (!vm) return;
    this.d.ipam.left(vm.spec, to);
    await this.quitQemu(vm);
    await this.destroy(deleteDisks ? vm.spec : { ...vm.spec, disks: [] });
  }

  /**
   * Source of a move whose destination ran the VM and lost it: quits the paused QEMU (its memory is
   * older than what ran there, so it must not run), keeps the disks and the record, `stopped` with `reason`.
   */
  async powerOffKept(name: string, reason: string): Promise<void> {
    const vm = this.d.inv.find(name);
    if (!vm) return;
    if (isActive(vm.state)) {
      await this.quitQemu(vm);
      await deleteTap(tapName(vm.spec.uuid));
    }
    this.d.inv.apply(name, { type: 'stopped', reason }, null);
  }

  /** Quits a VM's QEMU over QMP (expected by the supervisor), killing it if it is not gone within 5 s. */
  private async quitQemu(vm: VmRecord): Promise<void> {
    this.d.sup.expect(vm.spec.name);
    await this.d.sup.qmp(vm.spec.name)?.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => undefined);
    if (vm.pid && !(await waitGone(vm.pid, vm.spec.uuid, 5000))) { signalQemu(vm.pid, vm.spec.uuid, 'SIGKILL'); await waitGone(vm.pid, vm.spec.uuid, 10_000); }
  }

  /** Waits for the test guest's ready line on its serial log (bounded; a slow guest is not an error). */
  private async waitGuestReady(name: string, runDir: string, t0: number): Promise<void> {
    const serial = runFiles(runDir).serial;
    const end = Date.now() + 120_000;
    while (Date.now() < end) {
      if (existsSync(serial) && readFileSync(serial, 'utf8').includes(GUEST_READY_MARKER)) {
        this.d.log.info({ vm: name, bootMs: Date.now() - t0 }, 'guest ready');
        return;
      }
      if (!isActive(this.d.inv.get(name).state)) {
        throw new FerryError('QEMU_GONE', `The VM "${name}" stopped while it was booting.`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.d.log.warn({ vm: name }, 'guest did not report ready within 120 s');
  }

  /** Stops a VM: ACPI power-off, then a hard stop after the timeout (or at once with force). */
  async stop(name: string, opts: { force?: boolean; timeoutSec?: number } = {}): Promise<VmRecord> {
    return this.withLock(name, 'stop', async () => {
      const vm = this.d.inv.get(name);
      // First, so the cluster does not restart a VM a user stopped.
      if (vm.spec.ha && isActive(vm.state)) await this.d.cluster?.stopped(vm.spec);
      return this.stopLocked(name, opts);
    });
  }

  /** Fencing: SIGKILL at once, whatever holds the VM, recorded as stopped; the cluster record is left as it is. */
  async fence(name: string): Promise<void> {
    const vm = this.d.inv.find(name);
    if (!vm || !isActive(vm.state)) return;
    if (vm.pid) await this.killNow(name, vm.pid, vm.spec.uuid);
    this.d.inv.apply(name, { type: 'stopped' }, null);
  }

  private async stopLocked(name: string, opts: { force?: boolean; timeoutSec?: number }): Promise<VmRecord> {
    const vm = this.d.inv.get(name);
    if (!isActive(vm.state)) {
      if (vm.state === 'failed') return this.d.inv.apply(name, { type: 'stopped' }, null);
      throw new FerryError('VM_BAD_STATE', `The VM "${name}" is not running (it is ${vm.state}).`);
    }
    const pid = vm.pid ?? 0;
    this.d.sup.expect(name);
    const qmp = this.d.sup.qmp(name);
    let gone = false;
    if (!opts.force && qmp) {
      await qmp.execute('system_powerdown', undefined, { timeoutMs: 5000 }).catch(() => undefined);
      gone = await waitGone(pid, vm.spec.uuid, (opts.timeoutSec ?? this.d.config.stopTimeoutSec ?? 30) * 1000);
    }
    if (!gone) {
      this.d.log.info({ vm: name, force: opts.force ?? false }, 'hard stop');
      signalQemu(pid, vm.spec.uuid, 'SIGKILL');
      if (!(await waitGone(pid, vm.spec.uuid, 10_000))) {
        throw new FerryError('STOP_TIMEOUT', `The QEMU process of "${name}" (pid ${pid}) did not exit after SIGKILL.`);
      }
    }
    await deleteTap(tapName(vm.spec.uuid));
    return this.d.inv.apply(name, { type: 'stopped' }, null);
  }

  /** Deletes a VM: a hard stop if it runs, then its disks, tap, run folder and record. */
  async delete(name: string): Promise<void> {
    await this.withLock(name, 'delete', async () => {
      const vm = this.d.inv.get(name);
      const owner = vm.spec.ha && this.d.cluster ? await this.d.cluster.owner(vm.spec) : null;
      if (owner !== null && owner !== this.d.config.hostName) {
        // A stale copy of an HA VM another host runs now (its address stays reserved here as for a VM that
        // moved away), or one the cluster has no record of: stop, forget it here, keep disks and records.
        if (isActive(vm.state)) await this.stopLocked(name, { force: true });
        if (owner !== undefined) this.d.ipam.left(vm.spec, owner);
        await this.destroy({ ...vm.spec, disks: [] });
        return;
      }
      if (isActive(vm.state)) await this.stopLocked(name, { force: true });
      await this.destroy(vm.spec);
      if (vm.spec.ha) await this.d.cluster?.deleted(vm.spec);
    });
  }

  private async destroy(spec: VmSpec): Promise<void> {
    const vm = this.d.inv.find(spec.name);
    if (vm?.pid) await this.killNow(spec.name, vm.pid, spec.uuid);
    for (const d of spec.disks) await deleteImage(d.path);
    void deleteTap(tapName(spec.uuid)); // a new tap of that name waits for it (qemu/links.ts)
    // Best effort: the VM is gone already (its QEMU and disks), and a new VM of that name makes the folder afresh.
    await rm(this.runDir(spec.name), { recursive: true, force: true })
      .catch((e: unknown) => { this.d.log.warn({ vm: spec.name, err: e }, 'could not remove the run folder of a deleted VM'); });
    this.d.inv.remove(spec.name);
  }

  /** SIGKILL of the VM's QEMU, which the supervisor expects to exit; resolves once it is gone (10 s at most). */
  private async killNow(name: string, pid: number, uuid: string): Promise<void> {
    this.d.sup.expect(name);
    signalQemu(pid, uuid, 'SIGKILL');
    await waitGone(pid, uuid, 10_000);
  }
}
