import { mkdirSync, realpathSync, statfsSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { FerryError } from '../errors/index.js';

/** A storage pool: a directory of disk images, possibly shared between hosts. */
export interface Pool { name: string; path: string; sharedId?: string }

/** Free and total bytes of the filesystem a pool lives on. */
export function poolSpace(pool: Pool): { freeBytes: number; totalBytes: number } {
  const s = statfsSync(pool.path);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

/** Free bytes of the filesystem `path` (or its nearest existing parent) lives on: a folder inside a pool may be a mount of its own. */
export function freeBytesAt(path: string): number {
  let p = path;
  while (!existsSync(p) && p !== dirname(p)) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

/** The file of VM `vm`'s disk `index` in folder `dir`: every image Ferry makes (create, moves, storage moves) is named so. */
export const imageIn = (dir: string, vm: string, index: number): string => join(dir, `${vm}-disk${index}.qcow2`);

/** The host's pools; makes their folders on first use. */
export class Pools {
  constructor(private readonly pools: Pool[]) {
    for (const p of pools) mkdirSync(p.path, { recursive: true });
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
      const root = realpathSync(p.path);
      if (real === root || real.startsWith(root + sep)) return p;
    }
    throw new FerryError('INVALID_PATH', `The path "${path}" is outside every storage pool of this host.`);
  }

  /** Where a new image for a VM goes: `<pool>/<vm>/<vm>-disk<index>.qcow2`. */
  imagePath(pool: Pool, vmName: string, index: number): string {
    return imageIn(join(pool.path, vmName), vmName, index);
  }
}

/** realpath of the longest existing prefix, with the rest appended (the file may not exist yet). */
function resolveExisting(path: string): string {
  let head = path;
  const tail: string[] = [];
  while (!existsSync(head)) {
    const i = head.lastIndexOf(sep);
    if (i <= 0) return path;
    tail.unshift(head.slice(i + 1));
    head = head.slice(0, i);
  }
  return join(realpathSync(head), ...tail);
}
