import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifySchema } from 'fastify';
import { checkProtocol, envelopeFor, PEER_ROUTES, PROTOCOL_VERSION, type PrepareRequest, type StatusReply } from './index.js';

const vm = {
  name: 'web', uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2',
  mac: '52:54:00:0f:1e:2d', ip: '10.0.0.5', prefixLength: 24, disks: [{ path: '/p/web.qcow2', sizeBytes: 1024, pool: 'default', format: 'qcow2' as const }], ha: false,
};
const prepare: PrepareRequest = { ...envelopeFor('j1'), vm, source: 'h1', destination: 'h2', options: { includeStorage: true } };

/** A fastify app with every peer route; handlers answer what the test says, so schemas do the work. */
async function app(replies: Record<string, unknown>) {
  const f = Fastify();
  for (const [name, r] of Object.entries(PEER_ROUTES)) {
    // One loop over differently typed routes; the API registers each route on its own.
    const route: { method: 'GET' | 'POST'; url: string; schema: FastifySchema } = r;
    f.route({ ...route, handler: async (req) => { if (route.method === 'POST') checkProtocol(req.body); return replies[name]; } });
  }
  f.setErrorHandler((e: { code?: string; statusCode?: number; message: string }, _req, reply) => {
    const code = e.code === 'PROTOCOL_VERSION' ? 'PROTOCOL_VERSION' : 'INVALID_INPUT';
    void reply.status(code === 'PROTOCOL_VERSION' ? 400 : e.statusCode ?? 500).send({ error: { code, message: e.message } });
  });
  await f.ready();
  return f;
}

test('every route is a POST under /v1/peer/migrations/:id except status', () => {
  for (const [name, r] of Object.entries(PEER_ROUTES)) {
    assert.match(r.url, /^\/v1\/peer\/migrations\/:id/);
    assert.equal(r.method, name === 'status' ? 'GET' : 'POST', name);
  }
});

test('fastify accepts the schemas; a good prepare passes and its reply serialises whole', async () => {
  const reply = { ...envelopeFor('j1'), migrationUri: 'tcp:10.0.0.2:49152', nbd: [{ sourcePath: '/p/web.qcow2', destinationPath: '/q/web.qcow2', uri: 'nbd://10.0.0.2:10809/web' }], reservedMemoryMiB: 256 };
  const f = await app({ prepare: reply });
  const r = await f.inject({ method: 'POST', url: '/v1/peer/migrations/j1/prepare', payload: prepare });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json(), reply);
  await f.close();
  // The way the API registers one route, typed as is.
  const g = Fastify();
  g.route({ ...PEER_ROUTES.prepare, handler: async () => reply });
  const r2 = await g.inject({ method: 'POST', url: '/v1/peer/migrations/j1/prepare', payload: prepare });
  assert.deepEqual(r2.json(), reply);
  await g.close();
});

test('bad messages: missing fields and bad values are 400, another version is PROTOCOL_VERSION', async () => {
  const f = await app({ cutover: { ...envelopeFor('j1'), action: 'redirect', appliedAt: 'now' } });
  const cases: [string, string, unknown, string][] = [
    ['prepare without vm', 'prepare', { ...prepare, vm: undefined }, 'INVALID_INPUT'],
    ['prepare with a bad disk format', 'prepare', { ...prepare, vm: { ...vm, disks: [{ ...vm.disks[0], format: 'raw' }] } }, 'INVALID_INPUT'],
    ['cutover with a bad MAC', 'cutover', { ...envelopeFor('j1'), action: 'redirect', mac: 'zz' }, 'INVALID_INPUT'],
    ['finish with a bad outcome', 'finish', { ...envelopeFor('j1'), outcome: 'maybe' }, 'INVALID_INPUT'],
    ['version 2', 'cutover', { protocol: 2, jobId: 'j1', action: 'redirect', mac: '52:54:00:0f:1e:2d' }, 'PROTOCOL_VERSION'],
  ];
  for (const [name, msg, body, code] of cases) {
    const r = await f.inject({ method: 'POST', url: `/v1/peer/migrations/j1/${msg}`, payload: body as object });
    assert.equal(r.statusCode, 400, name);
    assert.equal((r.json() as { error: { code: string } }).error.code, code, name);
  }
  const ok = await f.inject({ method: 'POST', url: '/v1/peer/migrations/j1/cutover', payload: { ...envelopeFor('j1'), action: 'redirect', mac: '52:54:00:0f:1e:2d', extra: 1 } });
  assert.equal(ok.statusCode, 200, 'unknown fields are ignored within version 1');
  await f.close();
});

test('status reply: a job the peer never heard of, and a QEMU view', async () => {
  const unknown: StatusReply = { ...envelopeFor('j1'), job: null, qemu: { alive: false, running: false } };
  const known: StatusReply = {
    ...envelopeFor('j1'), job: { status: 'running', phase: 'finish', direction: 'forward', postcopy: false },
    qemu: { alive: true, running: true, migrationStatus: 'completed' },
  };
  for (const body of [unknown, known]) {
    const f = await app({ status: body });
    const r = await f.inject({ method: 'GET', url: '/v1/peer/migrations/j1' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), body);
    await f.close();
  }
});

test('checkProtocol', () => {
  assert.doesNotThrow(() => checkProtocol({ protocol: PROTOCOL_VERSION }));
  for (const b of [null, 'x', {}, { protocol: '1' }, { protocol: 0 }]) assert.throws(() => checkProtocol(b), { code: 'PROTOCOL_VERSION' });
});
