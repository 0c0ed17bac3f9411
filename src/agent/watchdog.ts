/**
 * The fencing watchdog: a small process beside ferryd (watchdog-main.ts) that powers off this
 * host's HA VMs when ferryd stops feeding it, as Proxmox's watchdog-mux does for its agent.
 *
 * Why: ferryd fences its HA VMs itself when it cannot renew its cluster lease (src/cluster/node.ts).
 * But if ferryd is down (a crash, a hang, a stop for longer than a restart), its QEMUs keep
 * running, its lease expires, and after TTL + margin the survivors start the same VMs on the same
 * shared disks: two writers. The watchdog closes that gap.
 *
 * How: ferryd writes an *arm* file (stateDir/watchdog.json, replaced atomically) every half second
 * with a deadline and the HA QEMUs (pid and uuid) it would fence; src/cluster/fencing.ts
 * (watchdogDeadline) says why the deadline is early enough. The watchdog polls the file and times
 * each arm on its own monotonic clock (deadline − writtenAt from when it first saw it), so a step
 * of the wall clock neither fires it early nor late. Past the deadline it SIGKILLs each listed QEMU
 * still carrying that VM's uuid, once per arm, and writes what it did to watchdog.fired.json,
 * which the next ferryd reports. A restart of ferryd within the deadline costs nothing: the new
 * agent feeds the same watchdog, and starts from the last renewal the old one wrote.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { readPidFile, writeJsonAtomic } from '../util/files.js';

/** One QEMU the watchdog would power off. */
export interface WatchdogVm { name: string; pid: number; uuid: string }

/** What ferryd tells the watchdog: after `deadline` (epoch ms, ferryd's clock at `writtenAt`), power off `vms`. */
export interface WatchdogArm { deadline: number; vms: WatchdogVm[]; agentPid: number; writtenAt: number; renewedAt: number }

/** What the watchdog did: the arm it fired on, and the VMs it killed (listed ones already gone are not). */
export interface WatchdogFired extends WatchdogArm { killed: string[]; firedAt: number }

export const watchdogFiles = (stateDir: string): { arm: string; fired: string; pid: string; log: string } => ({
  arm: join(stateDir, 'watchdog.json'), fired: join(stateDir, 'watchdog.fired.json'),
  pid: join(stateDir, 'watchdog.pid'), log: join(stateDir, 'watchdog.log'),
});

function readJson<T>(path: string, valid: (x: Partial<T>) => boolean): T | undefined {
  try {
    const x = JSON.parse(readFileSync(path, 'utf8')) as Partial<T>;
    return valid(x) ? (x as T) : undefined;
  } catch {
    return undefined;
  }
}

/** The arm in force, or undefined (none, or a file being replaced or damaged: the next poll reads it again). */
export function readArm(path: string): WatchdogArm | undefined {
  return readJson<WatchdogArm>(path, (a) => typeof a.deadline === 'number' && typeof a.writtenAt === 'number' && Array.isArray(a.vms));
}

/** How much of an arm's age on first sight (wall clock) is believed: a clock step can move a deadline by this much at most. */
export const MAX_ARM_AGE_MS = 1_000;

/**
 * The watchdog's clock for one arm: from when it first saw the arm (its own monotonic ms), the arm
 * is due (deadline − writtenAt) later, less the arm's age then (as the wall clock tells it, at most
 * {@link MAX_ARM_AGE_MS}). A new arm (another writtenAt) starts over; one that fired never fires again.
 */
export class ArmTimer {
  private seen: number | undefined;
  private dueAt = Infinity;
  private fired = false;

  /** True once when `arm`, read at monotonic time `mono` and wall time `wall`, must fire now. */
  due(arm: WatchdogArm | undefined, mono: number, wall: number): arm is WatchdogArm {
    if (!arm) return false;
    if (arm.writtenAt !== this.seen) {
      this.seen = arm.writtenAt;
      const age = Math.min(MAX_ARM_AGE_MS, Math.max(0, wall - arm.writtenAt));
      this.dueAt = mono + Math.max(0, arm.deadline - arm.writtenAt - age);
      this.fired = false;
    }
    if (this.fired || arm.vms.length === 0 || mono < this.dueAt) return false;
    this.fired = true;
    return true;
  }
}

/** True when `pid` is a live watchdog of `stateDir` (its command line names watchdog-main and the folder). */
export function watchdogAlive(pid: number | undefined, stateDir: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('watchdog-main.js')) && argv.includes(stateDir);
  } catch {
    return false;
  }
}

