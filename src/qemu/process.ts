import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';
import { errnoWhy, readPidFile } from '../util/files.js';
import { buildArgv, qemuEnv, runFiles, type QemuLaunch } from './argv.js';

const run = promisify(execFile);
export const QEMU_BIN = process.env.FERRY_QEMU ?? 'qemu-system-x86_64';

/** A new folder in the system's temp dir for a probe's QEMU; QEMU_START_FAILED when none can be made (a full /tmp). */
export function tempDir(prefix: string, what: string): string {
  try {
    return mkdtempSync(join(tmpdir(), prefix));
  } catch (e) {
    throw new FerryError('QEMU_START_FAILED', `${what} cannot make its folder in ${tmpdir()}: ${errnoWhy(e)}.`, { cause: e });
  }
}

/**
 * Starts QEMU with -daemonize: QEMU forks, finishes its set-up, writes its pidfile and only then
 * lets the parent exit, so a zero exit means the VM exists, and the daemon lives in a session of
 * its own, outliving the agent (agent restarts and upgrades leave VMs alone).
 */
export async function startQemu(l: QemuLaunch): Promise<number> {
  const f = runFiles(l.runDir);
  try {
    await mkdir(l.runDir, { recursive: true });
    await rm(f.qmp, { force: true });
    await rm(f.pid, { force: true });
  } catch (e) {
    throw new FerryError('QEMU_START_FAILED', `The run folder of "${l.name}" (${l.runDir}) cannot be prepared: ${errnoWhy(e)}; is the agent's state disk full or read-only?`, { cause: e });
  }
  try {
    await run(QEMU_BIN, buildArgv(l), { timeout: 60_000, env: qemuEnv(process.env) });
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').slice(-3).join(' ');
    throw new FerryError('QEMU_START_FAILED', `QEMU could not start the VM "${l.name}": ${msg}`, { cause: e });
  }
  const pid = readPidFile(f.pid);
  if (pid === undefined) throw new FerryError('QEMU_START_FAILED', `QEMU started "${l.name}" but wrote no pidfile.`);
  return pid;
}


/**
 * True when `pid` is a live QEMU of the VM with this UUID. The cmdline check guards against a
 * recycled pid after a host reboot or a long agent outage.
 */
export function isQemuAlive(pid: number, uuid: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(uuid)) return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Sends a signal to a QEMU that belongs to this VM; a no-op when it is gone already. True when it was signalled. */
export function signalQemu(pid: number, uuid: string, signal: NodeJS.Signals): boolean {
  if (!isQemuAlive(pid, uuid)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // gone between the check and the kill
  }
}

/**
 * Waits until the process is gone; false on timeout. Looks every 10 ms for the first second (a
 * QEMU told to quit is gone within tens of ms, and a move's confirm phase waits for it), then
 * every 50 ms.
 */
export async function waitGone(pid: number, uuid: string, timeoutMs: number): Promise<boolean> {
  const start = Date.now();
  const end = start + timeoutMs;
  while (Date.now() < end) {
    if (!isQemuAlive(pid, uuid)) return true;
    await new Promise((r) => setTimeout(r, Date.now() - start < 1000 ? 10 : 50));
  }
  return !isQemuAlive(pid, uuid);
}

/** Resident memory of a process in bytes (for metrics and the notes' numbers). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
