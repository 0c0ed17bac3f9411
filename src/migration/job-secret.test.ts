// The one-time job secret at the destination, through the real API of an in-process agent: every
// later request about a prepared job must carry it (JOB_SECRET_INVALID otherwise, nothing changes);
// a clean-up of a job that already ended needs none. The job is recorded as prepare would record it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testApi, type TestApi } from '../api/test-agent.js';
import { envelopeFor } from './protocol.js';
import { checkJobSecret, hashJobSecret, newJobSecret } from './job-secret.js';
import type { JobRecord } from './job.js';

const url = (id: string, msg: string): string => `/v1/peer/migrations/${id}/${msg}`;

/** A destination record of job `id` for VM `vm` from h2, as prepare leaves it, with its secret's hash kept. */
function prepared(t: TestApi, id: string, vm: string): string {
  t.agent.jobs.create({ id, vm, source: 'h2', destination: 'h1', role: 'destination', options: { includeStorage: false } });
  const secret = newJobSecret();
  t.agent.jobs.keepSecret(id, hashJobSecret(secret));
  return secret;
}

async function post(t: TestApi, id: string, msg: string, body: object): Promise<{ status: number; code?: string; json: Record<string, unknown> }> {
  const r = await t.app.inject({ method: 'POST', url: url(id, msg), payload: { ...envelopeFor(id), ...body } });
  const json = r.json() as Record<string, unknown> & { error?: { code: string } };
  return { status: r.statusCode, ...(json.error ? { code: json.error.code } : {}), json };
}

test('a new secret is 43 base64url characters, drawn afresh each time; only its hash is compared', () => {
  const a = newJobSecret();
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, newJobSecret());
  const job = { id: 'j', destination: 'h1' } as JobRecord;
  assert.doesNotThrow(() => checkJobSecret(job, hashJobSecret(a), a));
  assert.throws(() => checkJobSecret(job, hashJobSecret(a), newJobSecret()), { code: 'JOB_SECRET_INVALID' });
  assert.throws(() => checkJobSecret(job, hashJobSecret(a), undefined), { code: 'JOB_SECRET_INVALID', message: /carries no job secret/ });
  assert.doesNotThrow(() => checkJobSecret(job, null, undefined), 'a job of an older agent kept no hash');
});

test('every later request about a prepared job needs its secret; with it the job can be cancelled', async () => {
  const t = await testApi('secret');
  try {
    const secret = prepared(t, 'job-a', 'va');
    const wrong = newJobSecret();
    const requests: [string, object][] = [
      ['perform-ready', {}],
      ['cutover', { action: 'redirect', mac: '52:54:00:00:00:01' }],
      ['finish', { outcome: 'success' }],
      ['finish', { outcome: 'failure', error: { code: 'MIGRATION_FAILED', message: 'x' } }],
      ['confirm', { outcome: 'success', totals: { totalMs: 1, downtimeMs: 1, transferredBytes: 1, passes: 1 } }],
      ['cancel', { reason: 'someone else' }],
    ];
    for (const [msg, body] of requests) {
      for (const s of [undefined, wrong]) {
        const r = await post(t, 'job-a', msg, { ...body, ...(s ? { secret: s } : {}) });
        assert.equal(r.status, 403, `${msg} ${s ? 'with a wrong secret' : 'without a secret'}: ${JSON.stringify(r.json)}`);
        assert.equal(r.code, 'JOB_SECRET_INVALID', msg);
      }
    }
    assert.equal(t.agent.jobs.get('job-a').state.status, 'running', 'nothing changed');
    const malformed = await post(t, 'job-a', 'cancel', { reason: 'x', secret: 'short' });
    assert.equal(malformed.code, 'INVALID_INPUT', 'a secret of the wrong shape is a schema error');
    const ok = await post(t, 'job-a', 'cancel', { reason: 'the source gave up', secret });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.status, 'cancelled');
    // Ended: a repeated clean-up changes nothing and needs no secret; a finish{success} still does.
    assert.equal((await post(t, 'job-a', 'cancel', { reason: 'again' })).status, 200);
    assert.equal((await post(t, 'job-a', 'finish', { outcome: 'failure' })).status, 200);
    assert.equal((await post(t, 'job-a', 'finish', { outcome: 'success' })).code, 'JOB_SECRET_INVALID');
    assert.equal((await post(t, 'never-seen', 'cancel', { reason: 'x' })).json.status, 'cancelled', 'a job never seen: nothing to clean');
    const st = await t.app.inject({ method: 'GET', url: '/v1/peer/migrations/job-a' });
    assert.equal((st.json() as { job: { error?: { code: string } } }).job.error?.code, 'MIGRATION_CANCELLED', 'status says why the job ended');
  } finally {
    await t.close();
  }
});

test('the source presents the secret it kept; the destination\'s store keeps only the hash', async () => {
  const t = await testApi('secret-src');
  try {
    const secret = newJobSecret();
    t.agent.jobs.create({ id: 'job-s', vm: 'vs', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
    t.agent.jobs.keepSecret('job-s', secret);
    assert.equal(t.agent.jobs.secretOf('job-s'), secret);
    assert.equal(JSON.stringify(t.agent.jobs.get('job-s')).includes(secret), false, 'the record (views, events, logs) never holds it');
    assert.equal(t.agent.jobs.secretOf('unknown'), null);
  } finally {
    await t.close();
  }
});

test('the peer client sends the kept secret with every request about a job after prepare, never with prepare', async () => {
  const { createServer } = await import('node:http');
  const { PeerClient } = await import('./peer-client.js');
  const seen: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => { b += c.toString(); });
    req.on('end', () => { seen.push({ url: req.url, ...(b ? JSON.parse(b) as object : {}) }); res.setHeader('content-type', 'application/json'); res.end('{}'); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const secret = newJobSecret();
  const c = new PeerClient(`http://127.0.0.1:${port}`, 'h2', 5000, undefined, (id) => (id === 'j1' ? secret : null));
  try {
    await c.prepare('j1', { vm: {} as never, source: 'h1', destination: 'h2', options: { includeStorage: false } });
    await c.performReady('j1');
    await c.cancel('j1', 'x');
    await c.finish('j2', { outcome: 'failure' });
  } finally {
    server.close();
  }
  assert.deepEqual(seen.map((s) => [s.url, s.secret]), [
    ['/v1/peer/migrations/j1/prepare', undefined], ['/v1/peer/migrations/j1/perform-ready', secret],
    ['/v1/peer/migrations/j1/cancel', secret], ['/v1/peer/migrations/j2/finish', undefined],
  ]);
});
