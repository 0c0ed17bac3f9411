import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../agent/agent.js';
import type { AuditEntry } from '../agent/audit.js';
import { localSocketHandler } from './index.js';
import { testApi, type TestApi } from './test-agent.js';

// Tokens, roles, per-token limits and the audit log, in-process on a real agent with a temp state
// folder (fastify inject), plus the unix socket and event streams over real sockets.
let t: TestApi;
let dir: string;
let agent: Agent;
let app: FastifyInstance;
const tok: Record<'viewer' | 'operator' | 'admin', string> = { viewer: '', operator: '', admin: '' };

before(async () => {
  t = await testApi('auth', {}, { maxInFlightPerToken: 2 });
  ({ dir, agent, app } = t);
  for (const role of ['viewer', 'operator', 'admin'] as const) tok[role] = agent.tokens.create(`${role}-1`, role).token;
});
after(() => t.close());

const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, token?: string, payload?: object) =>
  app.inject({ method, url, ...(payload ? { payload } : {}), headers: token ? { authorization: `Bearer ${token}` } : {} });
const code = (r: { json: <T>() => T }): string | undefined => r.json<{ error?: { code: string } }>().error?.code;

test('no token, a wrong one, or a revoked one: 401 UNAUTHENTICATED, and nothing is created', async () => {
  const extra = agent.tokens.create('short-lived', 'admin');
  agent.tokens.revoke(extra.id);
  for (const auth of [undefined, 'ferry_notatoken', extra.token]) {
    const r = await call('POST', '/v1/vms', auth, { name: 'web', memoryMiB: 256 });
    assert.equal(r.statusCode, 401, r.body);
    assert.equal(code(r), 'UNAUTHENTICATED');
    assert.match(r.json<{ error: { message: string } }>().error.message, /\.$/);
  }
  for (const header of ['Basic abc', 'Bearer', `Token ${tok.admin}`, `Bearer ${tok.admin} extra`]) {
    const r = await app.inject({ method: 'GET', url: '/v1/vms', headers: { authorization: header } });
    assert.equal(r.statusCode, 401, header);
  }
  assert.equal((await call('GET', '/v1/vms')).statusCode, 401, 'reads need a token too');
  assert.equal((await call('GET', '/metrics')).statusCode, 401, 'metrics need a viewer token');
  assert.equal((await call('GET', '/v1/no-such-route')).statusCode, 401, 'an unknown path tells a stranger nothing');
  assert.deepEqual(agent.inv.list(), []);
});

test('roles: viewer reads, operator runs VMs and moves, admin changes settings and tokens', async () => {
  const cases: [keyof typeof tok, 'GET' | 'POST' | 'PUT' | 'DELETE', string, object | undefined, number][] = [
    ['viewer', 'GET', '/v1/vms', undefined, 200],
    ['viewer', 'GET', '/v1/host', undefined, 200],
    ['viewer', 'GET', '/metrics', undefined, 200],
    ['viewer', 'POST', '/v1/migrations', { vm: 'web', destination: 'h2' }, 403],
    ['viewer', 'POST', '/v1/vms', { name: 'web', memoryMiB: 256 }, 403],
    ['viewer', 'DELETE', '/v1/vms/web', undefined, 403],
    ['viewer', 'GET', '/v1/tokens', undefined, 403],
    ['operator', 'POST', '/v1/migrations', { vm: 'ghost', destination: 'h2' }, 404],
    ['operator', 'DELETE', '/v1/vms/ghost', undefined, 404],
    ['operator', 'PUT', '/v1/host/settings', { maxMigrations: 3 }, 403],
    ['operator', 'POST', '/v1/tokens', { name: 'x', role: 'admin' }, 403],
    ['operator', 'GET', '/v1/audit', undefined, 403],
    ['admin', 'GET', '/v1/tokens', undefined, 200],
    ['admin', 'PUT', '/v1/host/settings', { maxMigrations: 2 }, 200],
    ['admin', 'DELETE', '/v1/vms/ghost', undefined, 404],
  ];
  for (const [role, method, url, body, status] of cases) {
    const r = await call(method, url, tok[role], body);
    assert.equal(r.statusCode, status, `${role} ${method} ${url} → ${r.body}`);
    if (status === 403) assert.equal(code(r), 'FORBIDDEN');
  }
  assert.equal((await call('GET', '/openapi.json')).statusCode, 200, 'the API description is public');
  assert.equal((await call('GET', '/v1/peer/ping')).statusCode, 200, 'peer routes are for host certificates, not tokens');
});

