import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FerryError } from '../errors/index.js';
import { repoRoot } from '../util/paths.js';
import { newcArchive, type CpioEntry } from './cpio.js';
import { stepFailed, tool, type ToolOptions } from './exec.js';
import { BUILDER_VERSION, buildKey, digestSources, type BuildInputs } from './key.js';
import { collectModules, type GuestModules } from './modules.js';
import {
  BUSYBOX_PACKAGE, debFileName, extractDeb, fetchDeb, resolveBusybox, resolveKernel,
  type BusyboxSource, type KernelPackage,
} from './packages.js';
import { pvhKernel } from './vmlinux.js';
import { findImage, imageOf, prune, readRecord, writeRecord, type GuestImage, type ImageRecord } from './store.js';

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** The image folder (usually imageDir()); builds and downloads live inside it. */
  dir: string;
  /** Rebuild even when dir already holds a build of the same key. */
  force?: boolean;
  /** Receives one line per step, for people watching. */
  log?: (line: string) => void;
  /** Cancels the build; tools are killed and the half-made build is removed. */
  signal?: AbortSignal;
}

/** A build's result: the image, and whether it was already there. */
export interface BuiltImage extends GuestImage {
  /** True when dir already held a build of this key and nothing was built. */
  cached: boolean;
  /** Size of kernel plus initramfs in bytes. */
  sizeBytes: number;
}

/** The guest sources: the init script and the workload's C files. */
export const guestSourceDir = (): string => join(repoRoot(), 'guest');

interface Plan { kernel: KernelPackage; busybox: BusyboxSource; inputs: BuildInputs; key: string }

async function plan(log: (l: string) => void, opts: ToolOptions): Promise<Plan> {
  const kernel = await resolveKernel(log, opts);
  const busybox = await resolveBusybox(log, opts);
  const all = await digestSources(guestSourceDir()).catch((e: unknown) => {
    throw stepFailed(`Reading the guest sources in ${guestSourceDir()}`, e);
  });
  // Documentation does not go into the image; editing it should not force a rebuild.
  const guestSources = all.filter((s) => !s.path.endsWith('.md'));
  const inputs: BuildInputs = {
    builderVersion: BUILDER_VERSION,
    kernelPackage: kernel.name,
    kernelPackageVersion: kernel.version,
    busyboxVersion: busybox.version,
    guestSources,
  };
  return { kernel, busybox, inputs, key: buildKey(inputs) };
}

/** The busybox binary: the installed one, or unpacked from its (cached) package. */
async function busyboxBinary(p: Plan, downloads: string, work: string, log: (l: string) => void, opts: ToolOptions): Promise<Buffer> {
  if (p.busybox.installedPath) return readFile(p.busybox.installedPath);
  const deb = await fetchDeb({ name: BUSYBOX_PACKAGE, version: p.busybox.version }, downloads, log, opts);
  const dest = join(work, 'busybox');
  await extractDeb(deb, dest, opts);
  for (const rel of ['bin/busybox', 'usr/bin/busybox']) {
    const data = await readFile(join(dest, rel)).catch(() => undefined);
    if (data) return data;
  }
  throw new FerryError('IMAGE_BUILD_FAILED', `Unpacking busybox failed: ${BUSYBOX_PACKAGE} holds no bin/busybox.`);
}

/** Compiles the workload statically, so the initramfs needs no C library. */
async function compileWorkload(work: string, opts: ToolOptions): Promise<Buffer> {
  const src = join(guestSourceDir(), 'workload');
  const files = (await readdir(src)).filter((f) => f.endsWith('.c')).sort().map((f) => join(src, f));
  const out = join(work, 'workload');
  await tool('Compiling the workload with gcc (packages gcc and libc6-dev)', 'gcc', ['-static', '-O2', '-pthread', '-s', '-Wall', '-o', out, ...files], opts);
  return readFile(out);
}

/** The initramfs: busybox, /init, the workload and the virtio modules with their load order. */
function initramfsEntries(init: Buffer, busybox: Buffer, workload: Buffer, mods: GuestModules): CpioEntry[] {
  const dirs = ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'lib', 'lib/modules'];
  return [
    ...dirs.map((path): CpioEntry => ({ type: 'dir', path })),
    // The kernel opens /dev/console for init before anything is mounted.
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'file', path: 'init', data: init, mode: 0o755 },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'bin/workload', data: workload, mode: 0o755 },
    ...mods.order.map((m): CpioEntry => ({ type: 'file', path: `lib/modules/${m}.ko`, data: mods.files.get(m) ?? Buffer.alloc(0) })),
    { type: 'file', path: 'lib/modules/load-order', data: Buffer.from(`${mods.order.join('\n')}\n`) },
  ];
}

/**
 * Writes the kernel QEMU will boot into out and returns its file name: the uncompressed
 * vmlinux when it has a PVH entry (much faster to boot under TCG), else the bzImage.
 */
async function kernelImage(bzPath: string, out: string, work: string, log: (l: string) => void, opts: ToolOptions): Promise<string> {
  const bz = await readFile(bzPath).catch((e: unknown) => { throw stepFailed(`Reading the kernel ${bzPath}`, e); });
  const elf = await pvhKernel(bz, work, opts);
  if (elf) {
    await writeFile(join(out, 'vmlinux'), elf);
    return 'vmlinux';
  }
  log('The kernel has no PVH entry; shipping the compressed bzImage (it boots more slowly)');
  await writeFile(join(out, 'vmlinuz'), bz);
  return 'vmlinuz';
}

