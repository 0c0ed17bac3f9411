import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { FerryError, isErrorCode } from '../errors/index.js';
import { readContext, type Context, type ContextHost } from '../util/index.js';

/** The current context, or NO_CONTEXT. */
export function context(): Context {
  const ctx = readContext();
  if (!ctx || ctx.hosts.length === 0) {
    throw new FerryError('NO_CONTEXT', 'There is no current context: run `ferry lab up` or set FERRY_URL.');
  }
  return ctx;
}

/** The bearer token for `host`: FERRY_TOKEN, else the one its context entry holds. */
export const bearerToken = (host: ContextHost): string | undefined => process.env.FERRY_TOKEN || host.token || undefined;

/**
 * What an HTTPS answer must chain to: the context's CA (the lab's; FERRY_CA with FERRY_URL), else
 * the system's trusted CAs.
 */
export function httpsTrust(): { ca?: Buffer } {
  const path = readContext()?.ca;
  if (!path) return {};
  try {
    return { ca: readFileSync(path) };
  } catch (e) {
    throw new FerryError('NO_CONTEXT', `The context's CA certificate ${path} could not be read.`, { cause: e });
  }
}

/** The context's host of that name, or UNKNOWN_HOST. */
export function hostOf(name: string): ContextHost {
  const ctx = context();
  const h = ctx.hosts.find((x) => x.name === name);
  if (!h) {
    throw new FerryError('UNKNOWN_HOST', `No host named "${name}" is in the context "${ctx.name}" (hosts: ${ctx.hosts.map((x) => x.name).join(', ')}).`);
  }
  return h;
}

/**
 * Calls one agent's API; the unix socket when the context has one (the lab), else the URL.
 * An `{"error":{code,message}}` answer becomes a FerryError with the same code.
 */
export function api<T>(host: ContextHost, method: string, path: string, body?: unknown, timeoutMs = 600_000): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const url = new URL(path, host.url);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const token = bearerToken(host);
  if (token) headers.authorization = `Bearer ${token}`;
  const opts = host.socket
    ? { socketPath: host.socket, path, method, headers }
    : { hostname: url.hostname, port: url.port, path, method, headers, ...httpsTrust() };
  const req = (url.protocol === 'https:' && !host.socket ? httpsRequest : httpRequest);
  return new Promise<T>((resolve, reject) => {
    const r = req(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        if ((res.statusCode ?? 500) >= 400) {
          const e = (json as { error?: { code?: unknown; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
          // No error document: a proxy in front of a stopped agent (502–504), or not an agent at all.
          const gateway = !e && [502, 503, 504].includes(res.statusCode ?? 0);
          reject(new FerryError(isErrorCode(e?.code) ? e.code : gateway ? 'AGENT_UNREACHABLE' : 'INTERNAL', e?.message ?? `The agent ${host.name} answered ${res.statusCode}${gateway ? ' from what stands in front of it (is the agent running?)' : ''}.`,
            e?.details ? { details: e.details } : undefined));
        } else resolve(json as T);
      });
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error('timeout')));
    r.on('error', (err) => reject(new FerryError('AGENT_UNREACHABLE', `The agent of host ${host.name} did not answer (${err.message}).`, { cause: err })));
    if (payload !== undefined) r.write(payload);
    r.end();
  });
}

/**
 * Asks every host of the context; hosts that do not answer are reported in `unreachable`. A host
 * that refuses the caller's token (UNAUTHENTICATED, FORBIDDEN) did answer: that error is thrown, so
 * a missing FERRY_TOKEN is not mistaken for an empty list.
 */
export async function everyHost<T>(path: string): Promise<{ host: ContextHost; result: T }[] & { unreachable?: string[] }> {
  const hosts = context().hosts;
  const settled = await Promise.allSettled(hosts.map((h) => api<T>(h, 'GET', path, undefined, 15_000)));
  const refused = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && s.reason instanceof FerryError
    && (s.reason.code === 'UNAUTHENTICATED' || s.reason.code === 'FORBIDDEN'));
  if (refused) throw refused.reason;
  const out: { host: ContextHost; result: T }[] & { unreachable?: string[] } = [];
  out.unreachable = [];
  settled.forEach((s, i) => {
    const host = hosts[i] as ContextHost;
    if (s.status === 'fulfilled') out.push({ host, result: s.value });
    else out.unreachable?.push(host.name);
  });
  return out;
}
