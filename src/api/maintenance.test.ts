import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { testApi, type TestApi } from './test-agent.js';

// In-process: the maintenance routes on a real agent with no VMs and no peers (a drain has nothing
// to move, so it ends drained at once). Moving VMs is test/host-drain.test.ts's job.
let t: TestApi;
let operator: string;
let viewer: string;

before(async () => {
  t = await testApi('maint');
  operator = t.agent.tokens.create('ops', 'operator').token;
  viewer = t.agent.tokens.create('look', 'viewer').token;
});
after(() => t.close());

const call = (token: string, o: InjectOptions) => t.app.inject({ ...o, headers: { authorization: `Bearer ${token}`, ...o.headers } });

const until = async (what: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 20));
};

test('drain answers 202 draining, ends drained; the host refuses a new VM; resume puts it back in service', async () => {
  const d = await call(operator, { method: 'POST', url: '/v1/host/drain', payload: {} });
  assert.equal(d.statusCode, 202, d.body);
  assert.equal(d.json().state, 'draining');
  assert.equal(d.json().running.operation, 'drain');
  await until(async () => (await call(viewer, { method: 'GET', url: '/v1/host' })).json().maintenance.running === null);
  const h = (await call(viewer, { method: 'GET', url: '/v1/host' })).json();
  assert.equal(h.state, 'drained');
  assert.equal(h.maintenance.state, 'drained');
  assert.equal(h.maintenance.lastRun.error, null);

  const create = await call(operator, { method: 'POST', url: '/v1/vms', payload: { name: 'late', memoryMiB: 128 } });
  assert.equal(create.statusCode, 409);
  assert.equal(create.json().error.code, 'HOST_IN_MAINTENANCE');

  const r = await call(operator, { method: 'POST', url: '/v1/host/resume', payload: { failback: true } });
  assert.equal(r.statusCode, 202, r.body);
  assert.equal(r.json().state, 'active');
  await until(async () => (await call(viewer, { method: 'GET', url: '/v1/host' })).json().maintenance.running === null);
  assert.equal((await call(viewer, { method: 'GET', url: '/v1/host' })).json().state, 'ready');
});

test('a viewer may not drain; the routes are in the OpenAPI document; drain is audited', async () => {
  const v = await call(viewer, { method: 'POST', url: '/v1/host/drain', payload: { force: true } });
  assert.equal(v.statusCode, 403);
  assert.equal(v.json().error.code, 'FORBIDDEN');
  assert.equal(t.agent.maintenance.state(), 'active');
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  for (const p of ['/v1/host/drain', '/v1/host/resume']) assert.ok(doc.paths[p]?.post, `${p} is documented`);
  const audit = t.agent.audit.list(50).map((e) => `${e.method} ${e.route} ${e.status}`);
  assert.ok(audit.includes('POST /v1/host/drain 202'), audit.join('\n'));
  assert.ok(audit.includes('POST /v1/host/drain 403'), audit.join('\n'));
});
