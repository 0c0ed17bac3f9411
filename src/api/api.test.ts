import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Agent } from '../agent/agent.js';
import { testApi, type TestApi } from './test-agent.js';

// In-process API tests (fastify inject) on a real agent with a temp state folder. They cover the
// paths that fail before QEMU starts; booting VMs is the integration tests' job.
let t: TestApi;
let dir: string;
let agent: Agent;
let app: FastifyInstance;
let admin: string;

/** Every request of these tests carries an admin token (roles are src/api/auth.test.ts's). */
const inject = (o: InjectOptions) => app.inject({ ...o, headers: { authorization: `Bearer ${admin}`, ...o.headers } });

before(async () => {
  t = await testApi('api');
  ({ dir, agent, app } = t);
  admin = agent.tokens.create('api-test', 'admin').token;
});
after(() => t.close());

const post = (body: unknown) => inject({ method: 'POST', url: '/v1/vms', payload: body as object });

test('bad create requests get their code and change nothing', async () => {
  const cases: [unknown, number, string][] = [
    [{ name: 'Bad_Name', memoryMiB: 256 }, 400, 'INVALID_NAME'],
    [{ name: 'big', memoryMiB: 999 * 1024 }, 409, 'INSUFFICIENT_MEMORY'],
    [{ name: 'tiny', memoryMiB: 8 }, 400, 'INVALID_SIZE'],
    [{ name: 'cpus', memoryMiB: 256, cpus: 64 }, 400, 'INVALID_CPUS'],
    [{ name: 'pool', memoryMiB: 256, diskSizeBytes: 1 << 30, diskPool: 'nope' }, 404, 'UNKNOWN_POOL'],
    [{ name: 'disk', memoryMiB: 256, diskSizeBytes: 2 ** 52 }, 400, 'INVALID_SIZE'],
    [{ name: 'extra', memoryMiB: 256, evil: true }, 400, 'INVALID_INPUT'],
    [{ memoryMiB: 256 }, 400, 'INVALID_INPUT'],
    ['not json at all', 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [body, status, code] of cases) {
    const r = await post(body);
    assert.equal(r.statusCode, status, `${JSON.stringify(body)} → ${r.body}`);
    const j = r.json<{ error: { code: string; message: string } }>();
    assert.equal(j.error.code, code);
    assert.match(j.error.message, /\.$/, 'one sentence ending in a full stop');
  }
  assert.deepEqual(agent.inv.list(), []);
  assert.deepEqual(readdirSync(join(dir, 'pool')), []);
});

test('unknown VM and unknown route', async () => {
  const r = await inject({ method: 'GET', url: '/v1/vms/ghost' });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json<{ error: { code: string } }>().error.code, 'VM_NOT_FOUND');
  const n = await inject({ method: 'GET', url: '/v1/nothing' });
  assert.equal(n.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
});

test('host view and the OpenAPI document describe every route', async () => {
  const h = (await inject({ method: 'GET', url: '/v1/host' })).json<{ name: string; memoryMiB: number; freeMemoryMiB: number }>();
  assert.equal(h.name, 'h1');
  assert.equal(h.freeMemoryMiB, 1024);
  const doc = (await inject({ method: 'GET', url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
  assert.match(doc.openapi, /^3\./);
  for (const [path, method] of [['/v1/vms', 'get'], ['/v1/vms', 'post'], ['/v1/vms/{name}', 'get'], ['/v1/vms/{name}', 'patch'], ['/v1/vms/{name}', 'delete'],
    ['/v1/vms/{name}/start', 'post'], ['/v1/vms/{name}/stop', 'post'], ['/v1/host', 'get'], ['/v1/peer/ping', 'get'], ['/v1/events', 'get']] as const) {
    assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is in /openapi.json`);
  }
  const m = await inject({ method: 'GET', url: '/metrics' });
  assert.match(m.body, /ferry_memory_free_mib 1024/);
});

test('malformed JSON and oversized bodies get their codes', async () => {
  const bad = await inject({ method: 'POST', url: '/v1/vms', headers: { 'content-type': 'application/json' }, payload: '{"name": ' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json<{ error: { code: string } }>().error.code, 'INVALID_INPUT');
  const big = await inject({ method: 'POST', url: '/v1/vms', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x'.repeat(100_000) }) });
  assert.equal(big.statusCode, 413);
  assert.equal(big.json<{ error: { code: string } }>().error.code, 'PAYLOAD_TOO_LARGE');
  assert.deepEqual(agent.inv.list(), []);
});

test('move-storage: the body is checked by its schema; an unknown VM is VM_NOT_FOUND', async () => {
  const cases: [unknown, number, string][] = [
    [{}, 400, 'INVALID_INPUT'],
    [{ toPath: '' }, 400, 'INVALID_INPUT'],
    [{ toPath: join(dir, 'pool', 'x'), extra: 1 }, 400, 'INVALID_INPUT'],
    [{ toPath: join(dir, 'pool', 'x') }, 404, 'VM_NOT_FOUND'],
  ];
  for (const [body, status, code] of cases) {
    const r = await inject({ method: 'POST', url: '/v1/vms/ghost/move-storage', payload: body as object });
    assert.equal(r.statusCode, status, `${JSON.stringify(body)} → ${r.body}`);
    assert.equal(r.json<{ error: { code: string } }>().error.code, code);
  }
});

test('host settings: GET, partial PUT answering all of them, bad values refused, shown in the host view', async () => {
  const get = await inject({ method: 'GET', url: '/v1/host/settings' });
  assert.equal(get.statusCode, 200);
  assert.equal(get.json<{ maxMigrations: number }>().maxMigrations, 2);
  const put = await inject({ method: 'PUT', url: '/v1/host/settings', payload: { incomingEnabled: false, networks: [{ cidr: '10.5.0.0/16', priority: 2 }] } });
  assert.equal(put.statusCode, 200, put.body);
  const s = put.json<{ incomingEnabled: boolean; outgoingEnabled: boolean; networks: unknown[]; performance: string }>();
  assert.deepEqual([s.incomingEnabled, s.outgoingEnabled, s.performance], [false, true, 'tcp']);
  assert.deepEqual(s.networks, [{ cidr: '10.5.0.0/16', priority: 2 }]);
  const host = (await inject({ method: 'GET', url: '/v1/host' })).json<{ settings: { incomingEnabled: boolean } }>();
  assert.equal(host.settings.incomingEnabled, false, 'GET /v1/host carries the settings');
  for (const body of [{ maxMigrations: 0 }, { downtimeTargetMs: 'fast' }, { sneaky: true }, {}, { networks: [{ cidr: '10.0.0.1/8', priority: 1 }] }]) {
    const r = await inject({ method: 'PUT', url: '/v1/host/settings', payload: body });
    assert.equal(r.statusCode, 400, `${JSON.stringify(body)} → ${r.body}`);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'INVALID_INPUT');
  }
  const reset = await inject({ method: 'PUT', url: '/v1/host/settings', payload: { incomingEnabled: true, networks: [] } });
  assert.equal(reset.json<{ incomingEnabled: boolean }>().incomingEnabled, true);
});

test('PATCH /v1/vms/{name} (vm set): a group changes; bad input, HA policies of a VM that is not HA, a busy VM and a standalone HA VM are refused and change nothing', async () => {
  const base = { memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'q35', mac: '52:54:00:00:00:09', ip: '10.77.1.9', prefixLength: 16, disks: [] };
  agent.inv.insert({ ...base, name: 'plain', uuid: 'u-plain', ha: false, group: 'web' });
  agent.inv.insert({ ...base, name: 'hav', uuid: 'u-hav', ha: true });
  const patch = (name: string, body: unknown) => inject({ method: 'PATCH', url: `/v1/vms/${name}`, payload: body as object });
  try {
    const ok = await patch('plain', { group: 'db' });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual([ok.json<{ vm: { group: string }; ha: unknown }>().vm.group, ok.json<{ ha: unknown }>().ha], ['db', null]);
    const none = await patch('plain', { group: null });
    assert.equal(none.json<{ vm: { group: string | null } }>().vm.group, null, 'null takes it out of its group');
    assert.equal(agent.inv.get('plain').spec.group, undefined);
    const cases: [string, unknown, number, string][] = [
      ['plain', {}, 400, 'INVALID_INPUT'],
      ['plain', { group: 'Bad_Name' }, 400, 'INVALID_NAME'],
      ['plain', { haPriority: 5000 }, 400, 'INVALID_INPUT'],
      ['plain', { haRestart: 'sometimes' }, 400, 'INVALID_INPUT'],
      ['plain', { memoryMiB: 512 }, 400, 'INVALID_INPUT'],
      ['plain', { group: 'x', haPriority: 3 }, 409, 'VM_NOT_HA'],
      ['hav', { haPriority: 3, group: 'web' }, 409, 'NOT_IN_CLUSTER'],
      ['ghost', { group: 'x' }, 404, 'VM_NOT_FOUND'],
    ];
    for (const [name, body, status, code] of cases) {
      const r = await patch(name, body);
      assert.equal(r.statusCode, status, `${name} ${JSON.stringify(body)} → ${r.body}`);
      assert.equal(r.json<{ error: { code: string } }>().error.code, code, `${name} ${JSON.stringify(body)}`);
    }
    const unlock = agent.vms.tryLock('plain', 'a test');
    try {
      assert.equal((await patch('plain', { group: 'x' })).json<{ error: { code: string } }>().error.code, 'VM_BUSY');
    } finally {
      unlock();
    }
    assert.equal(agent.inv.get('plain').spec.group, undefined, 'no refusal changed the group');
    assert.equal(agent.inv.get('hav').spec.group, undefined, 'the cluster\'s refusal put the local group back');
    // vm start --register: only for an HA VM, and only in a cluster; refused before anything starts.
    const start = (name: string) => inject({ method: 'POST', url: `/v1/vms/${name}/start`, payload: { register: true } });
    assert.equal((await start('plain')).json<{ error: { code: string } }>().error.code, 'VM_NOT_HA');
    assert.equal((await start('hav')).json<{ error: { code: string } }>().error.code, 'NOT_IN_CLUSTER');
    assert.deepEqual([agent.inv.get('plain').state, agent.inv.get('hav').state], ['stopped', 'stopped']);
  } finally {
    agent.inv.remove('plain');
    agent.inv.remove('hav');
  }
});
