import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../agent/agent.js';
import { dashboardDir } from './routes/dashboard.js';
import { testApi, type TestApi } from './test-agent.js';

// The dashboard's routes in-process: the built page at /ui/ (public, locked down by CSP), path
// traversal refused, and GET /v1/overview behind a token, with a peer that does not answer listed
// as unreachable rather than failing the whole read.
let t: TestApi;
let agent: Agent;
let app: FastifyInstance;
let viewer = '';

before(async () => {
  // h2 is a peer on a port nothing listens on: the overview must still answer, with h2 unreachable.
  t = await testApi('ui', { peers: [{ name: 'h2', url: 'http://127.0.0.1:9' }] });
  ({ agent, app } = t);
  viewer = agent.tokens.create('ui-viewer', 'viewer').token;
});
after(() => t.close());

test('GET /ui/ serves the built page with a CSP; /ui redirects; no path escapes web/dist', async () => {
  assert.ok(existsSync(join(dashboardDir(), 'index.html')), 'npm run build built the dashboard');
  const r = await app.inject({ method: 'GET', url: '/ui/' });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /text\/html/);
  assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
  assert.match(r.body, /<div id="app">/);
  const asset = /src="\/ui\/(assets\/[^"]+\.js)"/.exec(r.body)?.[1];
  assert.ok(asset, 'the page names its script');
  const js = await app.inject({ method: 'GET', url: `/ui/${asset}` });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers['cache-control']), /immutable/);
  assert.equal((await app.inject({ method: 'GET', url: '/ui' })).statusCode, 302);
  for (const url of ['/ui/../package.json', '/ui/..%2f..%2fpackage.json', '/ui/assets/..%2f..%2f..%2fpackage.json', '/ui/nope.js']) {
    const bad = await app.inject({ method: 'GET', url });
    assert.ok([400, 401, 404].includes(bad.statusCode), `${url}: ${bad.statusCode}`);
    assert.doesNotMatch(bad.body, /"name": "ferry"/);
  }
});

test('GET /v1/overview needs a token; a viewer sees this host, its role, and a dead peer as unreachable', async () => {
  const anon = await app.inject({ method: 'GET', url: '/v1/overview' });
  assert.equal(anon.statusCode, 401);
  const r = await app.inject({ method: 'GET', url: '/v1/overview', headers: { authorization: `Bearer ${viewer}` } });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json<{ you: { name: string; role: string }; hosts: { name: string; self: boolean; reachable: boolean; error?: { code: string }; data?: { vms: unknown[]; migrations: unknown[] } }[] }>();
  assert.deepEqual(body.you, { name: 'ui-viewer', role: 'viewer' });
  assert.deepEqual(body.hosts.map((h) => [h.name, h.self, h.reachable]), [['h1', true, true], ['h2', false, false]]);
  assert.deepEqual(body.hosts[0]?.data?.vms, []);
  assert.equal(body.hosts[1]?.error?.code, 'HOST_UNREACHABLE');
});

test('GET /v1/peer/overview answers a peer (here: no TLS, in-process) with this host, VMs and jobs', async () => {
  const r = await app.inject({ method: 'GET', url: '/v1/peer/overview' });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json<{ host: { name: string }; vms: unknown[]; migrations: unknown[]; cluster: unknown }>();
  assert.equal(body.host.name, 'h1');
  assert.deepEqual([body.vms, body.migrations, body.cluster], [[], [], null], 'a standalone host has no cluster');
});
