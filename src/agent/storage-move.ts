/**
 * Storage move on one host (`ferry vm move-storage NAME --to-path DIR`): a VM's disks go to
 * `DIR/<vm>-disk<i>.qcow2`, another folder of one of the host's pools.
 *
 * ```
 * check (pure plan) → lock the VM → take a storage slot → create the target images
 *   running or paused VM: mirror every disk (write-blocking) → all READY → block-job-complete (pivot)
 *   stopped VM:           qemu-img convert each disk into its target
 * → ask QEMU which file each device uses now → persist those disks → delete the images left unused
 * ```
 *
 * Until the pivot a failure aborts the mirrors and deletes the new images: the VM keeps running
 * on its old disks. The spec follows what QEMU reports, not what was hoped for, so that a pivot
 * that switched one disk of several and then failed never leads to deleting an image in use.
 */
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { FerryError } from '../errors/index.js';
import type { Qmp } from '../qmp/index.js';
import {
  copyImage, createImage, deleteImage, deviceFile, DiskMirrors, imageIn, imageInfo, poolSpace, type Pool, type Pools,
} from '../storage/index.js';
import type { DiskSpec, Inventory, VmRecord, VmState } from '../vm/index.js';
import { POOL_MARGIN_BYTES } from '../migration/index.js';
import type { Slots } from './slots.js';

/** One disk's way: from its image now to its new image (same virtual size). */
export interface DiskMove { index: number; from: string; to: string; sizeBytes: number }

/** What {@link planStorageMove} decides. */
export interface MovePlan { live: boolean; moves: DiskMove[] }

/** What the plan is made from; `images` are the current images as qemu-img sees them, one per disk. */
export interface PlanInput {
  name: string;
  state: VmState;
  disks: readonly DiskSpec[];
  toDir: string;
  pool: Pool;
  images: readonly { virtualSize: number; actualSize: number }[];
  freeBytes: number;
  exists: (path: string) => boolean;
}

/** Throws VM_BAD_STATE unless the VM can have its storage moved: it runs (live) or is stopped (a copy), and has disks. */
export function checkMovable(name: string, state: VmState, diskCount: number): { live: boolean } {
  const live = state === 'running' || state === 'paused';
  if (!live && state !== 'stopped') {
    throw new FerryError('VM_BAD_STATE', `The VM "${name}" is ${state}; its storage moves only while it runs (live) or is stopped (a copy).`);
  }
  if (diskCount === 0) throw new FerryError('VM_BAD_STATE', `The VM "${name}" has no disks to move.`);
  return { live };
}

/**
 * Decides a storage move or refuses it (pure): VM_BAD_STATE, SAME_PATH when a disk already is
 * where it would go, DISK_EXISTS when an image is in the way, INSUFFICIENT_DISK when the
 * target pool has less room than the disks' allocated bytes plus a margin.
 */
export function planStorageMove(p: PlanInput): MovePlan {
  const { live } = checkMovable(p.name, p.state, p.disks.length);
  const moves = p.disks.map((d, index): DiskMove => ({
    index, from: d.path, to: imageIn(p.toDir, p.name, index), sizeBytes: p.images[index]?.virtualSize ?? d.sizeBytes,
  }));
  for (const m of moves) {
    if (resolve(m.from) === resolve(m.to)) throw new FerryError('SAME_PATH', `Disk ${m.index} of "${p.name}" already is ${m.to}.`);
  }
  for (const m of moves) {
    if (p.exists(m.to)) throw new FerryError('DISK_EXISTS', `An image already exists at ${m.to}; Ferry does not overwrite it.`);
  }
  const need = p.images.reduce((s, i) => s + i.actualSize, 0) + POOL_MARGIN_BYTES;
  if (need > p.freeBytes) {
    throw new FerryError('INSUFFICIENT_DISK',
      `The pool "${p.pool.name}" has ${p.freeBytes} bytes free; copying the disks of "${p.name}" needs ${need} (with a ${POOL_MARGIN_BYTES}-byte margin).`);
  }
  return { live, moves };
}

/** One moved disk as the API reports it. */
export interface MovedDisk { index: number; from: string; to: string; pool: string; sizeBytes: number; allocatedBytes: number }

/** The outcome of a storage move (the API's answer, with the VM's view beside it). */
export interface StorageMoveResult { vm: string; live: boolean; totalMs: number; disks: MovedDisk[] }

/** What a storage move needs from the agent. */
export interface StorageMoveDeps {
  inv: Inventory;
  pools: Pools;
  slots: Slots;
  log: Logger;
  qmp: (vm: string) => Qmp | undefined;
  /** The VM's lock (VmActions.tryLock): VM_BUSY while another action or move holds it. */
  lockVm: (vm: string, what: string) => () => void;
  emit: (type: string, data: Record<string, unknown>) => void;
}

/** Moves VMs' disks between folders of this host's pools, live when the VM runs. */
export class StorageMover {
  constructor(private readonly d: StorageMoveDeps) {}

