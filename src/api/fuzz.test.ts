import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Agent } from '../agent/agent.js';
import { testApi, type TestApi } from './test-agent.js';

// Property-based fuzzing of every route (the OpenAPI document lists them) with malformed bodies,
// parameters, query strings and headers, with and without an admin token: each answer is a 4xx
// with an error code, never a 5xx, and the agent keeps answering. The state folder has no guest
// image, so a body that happens to be a valid create or move stops before QEMU.
let t: TestApi;
let dir: string;
let agent: Agent;
let app: FastifyInstance;
let admin: string;
let routes: { method: string; path: string }[];

before(async () => {
  t = await testApi('fuzz', { peers: [{ name: 'h2', url: 'http://127.0.0.1:9' }] });
  ({ dir, agent, app } = t);
  admin = agent.tokens.create('fuzzer', 'admin').token;
  const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
  routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
});
after(() => t.close());

/** A JSON value of the shapes the API takes, with the field names its schemas use, wrongly filled. */
const field = fc.constantFrom('name', 'memoryMiB', 'cpus', 'vm', 'destination', 'toPath', 'storagePath', 'includeStorage', 'role',
  'protocol', 'jobId', 'force', 'timeoutSec', 'maxMigrations', 'networks', 'cidr', '__proto__', 'constructor');
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('', '../../etc/passwd', '/', 'a'.repeat(5000), '\u0000', -1, 0, 2 ** 53, 1e308, -0, null, true, [], {}),
);
const body = fc.oneof(
  fc.dictionary(fc.oneof(field, fc.string({ maxLength: 8 })), anyValue, { maxKeys: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const segment = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('..', '%2e%2e', '%00', 'ghost', 'a'.repeat(300), '%ZZ', '%F0%9F'));
const request = fc.record({
  route: fc.nat(), segment, body, raw: fc.option(fc.string({ maxLength: 200 })),
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', ''),
  query: fc.option(fc.dictionary(fc.constantFrom('limit', 'vm', 'x'), fc.string({ maxLength: 20 }), { maxKeys: 3 })),
  auth: fc.constantFrom('admin', 'none', 'garbage'),
});

test('fuzzing every route with malformed input: only 4xx with a code, never 5xx, never a crash', async () => {
  let checked = 0;
  await fc.assert(fc.asyncProperty(request, async (q) => {
    const r = routes[q.route % routes.length];
    assert.ok(r);
    // An event stream never ends by itself, so only its refusal (no token) is fuzzed here.
    if (r.path === '/v1/events' && q.auth === 'admin') return;
    const url = r.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(q.segment).slice(0, 400) || 'x')
      + (q.query ? `?${new URLSearchParams(q.query).toString()}` : '');
    const headers: Record<string, string> = {};
    if (q.auth === 'admin') headers.authorization = `Bearer ${admin}`;
    if (q.auth === 'garbage') headers.authorization = `Bearer ${q.segment}`;
    const withBody = r.method !== 'GET' && r.method !== 'DELETE';
    if (withBody && q.contentType) headers['content-type'] = q.contentType;
    const opts: InjectOptions = { method: r.method as InjectOptions['method'], url, headers, ...(withBody ? { payload: q.raw ?? JSON.stringify(q.body) } : {}) };
    const res = await app.inject(opts);
    checked++;
    assert.ok(res.statusCode < 500, `${r.method} ${url} ${opts.payload as string} → ${res.statusCode} ${res.body}`);
    if (res.statusCode >= 400) {
      const e = res.json<{ error?: { code?: string; message?: string } }>().error;
      assert.ok(e?.code && e.message, `${r.method} ${url} → an error with a code: ${res.body}`);
    }
  }), { numRuns: 1500 });
  assert.ok(checked > 1000);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/host', headers: { authorization: `Bearer ${admin}` } })).statusCode, 200, 'the agent still answers');
  assert.deepEqual(agent.inv.list().filter((v) => v.state === 'running'), [], 'nothing runs');
  assert.deepEqual(readdirSync(join(dir, 'pool')).filter((f) => !f.startsWith('.')), [], 'no disk was made');
});
