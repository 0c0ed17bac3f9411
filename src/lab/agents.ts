/**
 * The lab's agents: one ferryd per host, started inside the host's namespace in a session of
 * its own so it outlives the CLI that started it, found again later through its pidfile.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { AgentConfig } from '../agent/config.js';
import { FerryError } from '../errors/index.js';
import { readPidFile } from '../util/files.js';
import { repoRoot } from '../util/paths.js';
import { signalAll, sleep } from './netns.js';
import type { HostPlan } from './plan.js';

/** The agent's entry point in the built tree. */
export const defaultAgentEntry = (): string => join(repoRoot(), 'dist', 'src', 'agent', 'main.js');

/** Unix socket paths longer than this do not fit in sockaddr_un. */
const MAX_SOCKET_PATH = 107;

/**
 * Writes the agent's config file. Resolves true when its content changed, so that a running
 * agent is restarted to pick it up (QEMUs outlive the agent, so a restart costs VMs nothing).
 */
export function writeAgentConfig(h: HostPlan, config: AgentConfig): boolean {
  if (h.socketPath.length > MAX_SOCKET_PATH) {
    throw new FerryError('LAB_FAILED', `The agent socket path ${h.socketPath} is too long for a unix socket; use a shorter FERRY_HOME.`);
  }
  mkdirSync(h.stateDir, { recursive: true });
  for (const pool of config.pools) mkdirSync(pool.path, { recursive: true });
  const text = `${JSON.stringify(config, null, 2)}\n`;
  let old: string | undefined;
  try {
    old = readFileSync(h.configPath, 'utf8');
  } catch {
    old = undefined;
  }
  if (old === text) return false;
  writeFileSync(h.configPath, text);
  return true;
}

/** The command line of `pid`, NUL-separated as the kernel keeps it, or undefined when it is gone. */
function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

/** True while `pid` runs; a zombie (empty command line) counts as gone. */
const running = (pid: number): boolean => (cmdline(pid) ?? '') !== '';

/**
 * The pid of host `h`'s running agent, or null. The pidfile alone could name a recycled pid,
 * so the process must also carry this host's config path on its command line.
 */
export function agentPid(h: HostPlan): number | null {
  const pid = readPidFile(h.pidPath);
  if (pid === undefined) return null;
  const cmd = cmdline(pid);
  return cmd !== undefined && cmd.split('\0').includes(h.configPath) ? pid : null;
}

/** True when the agent answers `GET /v1/host` with 200 and JSON on its unix socket. */
export function probeAgent(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/v1/host', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        try {
          JSON.parse(body);
          resolve(res.statusCode === 200);
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The last `lines` lines of a log file, or a note that there is none. */
export function logTail(path: string, lines = 20): string {
  try {
    const all = readFileSync(path, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Options of {@link startAgent}. */
export interface StartAgentOptions { entry: string; timeoutMs: number }

/**
 * Starts host `h`'s agent in its namespace (`ip netns exec NS setsid node ENTRY --config F`)
 * with output appended to ferryd.log, waits until it answers on its socket, and resolves
 * with its pid. Throws LAB_FAILED quoting the log's tail when it exits or stays silent.
 */
export async function startAgent(h: HostPlan, opts: StartAgentOptions): Promise<number> {
  if (!existsSync(opts.entry)) {
    throw new FerryError('LAB_FAILED', `The agent ${opts.entry} is not built: run \`npm run build\`.`);
  }
  // Stale files of a dead agent would make the wait below see the old one.
  rmSync(h.pidPath, { force: true });
  rmSync(h.socketPath, { force: true });
  const log = openSync(h.logPath, 'a');
  let exited: string | undefined;
  try {
    const child = spawn('ip', ['netns', 'exec', h.namespace, 'setsid', process.execPath, opts.entry, '--config', h.configPath], {
      stdio: ['ignore', log, log],
    });
    child.on('error', (e) => { exited = e.message; });
    child.on('exit', (code, signal) => { exited = signal ? `was killed by ${signal}` : `exited with status ${code}`; });
    child.unref();
    try {
      await waitReady(h, opts.timeoutMs, () => exited);
    } catch (e) {
      // An agent that never answered must not pass for a running one at the next `up`.
      if (child.pid !== undefined && exited === undefined) signalAll([child.pid], 'SIGKILL');
      throw e;
    }
    // Without a pidfile yet, the spawned pid is the agent's: ip and setsid exec, never fork.
    return agentPid(h) ?? child.pid ?? 0;
  } finally {
    closeSync(log);
  }
}

/** Polls the agent's socket until it answers; throws LAB_FAILED if it exits or time runs out. */
async function waitReady(h: HostPlan, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probeAgent(h.socketPath)) return;
    const why = exited();
    if (why !== undefined || Date.now() >= deadline) {
      const what = why ?? `did not answer on ${h.socketPath} within ${Math.round(timeoutMs / 1000)} s`;
      throw new FerryError('LAB_FAILED', `The agent of host ${h.name} ${what}; the end of ${h.logPath}:\n${logTail(h.logPath)}`);
    }
    await sleep(200);
  }
}

/**
 * Waits until host `h`'s already running agent (pid `pid`) answers, as after a concurrent
 * `up` that started it moments ago; throws LAB_FAILED if it exits or stays silent.
 */
export async function waitAgent(h: HostPlan, pid: number, timeoutMs: number): Promise<void> {
  await waitReady(h, timeoutMs, () => (running(pid) ? undefined : 'exited'));
}

/** Stops host `h`'s agent if it runs: SIGTERM, then SIGKILL after `graceMs`. Its QEMUs keep running. */
export async function stopAgent(h: HostPlan, graceMs: number): Promise<void> {
  const pid = agentPid(h);
  if (pid === null) return;
  signalAll([pid], 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (running(pid) && Date.now() < deadline) await sleep(100);
  if (running(pid)) signalAll([pid], 'SIGKILL');
}
