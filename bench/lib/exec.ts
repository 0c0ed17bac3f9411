/**
 * Small process helpers for the benchmarks: run a command with a hard timeout (never throwing),
 * run the ferry CLI, run a command in a lab namespace, and ask the test guest over HTTP from the
 * lab's client namespace.
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { clientNsName } from '../../src/lab/index.js';
import { repoRoot } from '../../src/util/paths.js';

/** What a finished (or killed) command left behind. */
export interface RunResult {
  /** Exit status; null when it was killed by a signal (the timeout included). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the hard timeout killed it. */
  timedOut: boolean;
  /** Wall time in ms. */
  ms: number;
}

/**
 * Runs `bin args` and resolves when it ends, never rejecting: a non-zero exit, a spawn error or
 * the hard timeout (SIGKILL after `timeoutMs`) all come back as a {@link RunResult}.
 */
export function run(bin: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile(bin, args, {
      timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, env: env ? { ...process.env, ...env } : process.env,
    }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; killed?: boolean; signal?: string }) | null;
      const timedOut = Boolean(e?.killed && e.signal === 'SIGKILL');
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (e && code === null && !timedOut ? e.message : ''), timedOut, ms: performance.now() - t0 });
    });
    child.stdin?.end();
  });
}

/** Runs `argv` in network namespace `ns` (ip netns exec). */
export const nsRun = (ns: string, argv: string[], timeoutMs = 30_000): Promise<RunResult> =>
  run('ip', ['netns', 'exec', ns, ...argv], timeoutMs);

/** Like {@link run}, but rejects with the command's stderr unless it exited 0. */
export async function must(bin: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const r = await run(bin, args, timeoutMs);
  if (r.code !== 0) throw new Error(`"${bin} ${args.join(' ')}" failed (${r.timedOut ? 'timeout' : `exit ${String(r.code)}`}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A ferry CLI run: the RunResult plus stdout parsed as JSON when it is JSON. */
export interface CliRun<T> extends RunResult { json: T | undefined }

/** Runs `ferry ARGS` (the built CLI of this tree) as a user would, with a hard timeout. */
export async function ferry<T>(args: string[], timeoutMs: number): Promise<CliRun<T>> {
  const r = await run(process.execPath, [`${repoRoot()}dist/src/cli/main.js`, ...args], timeoutMs);
  let json: T | undefined;
  try { json = JSON.parse(r.stdout) as T; } catch { json = undefined; }
  return { ...r, json };
}

/** HTTP GET of the test guest at `ip` from lab `lab`'s client namespace; undefined when it did not answer. */
export async function guestGet(lab: string, ip: string, path: string, timeoutSec = 5): Promise<string | undefined> {
  const r = await nsRun(clientNsName(lab), ['curl', '-s', '--max-time', String(timeoutSec), `http://${ip}${path}`], (timeoutSec + 5) * 1000);
  return r.code === 0 ? r.stdout : undefined;
}

/** Polls the guest's /health until it says ok; false when `timeoutMs` passed first. */
export async function waitHealthy(lab: string, ip: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await guestGet(lab, ip, '/health', 2))?.trim() === 'ok') return true;
    await sleep(250);
  }
  return false;
}

/** The guest's pagesRewritten counter (/stats), for the dirty rate it really achieved. */
export async function pagesRewritten(lab: string, ip: string): Promise<{ pages: number; at: number } | undefined> {
  const body = await guestGet(lab, ip, '/stats');
  try {
    const pages = (JSON.parse(body ?? '') as { pagesRewritten?: number }).pagesRewritten;
    return typeof pages === 'number' ? { pages, at: performance.now() } : undefined;
  } catch {
    return undefined;
  }
}

/** MiB/s the guest rewrote between two /stats readings (256 pages of 4 KiB per MiB). */
export function dirtyRate(a: { pages: number; at: number } | undefined, b: { pages: number; at: number } | undefined): number | null {
  if (!a || !b || b.at <= a.at) return null;
  return Math.round(((b.pages - a.pages) / 256 / ((b.at - a.at) / 1000)) * 10) / 10;
}

/** Sets the guest's dirty rate; true when it answered ok. */
export async function setDirty(lab: string, ip: string, mbps: number): Promise<boolean> {
  return (await guestGet(lab, ip, `/dirty?mbps=${mbps}`))?.trim() === 'ok';
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The 1-minute load average, two decimals. */
export const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;

/**
 * Allows (or forbids again) unencrypted moves on both lab hosts: `ferry host settings H
 * --insecure-migration on|off`. Every host is tried, then one error names those that failed.
 */
export async function allowInsecure(on: boolean): Promise<void> {
  const failed: string[] = [];
  for (const h of ['h1', 'h2']) {
    const r = await ferry<{ allowInsecureMigration?: boolean }>(['host', 'settings', h, '--insecure-migration', on ? 'on' : 'off', '--json'], 30_000);
    if (r.code !== 0 || r.json?.allowInsecureMigration !== on) failed.push(`${h}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
  }
  if (failed.length) throw new Error(`could not set --insecure-migration ${on ? 'on' : 'off'} on ${failed.join('; ')}`);
}
