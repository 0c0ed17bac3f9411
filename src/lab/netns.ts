/**
 * Thin wrappers around iproute2 (`ip`, `tc`) run with execFile: no shell, so names and
 * arguments are never reinterpreted. Every failure becomes LAB_FAILED quoting the command
 * and what it printed, which says which step of building the lab broke.
 */
import { execFile } from 'node:child_process';
import { FerryError } from '../errors/index.js';

interface ExecResult { stdout: string; stderr: string }

/** Runs a command and returns its output; throws LAB_FAILED when it cannot run or exits non-zero. */
export function sh(cmd: string, args: string[]): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (!err) {
        resolve({ stdout, stderr });
        return;
      }
      const said = (stderr || err.message).trim().replace(/\.$/, '');
      reject(new FerryError('LAB_FAILED', `The command "${[cmd, ...args].join(' ')}" failed: ${said}.`, { cause: err }));
    });
  });
}

/** `ip [-n ns] ARGS…`. */
export const ip = (args: string[], ns?: string): Promise<ExecResult> =>
  sh('ip', ns === undefined ? args : ['-n', ns, ...args]);

/** `tc -n ns ARGS…`. */
export const tc = (args: string[], ns: string): Promise<ExecResult> => sh('tc', ['-n', ns, ...args]);

/** Names of every network namespace `ip netns` knows. */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await ip(['-j', 'netns', 'list']);
  // With no namespace at all, some iproute2 versions print nothing rather than [].
  if (stdout.trim() === '') return [];
  return (JSON.parse(stdout) as { name: string }[]).map((n) => n.name);
}

export async function addNetns(name: string): Promise<void> {
  await ip(['netns', 'add', name]);
}

export async function delNetns(name: string): Promise<void> {
  await ip(['netns', 'del', name]);
}

/** PIDs of every process whose network namespace is `ns` (empty when `ns` does not exist). */
export async function nsPids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await ip(['netns', 'pids', ns]);
    return stdout.split(/\s+/).filter((s) => s !== '').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** What `ip -j link show` says of a link that matters to the lab. */
export interface LinkState { name: string; up: boolean; master?: string }

/** The state of link `dev` in namespace `ns`, or undefined when there is no such link. */
export async function linkState(ns: string, dev: string): Promise<LinkState | undefined> {
  let out: string;
  try {
    out = (await ip(['-j', 'link', 'show', 'dev', dev], ns)).stdout;
  } catch {
    return undefined;
  }
  const [link] = JSON.parse(out) as { ifname: string; flags?: string[]; master?: string }[];
  if (!link) return undefined;
  return { name: link.ifname, up: (link.flags ?? []).includes('UP'), ...(link.master ? { master: link.master } : {}) };
}

/** Sends `signal` to each pid, ignoring those that are already gone. */
export function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already exited: exactly what we wanted.
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stops every process in namespace `ns`: SIGTERM first when `graceMs` > 0 (QEMU and the agent
 * exit cleanly on it), SIGKILL for whatever is left. Resolves with the pids it signalled.
 */
export async function killNamespace(ns: string, graceMs: number): Promise<number[]> {
  const first = await nsPids(ns);
  if (first.length === 0) return [];
  signalAll(first, graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  const deadline = Date.now() + graceMs;
  let left = await nsPids(ns);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = await nsPids(ns);
  }
  // Processes may have forked meanwhile; a few rounds of SIGKILL catch the stragglers.
  for (let round = 0; left.length > 0 && round < 20; round++) {
    signalAll(left, 'SIGKILL');
    await sleep(100);
    left = await nsPids(ns);
  }
  if (left.length > 0) {
    throw new FerryError('LAB_FAILED', `Processes ${left.join(', ')} in namespace ${ns} did not die.`);
  }
  return first;
}
