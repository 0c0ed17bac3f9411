import { mkdirSync, readFileSync } from 'node:fs';
import { FerryError } from '../errors/index.js';
import { writeJsonAtomic } from './files.js';
import { dirname } from 'node:path';
import { contextFile } from './paths.js';

/**
 * One host the CLI can talk to. `socket`, when set, reaches the same API over a unix socket (no
 * token needed: the agent trusts its root-only socket); `token` is the bearer token sent over the
 * URL unless FERRY_TOKEN is set.
 */
export interface ContextHost { name: string; url: string; socket?: string; token?: string }

/**
 * The CLI's current context: which hosts `ferry` commands talk to. `ferry lab up` writes it. `ca`
 * is the CA certificate HTTPS answers must chain to (FERRY_CA with FERRY_URL).
 */
export interface Context { name: string; lab?: string; hosts: ContextHost[]; ca?: string }

/** Reads the current context, or undefined when there is none. FERRY_URL=url1,url2 overrides it. */
export function readContext(): Context | undefined {
  const env = process.env.FERRY_URL;
  if (env) {
    const urls = env.split(',').map((u) => u.trim());
    const bad = urls.find((u) => !/^https?:\/\/[^/]/.test(u) || !URL.canParse(u));
    if (bad !== undefined) throw new FerryError('INVALID_INPUT', `FERRY_URL holds "${bad}", which is not an agent URL such as https://h1.example:8443 (a comma separates several).`);
    return { name: 'env', hosts: urls.map((url, i) => ({ name: `host${i + 1}`, url })), ...(process.env.FERRY_CA ? { ca: process.env.FERRY_CA } : {}) };
  }
  try {
    return JSON.parse(readFileSync(contextFile(), 'utf8')) as Context;
  } catch {
    return undefined;
  }
}

/** Writes the current context atomically. */
export function writeContext(ctx: Context): void {
  const f = contextFile();
  mkdirSync(dirname(f), { recursive: true });
  writeJsonAtomic(f, ctx, { pretty: true });
}
