import { mkdirSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { FerryError } from '../errors/index.js';
import { errnoWhy } from '../util/files.js';

/** A storage pool: a directory of disk images, possibly shared between hosts. */
export interface Pool { name: string; path: string; sharedId?: string }

/** statfs of `path`; STORAGE_FAILED naming `what` when it cannot be read (a folder gone, a stale NFS mount, a dead FUSE one). */
function statfsOf(path: string, what: string): { bavail: number; bsize: number; blocks: number } {
  try {
    return statfsSync(path);
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `${what} cannot be read (${errnoWhy(e)}); is its folder there and its file system mounted?`, { cause: e });
  }
}

/** Free and total bytes of the filesystem a pool lives on; STORAGE_FAILED when it cannot be read. */
export function poolSpace(pool: Pool): { freeBytes: number; totalBytes: number } {
  const s = statfsOf(pool.path, `The storage pool "${pool.name}" at ${pool.path}`);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

/** Free bytes of the filesystem `path` (or its nearest existing parent) lives on: a folder inside a pool may be a mount of its own. */
export function freeBytesAt(path: string): number {
  const p = nearestExisting(path);
  const s = statfsOf(p, `The folder ${p}`);
  return s.bavail * s.bsize;
}

/** `path` or its nearest parent that exists, climbing only past folders that do not exist (yet): a stale handle or a file in the way stops the climb. */
function nearestExisting(path: string): string {
  let p = path;
  while (missing(p) && p !== dirname(p)) p = dirname(p);
  return p;
}

/** True only when nothing is at `path` (ENOENT); other errors are not taken for absence. */
function missing(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** The file of VM `vm`'s disk `index` in folder `dir`: every image Ferry makes (create, moves, storage moves) is named so. */
export const imageIn = (dir: string, vm: string, index: number): string => join(dir, `${vm}-disk${index}.qcow2`);

/**
 * The host's pools; makes their folders on first use. A pool that cannot be made or read (its
 * mount gone) does not keep the agent from starting: the host view shows why (poolSpace), and
 * what needs the pool fails with STORAGE_FAILED.
 */
export class Pools {
  constructor(private readonly pools: Pool[]) {
    for (const p of pools) {
      try { mkdirSync(p.path, { recursive: true }); } catch { /* the agent logs the pool's error (poolSpace) */ }
    }
  }

  list(): Pool[] { return [...this.pools]; }

  get(name: string): Pool {
    const p = this.pools.find((x) => x.name === name);
    if (!p) throw new FerryError('UNKNOWN_POOL', `No storage pool named "${name}" is on this host.`);
    return p;
  }

  /**
   * Returns the pool a path lies in, or throws INVALID_PATH. Resolves symlinks of the existing
   * part so that a link cannot lead out of a pool.
   */
  poolOf(path: string): Pool {
    if (!isAbsolute(path) || path.split(/[\\/]/).includes('..')) {
      throw new FerryError('INVALID_PATH', `The path "${path}" must be absolute and must not contain "..".`);
    }
    const real = resolveExisting(normalize(path));
    for (const p of this.pools) {
      // A pool whose folder is not there now (its mount gone) is compared as far as it exists.
      const root = resolveExisting(normalize(p.path));
      if (real === root || real.startsWith(root + sep)) return p;
    }
    throw new FerryError('INVALID_PATH', `The path "${path}" is outside every storage pool of this host.`);
  }

  /** Where a new image for a VM goes: `<pool>/<vm>/<vm>-disk<index>.qcow2`. */
  imagePath(pool: Pool, vmName: string, index: number): string {
    return imageIn(join(pool.path, vmName), vmName, index);
  }
}

/**
 * realpath of the nearest existing parent, with the rest appended (the file may not exist yet); a
 * folder that cannot be resolved (a stale mount) leaves the path as written.
 */
function resolveExisting(path: string): string {
  const head = nearestExisting(path);
  try {
    return join(realpathSync(head), relative(head, path));
  } catch {
    return path;
  }
}
