/** Small file helpers shared by the agent, the lab and the fencing watchdog. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes `value` as JSON to `path` atomically: a temporary file `tmp` (unique to the writer when
 * several processes write the same file) renamed over it, so a reader sees the old content or the
 * new, never a part. `pretty` indents it for people to read.
 */
export function writeJsonAtomic(path: string, value: unknown, opts: { pretty?: boolean; tmp?: string } = {}): void {
  const tmp = opts.tmp ?? `${path}.tmp`;
  writeFileSync(tmp, opts.pretty ? `${JSON.stringify(value, null, 2)}\n` : JSON.stringify(value));
  renameSync(tmp, path);
}

/** The pid a pidfile names (a positive integer), or undefined when there is no such file or number. */
export function readPidFile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** What a file-system error says in a sentence: its errno code (ENOSPC, EROFS…), else its message. */
export function errnoWhy(e: unknown): string {
  return (e as NodeJS.ErrnoException | null)?.code ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Writes a cache file (its folder too). Best effort: on a full or read-only disk only the cache is
 * lost (false), and what it caches is worked out again next time.
 */
export function writeCache(path: string, value: unknown): boolean {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeJsonAtomic(path, value, { pretty: true });
    return true;
  } catch {
    return false;
  }
}
