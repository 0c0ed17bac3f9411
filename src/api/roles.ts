import type { Role } from '../agent/tokens.js';

/**
 * Who may call a route: a token of at least that role; `public` anyone (the API description);
 * `peer` another host's agent, which the host certificates guard rather than tokens.
 */
export type Access = Role | 'public' | 'peer';

/**
 * The least role each user route needs, keyed `METHOD /pattern`: reads are `viewer`; what starts,
 * stops, deletes or moves a VM is `operator`; what changes the host or who may call it is `admin`.
 * buildApi refuses to start with a route missing here, so a new route cannot be left open by
 * forgetting it.
 */
export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  'GET /openapi.json': 'public',
  // The dashboard's page and scripts hold no data; what they read and do carries a token.
  'GET /ui': 'public',
  'GET /ui/': 'public',
  'GET /ui/*': 'public',
  'GET /v1/overview': 'viewer',
  'GET /metrics': 'viewer',
  'GET /v1/events': 'viewer',
  'GET /v1/host': 'viewer',
  'GET /v1/host/settings': 'viewer',
  'PUT /v1/host/settings': 'admin',
  'POST /v1/host/drain': 'operator',
  'POST /v1/host/resume': 'operator',
  'GET /v1/vms': 'viewer',
  'GET /v1/vms/:name': 'viewer',
  'POST /v1/vms': 'operator',
  'POST /v1/vms/:name/start': 'operator',
  'POST /v1/vms/:name/stop': 'operator',
  'POST /v1/vms/:name/move-storage': 'operator',
  'POST /v1/vms/:name/compare': 'operator',
  'PATCH /v1/vms/:name': 'operator',
  'DELETE /v1/vms/:name': 'operator',
  'GET /v1/migrations': 'viewer',
  'GET /v1/migrations/:id': 'viewer',
  'POST /v1/migrations': 'operator',
  'POST /v1/migrations/:id/cancel': 'operator',
  'GET /v1/tokens': 'admin',
  'POST /v1/tokens': 'admin',
  'DELETE /v1/tokens/:id': 'admin',
  'GET /v1/audit': 'admin',
  'GET /v1/cluster': 'viewer',
  'POST /v1/cluster': 'admin',
  'DELETE /v1/cluster/members/:host': 'admin',
};

/** Peer RPC lives under this prefix; mutual TLS, not tokens, decides who may call it. */
export const PEER_PREFIX = '/v1/peer/';

/**
 * The access a request to `pattern` (the matched route's URL pattern) needs; undefined for a route
 * missing from the table. HEAD is GET's. A request that matched no route needs a token of any
 * role, so a stranger learns nothing from which paths exist.
 */
export function routeAccess(method: string, pattern: string | undefined): Access | undefined {
  if (pattern === undefined) return 'viewer';
  if (pattern.startsWith(PEER_PREFIX)) return 'peer';
  return ROUTE_ACCESS[`${method === 'HEAD' ? 'GET' : method} ${pattern}`];
}

/** Methods that change something: every request with one is written to the audit log. */
export const isMutating = (method: string): boolean => method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
