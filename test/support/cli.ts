import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/util/paths.js';
import { clientNsName } from '../../src/lab/index.js';

const run = promisify(execFile);
const CLI = `${repoRoot()}dist/src/cli/main.js`;

/** The result of a CLI run: exit code, stdout, stderr, and stdout parsed as JSON when it is. */
export interface CliResult<T = unknown> { code: number; stdout: string; stderr: string; json: T }

/** Runs `ferry ARGS` as a user would (a child process), never throwing on a non-zero exit. */
export async function ferry<T = unknown>(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult<T>> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr, json: tryJson(r.stdout) as T };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '', json: tryJson(x.stdout ?? '') as T };
  }
}

const tryJson = (s: string): unknown => { try { return JSON.parse(s); } catch { return undefined; } };

/** An HTTP GET from the lab's client namespace (curl), the way the guest's clients see it. */
export async function guestGet(lab: string, ip: string, path: string, timeoutSec = 5): Promise<string> {
  const r = await run('ip', ['netns', 'exec', clientNsName(lab), 'curl', '-s', '--max-time', String(timeoutSec), `http://${ip}${path}`]);
  return r.stdout;
}

/** Polls until `fn` returns a truthy value or the time is up. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** True while the process exists and is not a zombie (a reaped-late exit counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