/**
 * Makes this process the watchdog of `stateDir` (its pidfile, created exclusively); false when a
 * live one holds it. A pidfile left by a dead one is taken over.
 */
export function claimPidFile(stateDir: string): boolean {
  const { pid } = watchdogFiles(stateDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(pid, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readPidFile(pid);
      if (holder === process.pid) return true;
      if (watchdogAlive(holder, stateDir)) return false;
      rmSync(pid, { force: true });
    }
  }
  return false;
}

const ENSURE_EVERY_MS = 2_000;

/** ferryd's side: feeds the arm file and keeps one watchdog running for this state folder. */
export class WatchdogFeeder {
  private readonly files: ReturnType<typeof watchdogFiles>;
  private last = '';
  private ensuredAt = 0;
  private firstArm = true;
  /** The last arm given: its deadline and the VMs it listed. */
  private lastArm: { deadline: number; names: string[] } | undefined;

  constructor(private readonly stateDir: string, private readonly log: Logger,
    private readonly entry = fileURLToPath(new URL('./watchdog-main.js', import.meta.url))) {
    this.files = watchdogFiles(stateDir);
  }

  /** The last lease renewal the agent before this one recorded (epoch ms), if any. */
  lastRenewal(): number | undefined {
    return readArm(this.files.arm)?.renewedAt;
  }

  /** Sets the deadline and the VMs to power off after it; `vms` empty disarms. */
  arm(deadline: number, vms: WatchdogVm[], renewedAt: number): void {
    if (this.firstArm) {
      this.firstArm = false;
      this.reportFired();
    }
    this.lastArm = { deadline, names: vms.map((v) => v.name) };
    const key = JSON.stringify([deadline, vms]);
    // Rewritten when it changed, and when the file is gone (removed by hand, or a folder restored).
    if (key !== this.last || !existsSync(this.files.arm)) {
      const body: WatchdogArm = { deadline, vms, agentPid: process.pid, writtenAt: Date.now(), renewedAt };
      writeJsonAtomic(this.files.arm, body, { tmp: `${this.files.arm}.${process.pid}.tmp` });
      this.last = key;
    }
    if (vms.length > 0) this.ensureRunning();
  }

  /** Starts the watchdog unless one runs (checked at most every 2 s); it outlives this agent. */
  ensureRunning(): void {
    if (Date.now() - this.ensuredAt < ENSURE_EVERY_MS) return;
    this.ensuredAt = Date.now();
    if (watchdogAlive(readPidFile(this.files.pid), this.stateDir)) return;
    if (!existsSync(this.entry)) {
      this.log.error({ entry: this.entry }, 'the fencing watchdog is not built; HA VMs are not fenced while ferryd is down');
      return;
    }
    const out = openSync(this.files.log, 'a');
    try {
      // A session of its own, like the QEMUs: an agent's stop or crash leaves it running.
      const child = spawn(process.execPath, [this.entry, '--state', this.stateDir], { detached: true, stdio: ['ignore', out, out] });
      child.on('error', (err) => this.log.error({ err }, 'could not start the fencing watchdog'));
      child.unref();
      this.log.info({ pid: child.pid }, 'fencing watchdog started');
    } finally {
      closeSync(out);
    }
  }

  /**
   * True when the watchdog powered off the QEMU of `name` at or after `since` (epoch ms): its
   * record says so, or the last arm listed the VM and its deadline has passed (the watchdog writes
   * its record just after the kill, so a death seen at once may come before it).
   */
  firedOn(name: string, since: number): boolean {
    const a = this.lastArm;
    if (a && a.deadline <= Date.now() && a.names.includes(name)) return true;
    const f = readJson<WatchdogFired>(this.files.fired, (x) => Array.isArray(x.killed) && typeof x.firedAt === 'number');
    return f !== undefined && f.firedAt >= since && f.killed.includes(name);
  }

  /** What the watchdog powered off while no agent fed it, if it fired since the last look; the record is then moved aside. */
  takeFired(): WatchdogFired | undefined {
    const fired = readJson<WatchdogFired>(this.files.fired, (f) => Array.isArray(f.killed));
    if (fired) renameSync(this.files.fired, `${this.files.fired}.${Date.now()}`);
    return fired;
  }

  private reportFired(): void {
    const f = this.takeFired();
    if (f) {
      this.log.warn({ vms: f.killed, at: new Date(f.firedAt).toISOString() },
        'while no agent fed it, the fencing watchdog powered off these HA VMs (src/agent/watchdog.ts)');
    }
  }
}
