import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FerryError } from '../errors/index.js';
import { hasTool, tool, toolBytes, type ToolOptions } from './exec.js';

/** The drivers the guest needs; their dependencies are pulled in. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net', 'virtio_blk', 'button', 'evdev'] as const;

/**
 * Dependencies of the guest's modules in Debian's 6.1 kernels, used only when modinfo
 * (package kmod) is missing; with modinfo the kernel's own metadata decides.
 */
export const FALLBACK_DEPENDS: Readonly<Record<string, readonly string[]>> = {
  virtio_ring: [],
  virtio: ['virtio_ring'],
  virtio_pci_modern_dev: [],
  virtio_pci_legacy_dev: [],
  virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'],
  failover: [],
  net_failover: ['failover'],
  virtio_net: ['virtio_ring', 'virtio', 'net_failover'],
  virtio_blk: ['virtio', 'virtio_ring'],
  button: [],
  evdev: [],
};

/** Kernel module names treat dashes and underscores alike; files use either. */
export const moduleName = (file: string): string => basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

/**
 * A load order for busybox insmod, which resolves nothing itself: every module after all
 * of its dependencies, depth first from the roots in the order given.
 * @throws FerryError IMAGE_BUILD_FAILED on a dependency cycle.
 */
export function loadOrder(roots: readonly string[], depends: ReadonlyMap<string, readonly string[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: string): void => {
    const s = state.get(m);
    if (s === 'done') return;
    if (s === 'visiting') throw new FerryError('IMAGE_BUILD_FAILED', `Ordering the kernel modules failed: ${m} depends on itself.`);
    state.set(m, 'visiting');
    for (const d of depends.get(m) ?? []) visit(d);
    state.set(m, 'done');
    order.push(m);
  };
  roots.forEach(visit);
  return order;
}

/** Maps module name → file for every module of the unpacked kernel tree. */
async function indexModules(modulesDir: string): Promise<Map<string, string>> {
  const files = await readdir(join(modulesDir, 'kernel'), { recursive: true });
  const index = new Map<string, string>();
  for (const f of files) if (/\.ko(\.(xz|zst|gz))?$/.test(f)) index.set(moduleName(f), join(modulesDir, 'kernel', f));
  return index;
}

/** Names of modules built into the kernel: nothing to load for them. */
async function builtins(modulesDir: string): Promise<Set<string>> {
  const text = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  return new Set(text.split('\n').filter((l) => l !== '').map(moduleName));
}

/** The module as a plain .ko: busybox insmod cannot read compressed modules. */
async function plainModule(file: string, opts: ToolOptions): Promise<Buffer> {
  const step = `Decompressing ${basename(file)}`;
  if (file.endsWith('.xz')) return toolBytes(step, 'xz', ['-dc', file], opts);
  if (file.endsWith('.zst')) return toolBytes(step, 'zstd', ['-dc', file], opts);
  if (file.endsWith('.gz')) return gunzipSync(await readFile(file));
  return readFile(file);
}

/** What the guest's initramfs gets: plain modules by name, and the order to load them in. */
export interface GuestModules { order: string[]; files: Map<string, Buffer> }

/**
 * Collects the guest's modules and their dependencies from an unpacked kernel package,
 * decompressed into workDir, and orders them for loading.
 */
export async function collectModules(root: string, kernelVersion: string, workDir: string, opts: ToolOptions = {}): Promise<GuestModules> {
  const modulesDir = join(root, 'lib', 'modules', kernelVersion);
  const index = await indexModules(modulesDir);
  const builtin = await builtins(modulesDir);
  const useModinfo = await hasTool('modinfo');
  const depends = new Map<string, string[]>();
  const files = new Map<string, Buffer>();
  const pending: string[] = [...GUEST_MODULES];
  for (let m = pending.shift(); m !== undefined; m = pending.shift()) {
    if (depends.has(m) || builtin.has(m)) continue;
    const src = index.get(m);
    if (!src) throw new FerryError('IMAGE_BUILD_FAILED', `Collecting kernel modules failed: ${kernelVersion} has no module ${m}.`);
    const plain = join(workDir, `${m}.ko`);
    await writeFile(plain, await plainModule(src, opts));
    files.set(m, await readFile(plain));
    const deps = useModinfo
      ? (await tool(`Reading the dependencies of ${m} with modinfo`, 'modinfo', ['-F', 'depends', plain], opts)).trim().split(',').filter((d) => d !== '')
      : [...(FALLBACK_DEPENDS[m] ?? [])];
    depends.set(m, deps.map(moduleName).filter((d) => !builtin.has(d)));
    pending.push(...deps.map(moduleName));
  }
  return { order: loadOrder(GUEST_MODULES, depends), files };
}
