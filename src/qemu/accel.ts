import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, accessSync, constants } from 'node:fs';
import { release, hostname } from 'node:os';
import { join } from 'node:path';
import { QEMU_BIN, tempDir } from './process.js';
import { writeCache } from '../util/index.js';

export type Accel = 'kvm' | 'tcg';

/** The recorded outcome of a probe, per host and kernel. */
export interface AccelProbe { key: string; accel: Accel; reason: string; probedAt: string; ms: number }

/** What the probe boots: the test guest and the serial line that says it reached user space. */
export interface ProbeGuest { kernel: string; initrd: string; marker: string }

/** The identity a probe result holds for: this machine and this kernel. */
export function probeKey(): string {
  let machineId = hostname();
  try { machineId = readFileSync('/etc/machine-id', 'utf8').trim(); } catch { /* keep the hostname */ }
  return `${machineId}/${release()}`;
}

/**
 * Decides the accelerator. `kvm`/`tcg` are taken as configured. `auto` uses KVM only when a
 * probe boot of the test guest under KVM reaches its init in time: /dev/kvm can open and still be
 * unable to run Linux (nested virtualisation hangs in the kernel's decompressor), so the device's
 * presence proves nothing. The answer is recorded in `cacheFile` and reused for the same key.
 */
/** Where the probe looks and what it runs; tests point these at stand-ins. */
export interface ProbeEnv { kvmDevice: string; qemuBin: string; timeoutMs: number }
const DEFAULT_PROBE_ENV: ProbeEnv = { kvmDevice: '/dev/kvm', qemuBin: QEMU_BIN, timeoutMs: 15_000 };

export async function resolveAccel(mode: 'auto' | Accel, guest: ProbeGuest, cacheFile: string, env: Partial<ProbeEnv> = {}): Promise<AccelProbe> {
  const { kvmDevice, qemuBin, timeoutMs } = { ...DEFAULT_PROBE_ENV, ...env };
  const key = probeKey();
  const now = new Date().toISOString();
  if (mode !== 'auto') return { key, accel: mode, reason: 'set in the agent config', probedAt: now, ms: 0 };
  const cached = readCache(cacheFile);
  if (cached?.key === key) return cached;
  let result: AccelProbe;
  if (!kvmUsable(kvmDevice)) {
    result = { key, accel: 'tcg', reason: `${kvmDevice} is missing or not accessible`, probedAt: now, ms: 0 };
  } else {
    const t0 = Date.now();
    const ok = await bootsUnderKvm(guest, qemuBin, timeoutMs);
    const ms = Date.now() - t0;
    result = ok
      ? { key, accel: 'kvm', reason: `a KVM probe boot reached the guest's init in ${ms} ms`, probedAt: now, ms }
      : { key, accel: 'tcg', reason: `a KVM probe boot did not reach the guest's init within ${timeoutMs} ms`, probedAt: now, ms };
  }
  writeCache(cacheFile, result);
  return result;
}

function kvmUsable(dev: string): boolean {
  try { accessSync(dev, constants.R_OK | constants.W_OK); return true; } catch { return false; }
}

function readCache(file: string): AccelProbe | undefined {
  try { return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as AccelProbe : undefined; } catch { return undefined; }
}

/** Boots the guest under KVM without devices and watches its serial log for the marker. */
async function bootsUnderKvm(g: ProbeGuest, qemuBin: string, timeoutMs: number): Promise<boolean> {
  const dir = tempDir('ferry-probe-', 'The accelerator probe');
  const serial = join(dir, 'serial.log');
  const child = spawn(qemuBin, [
    '-machine', 'q35,accel=kvm', '-cpu', 'qemu64', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0 panic=-1 ferry.probe=1',
    '-serial', `file:${serial}`, '-no-reboot',
  ], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && child.exitCode === null) {
      if (existsSync(serial) && readFileSync(serial, 'utf8').includes(g.marker)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  } finally {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
