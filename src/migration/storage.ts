/**
 * Storage in a move (issue 4, docs/design/0001 "Storage"): which disks the destination uses and
 * whether they are copied. Without `--include-storage` every disk must sit in a shared pool the
 * destination sees under the same pool id, and the destination opens the very same files; with
 * it, the destination creates an empty image of the same size per disk, exports it over NBD, and
 * the source mirrors into it before the memory copy starts.
 */
import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import { FerryError, toFerryError } from '../errors/index.js';
import { freeBytesAt, imageIn, imageInfo, type Pools } from '../storage/index.js';
import type { VmSpec } from '../vm/index.js';
import type { JobRecord, MoveOptions } from './job.js';

/** What the source tells the destination about each disk (PrepareRequest.disks). */
export interface DiskFacts {
  /** Bytes the image takes on the source (qemu-img actual-size): what the copy needs at most. */
  allocatedBytes: number;
  /** The source pool's shared id, when the disk sits in a shared pool. */
  sharedId?: string;
}

/** Room kept free in a pool beyond the copied images (qcow2 metadata grows as it fills). */
export const POOL_MARGIN_BYTES = 64 * 1024 * 1024;

/** The destination's plan: the spec it runs the VM with, and the images it must create (and delete on rollback). */
export interface StoragePlan {
  spec: VmSpec;
  /** One per disk for a storage move, in disk order; empty when storage is shared. */
  copies: { index: number; sourcePath: string; destinationPath: string; sizeBytes: number }[];
}

/**
 * Decides the destination's disks, or throws before anything is made: STORAGE_NOT_SHARED for a
 * local disk without `--include-storage`, INVALID_PATH for a `--storage-path` outside the pools,
 * DISK_EXISTS when a target image is already there, INSUFFICIENT_DISK when the pool lacks room.
 */
export function planStorage(pools: Pools, vm: VmSpec, options: MoveOptions, facts: readonly DiskFacts[] | undefined): StoragePlan {
  const r = assessStorage(pools, vm, options, facts);
  if (r.problems[0]) throw r.problems[0];
  return r.plan as StoragePlan;
}

/**
 * The same checks as {@link planStorage} as a dry run (the compatibility report): every problem,
 * in the order planStorage would meet them, and the plan when there is none. Reads the file
 * system, makes nothing.
 */
export function assessStorage(pools: Pools, vm: VmSpec, options: MoveOptions, facts: readonly DiskFacts[] | undefined): { plan?: StoragePlan; problems: FerryError[] } {
  if (vm.disks.length === 0) return { plan: { spec: vm, copies: [] }, problems: [] };
  const problems: FerryError[] = [];
  if (!options.includeStorage) {
    vm.disks.forEach((d, i) => {
      const sharedId = facts?.[i]?.sharedId;
      const here = sharedId === undefined ? undefined : pools.list().find((p) => p.sharedId === sharedId);
      if (!here || poolName(pools, d.path) !== here.name) {
        problems.push(new FerryError('STORAGE_NOT_SHARED',
          `Disk ${i} of "${vm.name}" (${d.path}) is on storage this host does not share; move it with --include-storage.`));
      }
    });
    return problems.length > 0 ? { problems } : { plan: { spec: vm, copies: [] }, problems };
  }
  let pool;
  try {
    pool = options.storagePath !== undefined ? pools.poolOf(options.storagePath) : pools.get('default');
  } catch (e) {
    return { problems: [toFerryError(e, 'INVALID_PATH')] };
  }
  const dir = options.storagePath ?? join(pool.path, vm.name);
  const copies = vm.disks.map((d, i) => ({
    index: i, sourcePath: d.path, destinationPath: imageIn(dir, vm.name, i), sizeBytes: d.sizeBytes,
  }));
  for (const c of copies) {
    if (existsSync(c.destinationPath)) {
      problems.push(new FerryError('DISK_EXISTS', `The image ${c.destinationPath} already exists on this host; choose another --storage-path.`));
    }
  }
  const need = vm.disks.reduce((a, _d, i) => a + (facts?.[i]?.allocatedBytes ?? vm.disks[i]?.sizeBytes ?? 0), 0) + POOL_MARGIN_BYTES;
  const free = freeBytesAt(dir);
  if (need > free) {
    problems.push(new FerryError('INSUFFICIENT_DISK',
      `The pool "${pool.name}" has ${free} bytes free; copying the disks of "${vm.name}" needs ${need} (with a ${POOL_MARGIN_BYTES}-byte margin).`));
  }
  if (problems.length > 0) return { problems };
  return {
    plan: { spec: { ...vm, disks: vm.disks.map((d, i) => ({ ...d, path: copies[i]?.destinationPath ?? d.path, pool: pool.name })) }, copies },
    problems,
  };
}

/** The pool a path lies in on this host, or undefined (a path of another host's layout may lie outside every pool here). */
function poolName(pools: Pools, path: string): string | undefined {
  try { return pools.poolOf(path).name; } catch { return undefined; }
}

/** What the source tells the destination about its VM's disks: each image's allocation and its pool's shared id. */
export async function diskFactsOf(pools: Pools, spec: VmSpec): Promise<DiskFacts[]> {
  return Promise.all(spec.disks.map(async (d) => {
    const sharedId = pools.list().find((p) => p.name === d.pool)?.sharedId;
    return { allocatedBytes: (await imageInfo(d.path)).actualSize, ...(sharedId !== undefined ? { sharedId } : {}) };
  }));
}

/** The NBD export name of disk `index` (the destination's node name, src/qemu/argv.ts). */
export const exportName = (index: number): string => `disk${index}`;

/** `nbd://HOST:PORT/EXPORT` of a disk's export; the source parses it back with {@link parseNbdUri}. */
export const nbdUri = (host: string, port: number, index: number): string => `nbd://${host}:${port}/${exportName(index)}`;

/** Parses {@link nbdUri}; throws MIGRATION_FAILED on anything else (it came from a peer). */
export function parseNbdUri(uri: string): { host: string; port: number; export: string } {
  const m = /^nbd:\/\/([^/:]+):(\d{1,5})\/([\w.-]+)$/.exec(uri);
  if (!m?.[1] || !m[2] || !m[3]) throw new FerryError('MIGRATION_FAILED', `The destination offered an NBD target this agent cannot use: ${uri}.`);
  return { host: m[1], port: Number(m[2]), export: basename(m[3]) };
}

/** Does the source delete its images once the move completed? After a storage move, unless retained. */
export const deletesSourceDisks = (job: Pick<JobRecord, 'options'>): boolean =>
  job.options.includeStorage && job.options.retainSourceDisks !== true;
