import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Agent } from '../agent/agent.js';
import { roleAllows, type TokenView } from '../agent/tokens.js';
import { FerryError } from '../errors/index.js';
import { isMutating, PEER_PREFIX, routeAccess } from './roles.js';

/** Who sent a request: a token, or the agent's own unix socket (root on this machine). */
export type Principal = { kind: 'local' } | { kind: 'token'; token: TokenView };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook for every request that needed it and passed. */
    principal: Principal | null;
    /** A job id the answer named (POST /v1/migrations), for the audit log. */
    auditJob: string | null;
  }
}

/** Requests that came in on the agent's unix socket (see {@link localSocketHandler}). */
const local = new WeakSet<IncomingMessage>();

/**
 * The request handler for the agent's unix socket: the same routes, each request trusted as
 * admin. The socket is root's (mode 0600 in a root-only folder), so whoever can open it can
 * already read the agent's database and start QEMU; a token would add nothing (Docker's socket is
 * the same). This is how the first token is made: `ferry token create` on the host.
 */
export function localSocketHandler(app: FastifyInstance): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => { local.add(req); app.routing(req, res); };
}

/** Requests one token may have in flight at once by default (event streams count). */
export const MAX_IN_FLIGHT_PER_TOKEN = 16;

const LOCAL: Principal = { kind: 'local' };

/** The bearer token of an Authorization header, or undefined. */
export function bearer(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * Adds authentication, roles, per-token limits and the audit log to the API. Runs on onRequest,
 * before the body is read, so a request without a valid token costs the agent no parsing. Every
 * route must be in ROUTE_ACCESS (src/api/roles.ts); a route that is not stops the API from
 * starting.
 */
export function addAuth(app: FastifyInstance, agent: Agent, opts: { maxInFlight?: number } = {}): void {
  const maxInFlight = opts.maxInFlight ?? MAX_IN_FLIGHT_PER_TOKEN;
  const inFlight = new Map<string, number>();
  app.decorateRequest('principal', null);
  app.decorateRequest('auditJob', null);

  app.addHook('onRoute', (r) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) {
      if (routeAccess(m, r.url) === undefined) {
        throw new FerryError('INTERNAL', `The route ${m} ${r.url} has no role in ROUTE_ACCESS (src/api/roles.ts).`);
      }
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    const need = routeAccess(req.method, req.routeOptions.url) ?? 'admin';
    if (need === 'peer' || (req.routeOptions.url === undefined && req.url.startsWith(PEER_PREFIX))) return;
    if (local.has(req.raw)) { req.principal = LOCAL; return; }
    if (need === 'public') return;
    const secret = bearer(req.headers.authorization);
    const token = secret === undefined ? undefined : agent.tokens.verify(secret);
    if (!token) {
      throw new FerryError('UNAUTHENTICATED', secret === undefined
        ? 'The request has no bearer token: send `Authorization: Bearer TOKEN` (FERRY_TOKEN for the CLI).'
        : 'The bearer token is unknown or revoked.');
    }
    req.principal = { kind: 'token', token };
    if (!roleAllows(token.role, need)) {
      throw new FerryError('FORBIDDEN', `The token "${token.name}" has the role ${token.role}; ${req.method} ${req.routeOptions.url ?? req.url} needs ${need}.`);
    }
    hold(inFlight, token, maxInFlight, reply);
  });

  app.addHook('onSend', async (req, reply, payload) => {
    // The one answer that names a new job; other routes carry their job in the URL.
    if (req.method === 'POST' && req.routeOptions.url === '/v1/migrations' && reply.statusCode < 300 && typeof payload === 'string') {
      try { req.auditJob = (JSON.parse(payload) as { id?: string }).id ?? null; } catch { /* not JSON: no job */ }
    }
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!isMutating(req.method) || req.url.startsWith(PEER_PREFIX) || req.routeOptions.url?.startsWith(PEER_PREFIX)) return;
    audit(agent, req, reply);
  });
}

/** Counts the request against its token's limit until its answer ends (TOO_MANY_REQUESTS past it). */
function hold(inFlight: Map<string, number>, token: TokenView, max: number, reply: FastifyReply): void {
  const n = inFlight.get(token.id) ?? 0;
  if (n >= max) {
    throw new FerryError('TOO_MANY_REQUESTS', `The token "${token.name}" already has ${n} requests in flight, as many as this host allows; try again when one ends.`);
  }
  inFlight.set(token.id, n + 1);
  let released = false;
  reply.raw.once('close', () => {
    if (released) return;
    released = true;
    const left = (inFlight.get(token.id) ?? 1) - 1;
    if (left <= 0) inFlight.delete(token.id); else inFlight.set(token.id, left);
  });
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Appends one mutating request to the audit table and the agent's log. */
function audit(agent: Agent, req: FastifyRequest, reply: FastifyReply): void {
  const p = req.principal;
  const params = (req.params ?? {}) as Record<string, unknown>;
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  const route = req.routeOptions.url ?? req.url.split('?')[0] ?? req.url;
  const isJobRoute = route.startsWith('/v1/migrations/');
  try {
    const entry = agent.audit.append({
      tokenId: p?.kind === 'token' ? p.token.id : null,
      who: p?.kind === 'token' ? p.token.name : p?.kind === 'local' ? 'local-socket' : 'anonymous',
      method: req.method, route,
      vm: route.startsWith('/v1/vms') ? str(params.name) ?? str(body.name) : str(body.vm),
      job: isJobRoute ? str(params.id) : req.auditJob,
      status: reply.statusCode,
    });
    agent.log.info({ audit: entry }, 'api audit');
  } catch (err) {
    agent.log.error({ err }, 'could not write the audit log');
  }
}