/** Builds kernel and initramfs into work/out; returns the record that will describe them. */
async function assemble(p: Plan, dir: string, work: string, log: (l: string) => void, opts: ToolOptions): Promise<ImageRecord> {
  const downloads = join(dir, 'downloads');
  const kdeb = await fetchDeb(p.kernel, downloads, log, opts);
  const kroot = join(work, 'kernel');
  log(`Unpacking ${p.kernel.name}`);
  await extractDeb(kdeb, kroot, opts);
  const out = join(work, 'out');
  await mkdir(out);
  const kernelFile = await kernelImage(join(kroot, 'boot', `vmlinuz-${p.kernel.kernelVersion}`), out, work, log, opts);
  await mkdir(join(work, 'modules'));
  const mods = await collectModules(kroot, p.kernel.kernelVersion, join(work, 'modules'), opts);
  log(`Modules in load order: ${mods.order.join(', ')}`);
  const busybox = await busyboxBinary(p, downloads, work, log, opts);
  log('Compiling the workload');
  const workload = await compileWorkload(work, opts);
  const init = await readFile(join(guestSourceDir(), 'init'));
  const initrd = gzipSync(newcArchive(initramfsEntries(init, busybox, workload, mods)), { level: 9 });
  await writeFile(join(out, 'initrd.img'), initrd);
  log(`Initramfs: ${Math.round(initrd.length / 1024)} KiB`);
  return {
    key: p.key,
    kernelVersion: p.kernel.kernelVersion,
    kernelPackage: p.kernel.name,
    kernelPackageVersion: p.kernel.version,
    busyboxVersion: p.busybox.version,
    builtAt: new Date().toISOString(),
    kernel: join(p.key, kernelFile),
    initrd: join(p.key, 'initrd.img'),
  };
}

async function sizeOf(img: GuestImage): Promise<number> {
  return (await stat(img.kernel)).size + (await stat(img.initrd)).size;
}

/** Moves a finished build into dir/<key>; a concurrent build of the same key may have won. */
async function install(dir: string, work: string, rec: ImageRecord, force: boolean): Promise<void> {
  const target = join(dir, rec.key);
  if (force) await rm(target, { recursive: true, force: true });
  try {
    await rename(join(work, 'out'), target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw stepFailed(`Moving the build into ${target}`, e);
  }
  await writeRecord(dir, rec);
}

/**
 * Builds the test guest (Debian kernel, busybox, the workload) into dir, or returns the
 * build already there when its key (a hash of every input) matches. Downloaded packages are
 * cached in dir/downloads.
 * @throws FerryError IMAGE_BUILD_FAILED with a sentence naming the failed step; ABORTED on cancel.
 */
export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const dir = resolve(opts.dir);
  const log = opts.log ?? ((): void => undefined);
  const toolOpts: ToolOptions = opts.signal ? { signal: opts.signal } : {};
  await mkdir(dir, { recursive: true }).catch((e: unknown) => { throw stepFailed(`Creating the image folder ${dir}`, e); });
  const previous = readRecord(dir);
  let p: Plan;
  try {
    p = await plan(log, toolOpts);
  } catch (e) {
    // Offline and apt knows nothing: an existing build is better than none.
    if (opts.force || !previous || opts.signal?.aborted) throw e;
    log(`Could not check for a newer build (${(e as Error).message}); using the existing one`);
    const img = findImage(dir);
    return { ...img, cached: true, sizeBytes: await sizeOf(img) };
  }
  log(`Kernel ${p.kernel.name} ${p.kernel.version}, busybox ${p.busybox.version}${p.busybox.installedPath ? ' (installed)' : ''}, key ${p.key}`);
  if (!opts.force && previous?.key === p.key) {
    const img = imageOf(dir, previous);
    return { ...img, cached: true, sizeBytes: await sizeOf(img) };
  }
  const started = Date.now();
  const work = await mkdtemp(join(dir, '.build-')).catch((e: unknown) => { throw stepFailed(`Creating a work folder in ${dir}`, e); });
  try {
    const rec = await assemble(p, dir, work, log, toolOpts);
    await install(dir, work, rec, opts.force ?? false);
  } catch (e) {
    // A step's own failure says which step; a write that failed (a full disk) says where.
    throw stepFailed(`Writing the image in ${dir}`, e);
  } finally {
    // A cancelled dpkg-deb leaves its tar child writing for a moment: retry, and never let a
    // failed clean-up hide the error that got us here (prune() removes stale work folders later).
    await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
      .catch((e: unknown) => log(`Could not remove the work folder ${work}: ${(e as Error).message}`));
  }
  const keepDebs = new Set([debFileName(p.kernel), debFileName({ name: BUSYBOX_PACKAGE, version: p.busybox.version })]);
  await prune(dir, new Set([p.key, ...(previous ? [previous.key] : [])]), join(dir, 'downloads'), keepDebs);
  const img = findImage(dir);
  const sizeBytes = await sizeOf(img);
  log(`Built ${img.key} in ${((Date.now() - started) / 1000).toFixed(1)} s (${(sizeBytes / 1048576).toFixed(1)} MiB)`);
  return { ...img, cached: false, sizeBytes };
}
