import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { tool, type ToolOptions } from './exec.js';

/** A Debian package at one version. */
export interface DebPackage { name: string; version: string }

/** The kernel package plus the kernel release it installs (`uname -r`, e.g. 6.1.0-56-amd64). */
export interface KernelPackage extends DebPackage { kernelVersion: string }

/** Where busybox comes from: the installed busybox-static, or its package to download. */
export interface BusyboxSource { version: string; installedPath?: string }

/** The meta package whose Depends names the current kernel. */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';
export const BUSYBOX_PACKAGE = 'busybox-static';

/** The value of one field of an `apt-cache show` stanza (first stanza only). */
export function parseField(show: string, field: string): string | undefined {
  const stanza = show.split(/\n\s*\n/)[0] ?? '';
  const m = new RegExp(`^${field}:[ \\t]*(.*)$`, 'm').exec(stanza);
  return m?.[1]?.trim() || undefined;
}

/**
 * The kernel package named by the meta package's Depends, e.g. from
 * `Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)`. The version is undefined when unpinned.
 */
export function parseKernelDepends(show: string): { name: string; version?: string; kernelVersion: string } | undefined {
  const depends = parseField(show, 'Depends') ?? '';
  for (const alt of depends.split(/[,|]/)) {
    const m = /^linux-image-(\d[^\s(]*)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?$/.exec(alt.trim());
    if (m?.[1]) return { name: `linux-image-${m[1]}`, version: m[2], kernelVersion: m[1] };
  }
  return undefined;
}

/** `apt-cache show` for the candidate version; refreshes the package lists once if apt knows nothing. */
async function showCandidate(pkg: string, opts: ToolOptions, log: (l: string) => void): Promise<string> {
  const args = ['show', '--no-all-versions', pkg];
  try {
    return await tool(`Looking up ${pkg} with apt-cache`, 'apt-cache', args, opts);
  } catch {
    log(`apt knows no ${pkg}; running apt-get update`);
    await tool('Refreshing the package lists with apt-get update', 'apt-get', ['-q', 'update'], opts);
    return tool(`Looking up ${pkg} with apt-cache`, 'apt-cache', args, opts);
  }
}

/** Resolves the current Debian kernel package from the meta package's Depends. */
export async function resolveKernel(log: (l: string) => void, opts: ToolOptions = {}): Promise<KernelPackage> {
  const meta = await showCandidate(KERNEL_META_PACKAGE, opts, log);
  const dep = parseKernelDepends(meta);
  if (!dep) {
    throw new FerryError('IMAGE_BUILD_FAILED', `Resolving the kernel failed: ${KERNEL_META_PACKAGE} depends on no linux-image package.`);
  }
  const version = dep.version ?? parseField(await showCandidate(dep.name, opts, log), 'Version');
  if (!version) throw new FerryError('IMAGE_BUILD_FAILED', `Resolving the kernel failed: apt shows no version of ${dep.name}.`);
  return { name: dep.name, version, kernelVersion: dep.kernelVersion };
}

/** Prefers the installed busybox-static (no download); otherwise its candidate package. */
export async function resolveBusybox(log: (l: string) => void, opts: ToolOptions = {}): Promise<BusyboxSource> {
  try {
    const q = await tool('Asking dpkg about busybox-static', 'dpkg-query', ['-W', '-f', '${Status}\t${Version}', BUSYBOX_PACKAGE], opts);
    const [status, version] = q.split('\t');
    if (status === 'install ok installed' && version && existsSync('/bin/busybox')) {
      return { version, installedPath: '/bin/busybox' };
    }
  } catch {
    // Not installed: fall through to the package.
  }
  const version = parseField(await showCandidate(BUSYBOX_PACKAGE, opts, log), 'Version');
  if (!version) throw new FerryError('IMAGE_BUILD_FAILED', `Resolving busybox failed: apt shows no version of ${BUSYBOX_PACKAGE}.`);
  return { version };
}

/** The file name a package is cached under (apt writes an epoch's colon as %3a). */
export const debFileName = (p: DebPackage): string => `${p.name}_${p.version.replace(/:/g, '%3a')}.deb`;

/**
 * Returns the cached .deb of the package, downloading it with `apt-get download` first when
 * missing. Downloads land in a private folder and are renamed into place, so a concurrent
 * build never sees half a file.
 */
export async function fetchDeb(p: DebPackage, downloads: string, log: (l: string) => void, opts: ToolOptions = {}): Promise<string> {
  const final = join(downloads, debFileName(p));
  const st = await stat(final).catch(() => undefined);
  if (st && st.size > 0) return final;
  await mkdir(downloads, { recursive: true });
  const tmp = await mkdtemp(join(downloads, '.dl-'));
  try {
    log(`Downloading ${p.name} ${p.version}`);
    // As root apt drops to the _apt user, which may not write here; stay root instead.
    await tool(`Downloading ${p.name} with apt-get`, 'apt-get', ['-q', '-o', 'APT::Sandbox::User=root', 'download', `${p.name}=${p.version}`], { ...opts, cwd: tmp });
    const deb = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FerryError('IMAGE_BUILD_FAILED', `Downloading ${p.name} failed: apt-get wrote no package file.`);
    await rename(join(tmp, deb), final);
    return final;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Unpacks a .deb into dest with dpkg-deb (never installs it). */
export async function extractDeb(deb: string, dest: string, opts: ToolOptions = {}): Promise<void> {
  await mkdir(dest, { recursive: true });
  await tool(`Unpacking ${deb} with dpkg-deb`, 'dpkg-deb', ['-x', deb, dest], opts);
}
