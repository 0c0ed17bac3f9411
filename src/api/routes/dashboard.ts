import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import { contextOverview, hostOverview } from '../../agent/overview.js';
import { FerryError } from '../../errors/index.js';
import { repoRoot } from '../../util/paths.js';
import { noQuery } from '../../migration/index.js';

/** Where `npm run build` puts the dashboard (Vite, web/vite.config.ts). */
export const dashboardDir = (): string => join(repoRoot(), 'web', 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.map': 'application/json',
};

/**
 * The dashboard's page and scripts may talk to this agent only, load nothing from elsewhere and
 * run no inline script: a token pasted into it can leave only towards the API it was made for.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Sends one file of the built dashboard: hashed assets are immutable, the page is never cached. */
async function sendFile(reply: FastifyReply, rel: string): Promise<FastifyReply> {
  const root = dashboardDir();
  const path = normalize(join(root, rel));
  if (!path.startsWith(root + sep)) throw new FerryError('NOT_FOUND', `There is no dashboard file ${rel}.`);
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    throw new FerryError('NOT_FOUND', rel === 'index.html'
      ? 'The dashboard is not built: run `npm run build` (it bundles web/ into web/dist).'
      : `There is no dashboard file ${rel}.`);
  }
  return reply
    .header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer')
    .header('cache-control', rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
    .type(TYPES[extname(path)] ?? 'application/octet-stream').send(body);
}

/**
 * The dashboard (web/, served at /ui/) and the one read it needs beyond the user routes:
 * GET /v1/overview, this host and every peer of its config (each read over peer RPC, GET
 * /v1/peer/overview), so a browser logged in to one host sees the whole context without a token
 * of every host. Actions stay on the user routes of the host that answers (docs/dashboard.md).
 * The page and its scripts are public (they hold no data); every read and action they make
 * carries the user's bearer token.
 */
export function dashboardRoutes(app: FastifyInstance, agent: Agent): void {
  app.get('/v1/overview', {
    schema: {
      tags: ['host'], summary: 'This host and its peers: each host with its VMs and recent migrations (the dashboard\'s read), and the caller\'s role',
      response: { 200: { type: 'object', additionalProperties: true, properties: { you: { type: 'object', additionalProperties: true }, hosts: { type: 'array' } } } },
    },
  }, async (req) => {
    const p = req.principal;
    const you = p?.kind === 'token' ? { name: p.token.name, role: p.token.role } : { name: 'local-socket', role: 'admin' };
    return { you, hosts: await contextOverview(agent) };
  });

  app.get('/v1/peer/overview', { schema: { querystring: noQuery, tags: ['peer'], summary: 'Peer RPC: this host, its VMs and recent jobs, for a peer\'s dashboard' } },
    () => hostOverview(agent));

  const ui = { schema: { hide: true } };
  app.get('/ui', ui, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', ui, async (_req, reply) => sendFile(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/ui/*', ui, async (req, reply) => sendFile(reply, req.params['*'] || 'index.html'));
}
