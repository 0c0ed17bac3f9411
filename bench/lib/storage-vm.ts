/**
 * The storage benchmark's VMs: created through the ferry CLI with a disk, given real data (the
 * disk is filled with qemu-io while the VM is stopped, past the first 64 MiB where the guest
 * keeps its records), and asked after every step whether memory and disk are intact.
 */
import { dirtyRate, ferry, guestGet, must, waitHealthy } from './exec.js';
import type { VmJson } from './ferry-case.js';
import type { GuestCheck, PrepRecord } from './storage-types.js';

/** A VM of the benchmark and where it is now. */
export interface BenchVm {
  name: string;
  ip: string;
  host: string;
  pool: string;
  sizeMiB: number;
  /** The guest's boot id once it is ready for the cases; a step that changes it rebooted the guest. */
  bootId: string | null;
}

/** How long `vm create` / `vm start` may take: a TCG boot of the guest on a busy machine. */
const BOOT_TIMEOUT_MS = 180_000;
/** The guest's records live at the start of the device; the fill starts past them. */
const RECORDS_MIB = 64;
/** qemu-io writes at most 2 GiB − 512 per request; the fill goes in chunks of 1 GiB. */
const CHUNK_MIB = 1024;

/** `qemu-img info` of an image, live ones included (-U: no lock taken). */
export async function imageFacts(path: string): Promise<{ virtualSize: number; actualSize: number } | undefined> {
  try {
    const j = JSON.parse(await must('qemu-img', ['info', '-U', '--output=json', path])) as { 'virtual-size'?: number; 'actual-size'?: number };
    return j['virtual-size'] !== undefined && j['actual-size'] !== undefined ? { virtualSize: j['virtual-size'], actualSize: j['actual-size'] } : undefined;
  } catch {
    return undefined;
  }
}

/** The VM as `ferry vm show` sees it now; undefined when the CLI failed. */
export async function showVm(name: string): Promise<VmJson | undefined> {
  return (await ferry<VmJson>(['vm', 'show', name, '--json'], 30_000)).json;
}

/** The image of the VM's first (only) disk now. */
export async function diskPath(name: string): Promise<string | undefined> {
  return (await showVm(name))?.disks?.[0]?.path;
}

/** The guest's counters from /stats, stamped with the time they were read. */
export interface GuestStats { records: number; pages: number; at: number }

export async function guestStats(lab: string, ip: string): Promise<GuestStats | undefined> {
  try {
    const s = JSON.parse((await guestGet(lab, ip, '/stats')) ?? '') as { diskRecordsThisBoot?: number; pagesRewritten?: number };
    return typeof s.diskRecordsThisBoot === 'number' && typeof s.pagesRewritten === 'number'
      ? { records: s.diskRecordsThisBoot, pages: s.pagesRewritten, at: performance.now() } : undefined;
  } catch {
    return undefined;
  }
}

/** KiB/s written to disk (4 KiB records) and MiB/s of memory rewritten between two readings. */
export function guestRates(a: GuestStats | undefined, b: GuestStats | undefined): { diskWriteKiBs: number | null; dirtyMiBs: number | null } {
  if (!a || !b || b.at <= a.at) return { diskWriteKiBs: null, dirtyMiBs: null };
  return {
    diskWriteKiBs: Math.round((((b.records - a.records) * 4) / ((b.at - a.at) / 1000)) * 10) / 10,
    dirtyMiBs: dirtyRate({ pages: a.pages, at: a.at }, { pages: b.pages, at: b.at }),
  };
}

const bootIdOf = async (lab: string, ip: string): Promise<string | null> => (await guestGet(lab, ip, '/boot-id'))?.trim() || null;

