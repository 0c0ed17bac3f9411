import { existsSync, readFileSync } from 'node:fs';
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FerryError } from '../errors/index.js';

/** A built test guest: absolute paths of its kernel and initramfs, and what it was built from. */
export interface GuestImage {
  /**
   * The Debian kernel, for QEMU's -kernel: the uncompressed ELF vmlinux that QEMU boots
   * through its PVH entry (no in-guest decompression), or the bzImage if the kernel lacks one.
   */
  kernel: string;
  /** The gzip-compressed newc initramfs, for QEMU's -initrd. */
  initrd: string;
  /** The build key: a hash of every input of the build. */
  key: string;
  /** The kernel release, as `uname -r` prints it in the guest (e.g. 6.1.0-56-amd64). */
  kernelVersion: string;
}

/** What image.json records about the current build (paths relative to the image dir). */
export interface ImageRecord {
  key: string;
  kernelVersion: string;
  kernelPackage: string;
  kernelPackageVersion: string;
  busyboxVersion: string;
  builtAt: string;
  kernel: string;
  initrd: string;
}

/** The file that names the current build; written last, so its presence means a complete build. */
export const RECORD_FILE = 'image.json';

/** Reads the record of the build in dir, or undefined when there is none or it is incomplete. */
export function readRecord(dir: string): ImageRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8')) as ImageRecord;
    if (typeof rec.key !== 'string' || typeof rec.kernel !== 'string' || typeof rec.initrd !== 'string') return undefined;
    if (!existsSync(resolve(dir, rec.kernel)) || !existsSync(resolve(dir, rec.initrd))) return undefined;
    return rec;
  } catch {
    return undefined;
  }
}

/** The image a record describes, with absolute paths. */
export const imageOf = (dir: string, rec: ImageRecord): GuestImage => ({
  kernel: resolve(dir, rec.kernel),
  initrd: resolve(dir, rec.initrd),
  key: rec.key,
  kernelVersion: rec.kernelVersion,
});

/**
 * Returns the test guest already built in dir, without building anything.
 * @throws FerryError IMAGE_MISSING when dir holds no complete build.
 */
export function findImage(dir: string): GuestImage {
  const rec = readRecord(dir);
  if (!rec) throw new FerryError('IMAGE_MISSING', `No test guest image is built in ${dir}: run \`ferry image build\`.`);
  return imageOf(resolve(dir), rec);
}

/** Replaces the record atomically (write then rename), so readers see the old or the new build. */
export async function writeRecord(dir: string, rec: ImageRecord): Promise<void> {
  const tmp = join(dir, `.${RECORD_FILE}.${process.pid}`);
  await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  await rename(tmp, join(dir, RECORD_FILE));
}

/**
 * Deletes build folders other than those in keep, and cached packages other than those
 * in keepDebs. The previous build is kept too: a VM started from it may still need its
 * kernel at the same path on a migration's destination. Work folders of builds that died
 * more than an hour ago go too (an unpacked kernel is 400 MB); younger ones may be running.
 */
export async function prune(dir: string, keep: ReadonlySet<string>, downloads: string, keepDebs: ReadonlySet<string>): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (ent.isDirectory() && /^[0-9a-f]{16}$/.test(ent.name) && !keep.has(ent.name)) {
      await rm(join(dir, ent.name), { recursive: true, force: true });
    }
    if (ent.isDirectory() && ent.name.startsWith('.build-')) {
      const st = await stat(join(dir, ent.name)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 3600_000) await rm(join(dir, ent.name), { recursive: true, force: true });
    }
  }
  const debs = await readdir(downloads).catch(() => [] as string[]);
  for (const f of debs) if (f.endsWith('.deb') && !keepDebs.has(f)) await rm(join(downloads, f), { force: true });
}
