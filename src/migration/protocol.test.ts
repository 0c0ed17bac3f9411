import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifySchema } from 'fastify';
import { checkProtocol, envelopeFor, PEER_ROUTES, PROTOCOL_VERSION, type MoveOptions, type PrepareRequest, type StatusReply } from './index.js';
import type { VmSpec } from '../vm/index.js';

const vm = {
  name: 'web', uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2',
  mac: '52:54:00:0f:1e:2d', ip: '10.0.0.5', prefixLength: 24, disks: [{ path: '/p/web.qcow2', sizeBytes: 1024, pool: 'default', format: 'qcow2' as const }], ha: false,
};
const prepare: PrepareRequest = { ...envelopeFor('j1'), vm, source: 'h1', destination: 'h2', options: { includeStorage: true } };

/** A fastify app with every peer route; handlers answer what the test says, so schemas do the work. */
async function app(replies: Record<string, unknown>) {
  // As the API builds it (src/api/server.ts): unknown fields are refused, not stripped.
  const f = Fastify({ ajv: { customOptions: { removeAdditional: false } } });
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
    ['an unknown field', 'cutover', { ...envelopeFor('j1'), action: 'redirect', mac: '52:54:00:0f:1e:2d', extra: 1 }, 'INVALID_INPUT'],
    ['an unknown field deep in prepare', 'prepare', { ...prepare, vm: { ...vm, disks: [{ ...vm.disks[0], backing: '/etc/shadow' }] } }, 'INVALID_INPUT'],
    ['an unknown move option', 'prepare', { ...prepare, options: { includeStorage: true, x: 1 } }, 'INVALID_INPUT'],
    ['a 5000-character reason', 'cancel', { ...envelopeFor('j1'), reason: 'x'.repeat(5000) }, 'INVALID_INPUT'],
    ['a 300-character VM name', 'prepare', { ...prepare, vm: { ...vm, name: 'a'.repeat(300) } }, 'INVALID_INPUT'],
    ['a UUID that is not one', 'prepare', { ...prepare, vm: { ...vm, uuid: 'x' } }, 'INVALID_INPUT'],
    ['65 disks', 'prepare', { ...prepare, vm: { ...vm, disks: Array.from({ length: 65 }, () => vm.disks[0]) } }, 'INVALID_INPUT'],
    ['a secret that is not one', 'finish', { ...envelopeFor('j1'), outcome: 'success', secret: 'x' }, 'INVALID_INPUT'],
    ['version 2', 'cutover', { protocol: 2, jobId: 'j1', action: 'redirect', mac: '52:54:00:0f:1e:2d' }, 'PROTOCOL_VERSION'],
  ];
  for (const [name, msg, body, code] of cases) {
    const r = await f.inject({ method: 'POST', url: `/v1/peer/migrations/j1/${msg}`, payload: body as object });
    assert.equal(r.statusCode, 400, name);
    assert.equal((r.json() as { error: { code: string } }).error.code, code, name);
  }
  await f.close();
});

test('every field of VmSpec and MoveOptions passes the closed schemas (a new field must be added to peer-schemas.ts)', async () => {
  // Required<…>: adding a field to either type breaks this file until it is added here, and then the schema check below.
  const full: Required<VmSpec> = { ...vm, gateway: '10.0.0.1', group: 'web-tier', boot: { kernel: '/i/vmlinuz', initrd: '/i/initrd' }, ha: true, ramTrimKiB: 0 };
  const options: Required<MoveOptions> = {
    includeStorage: true, storagePath: '/pool/b', probe: true, allowPostcopy: true, allowAutoConverge: true, retainSourceDisks: true,
    maxBandwidthBytesPerSec: 1 << 30, performance: 'multichannel',
  };
  const f = await app({ prepare: { ...envelopeFor('j1'), migrationUri: 'tcp:10.0.0.2:1', nbd: [], reservedMemoryMiB: 256 } });
  const r = await f.inject({ method: 'POST', url: '/v1/peer/migrations/j1/prepare', payload: { ...prepare, vm: full, options, disks: [{ allocatedBytes: 1, sharedId: 'nfs-a' }], allowInsecure: false, sourceAddresses: ['10.0.0.1'], handover: { vni: 7, sourceAddress: '10.0.0.1' } } });
  assert.equal(r.statusCode, 200, r.body);
  await f.close();
});

test('the prepare reply carries the job secret through the reply schema', async () => {
  const reply = { ...envelopeFor('j1'), migrationUri: 'tcp:10.0.0.2:1', nbd: [], reservedMemoryMiB: 256, encrypted: true, secret: 'A'.repeat(43) };
  const f = await app({ prepare: reply });
  const r = await f.inject({ method: 'POST', url: '/v1/peer/migrations/j1/prepare', payload: prepare });
  assert.deepEqual(r.json(), reply);
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