  /**
   * Moves every disk of VM `name` to folder `toPath` and returns once the VM uses the new images
   * and the old ones are deleted. Refuses with the VM unchanged (see {@link planStorageMove});
   * STORAGE_MIGRATION_LIMIT when the host's storage slots are taken; ABORTED when `signal` fires
   * before the switch.
   */
  async move(name: string, toPath: string, signal: AbortSignal = new AbortController().signal): Promise<StorageMoveResult> {
    const t0 = Date.now();
    this.d.inv.get(name);
    const pool = this.d.pools.poolOf(toPath);
    const toDir = resolve(toPath);
    const unlock = this.d.lockVm(name, 'a storage move');
    try {
      const rec = this.d.inv.get(name);
      checkMovable(name, rec.state, rec.spec.disks.length);
      const images = await Promise.all(rec.spec.disks.map((d) => imageInfo(d.path)));
      const plan = planStorageMove({
        name, state: rec.state, disks: rec.spec.disks, toDir, pool, images, freeBytes: poolSpace(pool).freeBytes, exists: existsSync,
      });
      const release = this.d.slots.tryTake('storage');
      try {
        this.d.log.info({ vm: name, toDir, live: plan.live, disks: plan.moves.length }, 'storage move begins');
        const disks = await this.run(rec, plan, pool, signal);
        const result: StorageMoveResult = { vm: name, live: plan.live, totalMs: Date.now() - t0, disks };
        this.d.log.info(result, 'storage move done');
        this.d.emit('vm.storage-moved', { ...result });
        return result;
      } finally {
        release();
      }
    } finally {
      unlock();
    }
  }

  /** Creates the targets, copies, then settles files and spec on what QEMU uses. */
  private async run(rec: VmRecord, plan: MovePlan, pool: Pool, signal: AbortSignal): Promise<MovedDisk[]> {
    const name = rec.spec.name;
    const madeDir = await mkdir(dirname(plan.moves[0]?.to ?? '/'), { recursive: true });
    let failure: unknown;
    let pivoting = false;
    const created: DiskMove[] = [];
    try {
      for (const m of plan.moves) { await createImage(m.to, m.sizeBytes); created.push(m); }
      if (plan.live) await this.mirror(name, plan.moves, signal, () => { pivoting = true; });
      else for (const m of plan.moves) await copyImage(m.from, m.to);
    } catch (e) {
      failure = e;
    }
    const switched = await this.switched(name, plan, failure, pivoting);
    if (!switched) {
      // QEMU could not tell which image each disk uses after a failed pivot: keep every file.
      throw new FerryError('STORAGE_FAILED',
        `The storage move of "${name}" failed while switching disks and QEMU could not say which images it uses; old and new images are both kept.`,
        { cause: failure });
    }
    const moved = plan.moves.filter((m) => switched.has(m.index));
    if (moved.length > 0) {
      const disks = rec.spec.disks.map((d, i): DiskSpec => (switched.has(i) ? { ...d, path: plan.moves[i]?.to ?? d.path, pool: pool.name } : d));
      this.d.inv.updateSpec({ ...this.d.inv.get(name).spec, disks });
    }
    // The VM uses its new images now: an old one that cannot be deleted is logged and kept, the move stands.
    for (const m of moved) await deleteImage(m.from).catch((err: unknown) => this.d.log.warn({ err, vm: name, image: m.from }, 'the old image of a moved disk could not be deleted; it is kept'));
    for (const m of created.filter((c) => !switched.has(c.index))) await rm(m.to, { force: true });
    if (madeDir && moved.length === 0) await removeEmptyDirs(dirname(plan.moves[0]?.to ?? '/'), madeDir);
    if (failure !== undefined) {
      if (moved.length > 0) this.d.log.error({ vm: name, moved: moved.map((m) => m.index) }, 'storage move failed after some disks switched');
      throw failure;
    }
    if (moved.length < plan.moves.length) {
      throw new FerryError('STORAGE_FAILED', `QEMU still uses the old images of "${name}" after the switch; the new ones were deleted.`);
    }
    return Promise.all(moved.map(async (m) => ({
      index: m.index, from: m.from, to: m.to, pool: pool.name, sizeBytes: m.sizeBytes, allocatedBytes: (await imageInfo(m.to)).actualSize,
    })));
  }

  /** Mirrors every disk to its target, waits until all are in sync, then switches the VM over. */
  private async mirror(name: string, moves: readonly DiskMove[], signal: AbortSignal, onPivot: () => void): Promise<void> {
    const qmp = this.d.qmp(name);
    if (!qmp) throw new FerryError('QEMU_GONE', `The VM "${name}" has no QMP connection; its QEMU may have exited.`);
    // A tag of its own per move: the targets' node names stay in use after the pivot.
    const mirrors = new DiskMirrors(qmp, `sm${Date.now().toString(36)}`);
    try {
      await mirrors.start(moves.map((m) => ({ index: m.index, target: { kind: 'file' as const, path: m.to } })));
      const t = Date.now();
      await mirrors.waitReady(signal);
      this.d.log.info({ vm: name, readyMs: Date.now() - t }, 'storage mirrors ready');
      onPivot();
      await mirrors.pivot();
    } catch (e) {
      await mirrors.abort();
      throw e;
    }
  }

  /**
   * The disks that use their new image now. A copy (stopped VM) switched all or nothing; a live
   * move asks QEMU. Undefined when QEMU cannot answer after a pivot began (nobody knows).
   */
  private async switched(name: string, plan: MovePlan, failure: unknown, pivoting: boolean): Promise<Set<number> | undefined> {
    const all = new Set(plan.moves.map((m) => m.index));
    if (!plan.live || !pivoting) return failure === undefined ? all : new Set();
    const qmp = this.d.qmp(name);
    try {
      if (!qmp) throw new FerryError('QEMU_GONE', `The VM "${name}" has no QMP connection.`);
      const files = await Promise.all(plan.moves.map(async (m) => [m.index, await deviceFile(qmp, m.index)] as const));
      return new Set(files.filter(([i, f]) => resolve(f) === resolve(plan.moves[i]?.to ?? '')).map(([i]) => i));
    } catch (e) {
      this.d.log.error({ vm: name, err: e }, 'could not read which images the VM uses');
      return undefined;
    }
  }
}

/** Removes `dir` and its parents up to `top` while they are empty (never recursively: another VM may have moved there meanwhile). */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = dirname(d)) {
    try { await rmdir(d); } catch { return; }
    if (d === top) return;
  }
}
