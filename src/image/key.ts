import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Bumped whenever the builder itself changes what it puts into the image (the initramfs
 * layout, the module list, compiler flags), so such a change invalidates cached builds.
 */
export const BUILDER_VERSION = 1;

/** A file of guest/ and the SHA-256 of its contents. */
export interface SourceDigest { path: string; sha256: string }

/** Everything a build depends on; equal inputs give an equal key and an equivalent image. */
export interface BuildInputs {
  builderVersion: number;
  /** e.g. linux-image-6.1.0-56-amd64 */
  kernelPackage: string;
  /** e.g. 6.1.192-2 */
  kernelPackageVersion: string;
  /** e.g. 1:1.35.0-4+deb12u1+b1 */
  busyboxVersion: string;
  /** The guest sources, sorted by path. */
  guestSources: SourceDigest[];
}

/** The build key: 16 hex digits of a SHA-256 over the inputs in a fixed field order. */
export function buildKey(inputs: BuildInputs): string {
  const canonical = JSON.stringify([
    inputs.builderVersion,
    inputs.kernelPackage,
    inputs.kernelPackageVersion,
    inputs.busyboxVersion,
    [...inputs.guestSources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((s) => [s.path, s.sha256]),
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Digests every file under dir (recursively), with paths relative to dir, sorted. */
export async function digestSources(dir: string): Promise<SourceDigest[]> {
  const out: SourceDigest[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const ent of await readdir(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) out.push({ path: relative(dir, p), sha256: createHash('sha256').update(await readFile(p)).digest('hex') });
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
