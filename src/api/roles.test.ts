import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { Agent } from '../agent/agent.js';
import { addAuth } from './auth.js';
import { ROUTE_ACCESS, routeAccess } from './roles.js';

test('route roles: reads are viewer; VM lifecycle and moves operator; settings, tokens and audit admin', () => {
  for (const [key, access] of Object.entries(ROUTE_ACCESS)) {
    if (key.startsWith('GET ') && access !== 'public') {
      assert.ok(access === 'viewer' || key === 'GET /v1/tokens' || key === 'GET /v1/audit', `${key} is a read: viewer`);
    }
  }
  const cases: [string, string | undefined, string | undefined][] = [
    ['GET', '/v1/vms', 'viewer'], ['HEAD', '/v1/vms/:name', 'viewer'], ['GET', '/v1/events', 'viewer'], ['GET', '/metrics', 'viewer'],
    ['POST', '/v1/vms', 'operator'], ['POST', '/v1/vms/:name/start', 'operator'], ['POST', '/v1/vms/:name/stop', 'operator'],
    ['DELETE', '/v1/vms/:name', 'operator'], ['POST', '/v1/migrations', 'operator'], ['POST', '/v1/migrations/:id/cancel', 'operator'],
    ['POST', '/v1/vms/:name/compare', 'operator'], ['POST', '/v1/vms/:name/move-storage', 'operator'], ['PATCH', '/v1/vms/:name', 'operator'],
    ['PUT', '/v1/host/settings', 'admin'], ['POST', '/v1/tokens', 'admin'], ['GET', '/v1/tokens', 'admin'], ['DELETE', '/v1/tokens/:id', 'admin'],
    ['GET', '/v1/audit', 'admin'], ['POST', '/v1/cluster', 'admin'], ['DELETE', '/v1/cluster/members/:host', 'admin'],
    ['GET', '/openapi.json', 'public'], ['POST', '/v1/peer/migrations/:id/prepare', 'peer'], ['GET', '/v1/peer/ping', 'peer'],
    ['POST', '/v1/host/settings', undefined], ['PUT', '/v1/vms/:name', undefined], ['GET', '/v1/new-thing', undefined],
    ['GET', undefined, 'viewer'],
  ];
  for (const [method, pattern, want] of cases) assert.equal(routeAccess(method, pattern), want, `${method} ${pattern}`);
});

test('a route missing from the role table stops the API from starting', async () => {
  const app = Fastify();
  addAuth(app, {} as Agent);
  app.get('/v1/vms', async () => []);
  assert.throws(() => app.get('/v1/forgotten', async () => 'open'), /has no role in ROUTE_ACCESS/);
  await app.close();
});