/** Creates and starts VM `name` on h1 with a disk of `sizeMiB` on `pool`; rejects when it does not come up healthy. */
export async function createVm(lab: string, name: string, sizeMiB: number, pool: string, memMiB: number): Promise<BenchVm> {
  const r = await ferry<VmJson>(['vm', 'create', name, '--host', 'h1', '--memory', `${memMiB}M`, '--disk', `${sizeMiB}M`, '--pool', pool, '--json'], BOOT_TIMEOUT_MS);
  if (r.code !== 0 || !r.json?.ip) throw new Error(`vm create ${name} failed: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  if (!(await waitHealthy(lab, r.json.ip, 60_000))) throw new Error(`the guest of ${name} did not answer /health after vm create`);
  return { name, ip: r.json.ip, host: r.json.host, pool, sizeMiB, bootId: await bootIdOf(lab, r.json.ip) };
}

/** The qemu-io commands that write 0xab from 64 MiB up to 64 MiB short of the end, in chunks. */
export function fillCommands(sizeMiB: number): string[] {
  const out: string[] = [];
  for (let at = RECORDS_MIB; at < sizeMiB - RECORDS_MIB; at += CHUNK_MIB) {
    out.push('-c', `write -P 0xab ${at}M ${Math.min(CHUNK_MIB, sizeMiB - RECORDS_MIB - at)}M`);
  }
  return out;
}

/**
 * Gives the VM's disk real data so that a copy is not just zero clusters: stops the VM
 * (`--force`), writes 0xab over most of the image with qemu-io, starts it again and waits for
 * its guest. Rejects when any step fails.
 */
export async function fillDisk(lab: string, vm: BenchVm): Promise<PrepRecord> {
  const rec: PrepRecord = { vm: vm.name, sizeMiB: vm.sizeMiB, pool: vm.pool, filledBytes: 0, fillMs: null, allocatedBytes: null, notes: [] };
  const path = await diskPath(vm.name);
  if (!path) throw new Error(`vm show ${vm.name} named no disk`);
  const stop = await ferry(['vm', 'stop', vm.name, '--force', '--json'], 60_000);
  if (stop.code !== 0) throw new Error(`vm stop ${vm.name} failed: ${(stop.stderr || stop.stdout).trim().slice(0, 300)}`);
  const t0 = performance.now();
  await must('qemu-io', ['-f', 'qcow2', ...fillCommands(vm.sizeMiB), path], 600_000);
  rec.fillMs = Math.round(performance.now() - t0);
  rec.filledBytes = (vm.sizeMiB - 2 * RECORDS_MIB) * 1024 * 1024;
  rec.allocatedBytes = (await imageFacts(path))?.actualSize ?? null;
  const start = await ferry(['vm', 'start', vm.name, '--json'], BOOT_TIMEOUT_MS);
  if (start.code !== 0) throw new Error(`vm start ${vm.name} failed: ${(start.stderr || start.stdout).trim().slice(0, 300)}`);
  if (!(await waitHealthy(lab, vm.ip, 60_000))) throw new Error(`the guest of ${vm.name} did not answer /health after the fill`);
  const verify = (await guestGet(lab, vm.ip, '/disk/verify', 30))?.trim();
  if (verify !== 'ok') rec.notes.push(`/disk/verify after the fill: ${String(verify)}`);
  vm.bootId = await bootIdOf(lab, vm.ip);
  return rec;
}

/** Where the VM is and whether its guest is intact: /health, /disk/verify, /verify and its boot id. */
export async function checkGuest(lab: string, vm: BenchVm): Promise<GuestCheck> {
  const show = await showVm(vm.name);
  const healthy = await waitHealthy(lab, vm.ip, 15_000);
  const diskVerify = (await guestGet(lab, vm.ip, '/disk/verify', 30))?.trim() ?? 'no answer';
  const memVerify = (await guestGet(lab, vm.ip, '/verify', 30))?.trim() ?? 'no answer';
  const boot = await bootIdOf(lab, vm.ip);
  if (show?.host) vm.host = show.host;
  return { host: show?.host ?? null, state: show?.state ?? null, healthy, diskVerify, memVerify, bootIdSame: boot !== null && boot === vm.bootId };
}

/** The other host of the two-host lab. */
export const otherHost = (h: string): string => (h === 'h1' ? 'h2' : 'h1');