test('tokens over the API: created with the secret once, listed without it, revoked', async () => {
  const made = await call('POST', '/v1/tokens', tok.admin, { name: 'ci', role: 'operator' });
  assert.equal(made.statusCode, 201, made.body);
  const t = made.json<{ id: string; token: string; role: string }>();
  assert.equal(t.role, 'operator');
  assert.equal((await call('GET', '/v1/vms', t.token)).statusCode, 200);
  const list = await call('GET', '/v1/tokens', tok.admin);
  assert.ok(!list.body.includes(t.token), 'the list holds no secret');
  assert.ok(list.json<{ id: string }[]>().some((x) => x.id === t.id));
  for (const body of [{ name: 'x', role: 'root' }, { name: 'x' }, { name: 'x', role: 'admin', extra: 1 }, { name: 'a b', role: 'viewer' }]) {
    assert.equal((await call('POST', '/v1/tokens', tok.admin, body)).statusCode, 400, JSON.stringify(body));
  }
  assert.equal((await call('DELETE', `/v1/tokens/${t.id}`, tok.admin)).json<{ revoked: boolean }>().revoked, true);
  assert.equal((await call('GET', '/v1/vms', t.token)).statusCode, 401);
  assert.equal(code(await call('DELETE', '/v1/tokens/abcdef', tok.admin)), 'TOKEN_NOT_FOUND');
  assert.equal(code(await call('DELETE', '/v1/tokens/..%2f..', tok.admin)), 'INVALID_INPUT');
});

test('audit: every mutating request with who, what and its status; reads are not logged', async () => {
  await call('POST', '/v1/vms', tok.operator, { name: 'Bad_Name', memoryMiB: 256 });
  await call('POST', '/v1/migrations', tok.viewer, { vm: 'web', destination: 'h2' });
  await call('DELETE', '/v1/vms/ghost', undefined);
  await call('GET', '/v1/vms', tok.viewer);
  const r = await call('GET', '/v1/audit?limit=3', tok.admin);
  assert.equal(r.statusCode, 200, r.body);
  const [anon, viewer, op] = r.json<AuditEntry[]>();
  assert.deepEqual([anon?.who, anon?.method, anon?.route, anon?.vm, anon?.status], ['anonymous', 'DELETE', '/v1/vms/:name', 'ghost', 401]);
  // A refused request's body is never read, so its VM is unknown unless the URL names it.
  assert.deepEqual([viewer?.who, viewer?.route, viewer?.vm, viewer?.status], ['viewer-1', '/v1/migrations', null, 403]);
  assert.deepEqual([op?.who, op?.route, op?.vm, op?.status], ['operator-1', '/v1/vms', 'Bad_Name', 400]);
  assert.ok(op?.tokenId);
  assert.equal((await call('GET', '/v1/audit?limit=0', tok.admin)).statusCode, 400);
});

/** A GET over a real socket: status, headers, and the first chunk of the body. */
function get(target: { socketPath: string } | { port: number }, path: string, token?: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, ...('port' in target ? { host: '127.0.0.1' } : {}), path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (body: string) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, close: () => req.destroy() }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the unix socket is trusted as admin without a token, and audited as local-socket', async () => {
  const sock = join(dir, 'api.sock');
  const server: Server = createServer(localSocketHandler(app));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const r = await get({ socketPath: sock }, '/v1/tokens');
    assert.equal(r.status, 200, r.body);
    const del = await new Promise<number>((resolve, reject) => {
      const q = request({ socketPath: sock, path: '/v1/vms/ghost', method: 'DELETE' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      q.on('error', reject);
      q.end();
    });
    assert.equal(del, 404);
    const last = (await call('GET', '/v1/audit?limit=1', tok.admin)).json<AuditEntry[]>()[0];
    assert.deepEqual([last?.who, last?.tokenId, last?.status], ['local-socket', null, 404]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a token may have only so many requests in flight: 429 TOO_MANY_REQUESTS, free again when one ends', async () => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const t = agent.tokens.create('watcher', 'viewer').token;
  const s1 = await get({ port }, '/v1/events', t);
  const s2 = await get({ port }, '/v1/events', t);
  assert.deepEqual([s1.status, s2.status], [200, 200]);
  const third = await get({ port }, '/v1/vms', t);
  assert.equal(third.status, 429, third.body);
  assert.equal((JSON.parse(third.body) as { error: { code: string } }).error.code, 'TOO_MANY_REQUESTS');
  assert.equal((await get({ port }, '/v1/vms', tok.viewer)).status, 200, 'another token is not held back');
  s1.close();
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    status = (await get({ port }, '/v1/vms', t)).status;
  }
  assert.equal(status, 200, 'a closed stream gives its place back');
  s2.close();
});
