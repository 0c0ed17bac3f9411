// Integration: API tokens, roles and the audit log (issue 6, point 3) on a 2-host lab, over the
// agent's TCP listener from the lab's client namespace with curl, as a remote user calls it (http
// or https, whichever the lab's agents serve; https is checked against the lab's CA). The lab's
// own CLI talks to the agents over their unix sockets, which need no token: that is how the
// tokens are made here, as an admin on the host makes the first one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clientNsName, labStatus } from '../src/lab/index.js';
import { labDir, repoRoot } from '../src/util/paths.js';
import { readContext } from '../src/util/index.js';
import type { VmView } from '../src/agent/views.js';
import type { AuditEntry } from '../src/agent/audit.js';
import type { TokenView } from '../src/agent/tokens.js';
import { labSuite } from './support/suite.js';
import { ferry } from './support/cli.js';
import { assertRunsOnce, vmsByHost } from './support/invariants.js';

const run = promisify(execFile);
const suite = labSuite('au');
const LAB = suite.name;
const { track } = suite;

/** h1's API base URL and, for https, the CA file its certificate chains to. */
async function h1(): Promise<{ url: string; ca?: string }> {
  const url = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.url;
  assert.ok(url, 'the lab has h1');
  if (!url.startsWith('https:')) return { url };
  const ca = readContext()?.ca ?? join(labDir(LAB), 'ca', 'ca-cert.pem');
  assert.ok(existsSync(ca), `the lab's CA certificate ${ca} exists`);
  return { url, ca };
}

interface Answer { status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }

/** One request to h1 over the lab network, with curl in the client namespace. */
async function call(method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
  const { url, ca } = await h1();
  const args = ['netns', 'exec', clientNsName(LAB), 'curl', '-s', '--max-time', '120', '-X', method, '-w', '\n%{http_code}'];
  if (ca) args.push('--cacert', ca);
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data', JSON.stringify(body));
  const { stdout } = await run('ip', [...args, `${url}${path}`], { maxBuffer: 16 << 20 });
  const i = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, i);
  return { status: Number(stdout.slice(i + 1)), json: (text ? JSON.parse(text) : {}) as Answer['json'] };
}

/** `ferry token create NAME --role R --host h1 --json` over the unix socket: the secret and the id. */
async function makeToken(name: string, role: string): Promise<{ token: string; id: string }> {
  const r = await ferry<{ token: string; id: string; role: string }>(['token', 'create', name, '--role', role, '--host', 'h1', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.role, role);
  return r.json;
}

const exists = async (name: string): Promise<boolean> => [...(await vmsByHost(LAB)).values()].flat().some((v) => v.name === name);

test('tokens and roles over TCP: 401 without one, 403 for a weak role, operator and admin allowed, revocation, audit', { timeout: 600_000 }, track(async () => {
  // No token, or a made-up one: 401 with the code, and nothing is created.
  const anon = await call('POST', '/v1/vms', undefined, { name: 'au-anon', memoryMiB: 256 });
  assert.equal(anon.status, 401, JSON.stringify(anon.json));
  assert.equal(anon.json.error?.code, 'UNAUTHENTICATED');
  const fake = await call('POST', '/v1/vms', 'ferry_madeup', { name: 'au-anon', memoryMiB: 256 });
  assert.deepEqual([fake.status, fake.json.error?.code], [401, 'UNAUTHENTICATED']);
  assert.equal((await call('DELETE', '/v1/vms/anything')).status, 401, 'every mutating route wants a token');
  assert.equal(await exists('au-anon'), false, 'nothing was created');

  const viewer = await makeToken('au-viewer', 'viewer');
  const operator = await makeToken('au-operator', 'operator');
  const admin = await makeToken('au-admin', 'admin');

  // An operator creates a VM.
  const made = await call('POST', '/v1/vms', operator.token, { name: 'au1', memoryMiB: 256 });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const before = await assertRunsOnce(LAB, 'au1', 'h1');

  // A viewer reads, and may not move it: 403, the VM untouched, no job.
  const list = await call('GET', '/v1/vms', viewer.token);
  assert.equal(list.status, 200);
  const move = await call('POST', '/v1/migrations', viewer.token, { vm: 'au1', destination: 'h2' });
  assert.equal(move.status, 403, JSON.stringify(move.json));
  assert.equal(move.json.error?.code, 'FORBIDDEN');
  const after = await assertRunsOnce(LAB, 'au1', 'h1');
  assert.equal(after.pid, before.pid, 'the same QEMU runs the VM');
  const jobs = await ferry<unknown[]>(['migration', 'list', '--json']);
  assert.deepEqual(jobs.json, [], 'no migration job was made');

  // Tokens are the admin's: an operator may not list them, an admin may.
  assert.equal((await call('GET', '/v1/tokens', operator.token)).status, 403);
  const tokens = await call('GET', '/v1/tokens', admin.token);
  assert.equal(tokens.status, 200);
  const names = (tokens.json as unknown as TokenView[]).map((t) => t.name).sort();
  assert.deepEqual(names, ['au-admin', 'au-operator', 'au-viewer']);
  assert.ok(!JSON.stringify(tokens.json).includes(viewer.token), 'the list carries no secret');

  // The CLI over the URL sends FERRY_TOKEN (run where the lab network is: the client namespace).
  const { url, ca } = await h1();
  const cli = (token?: string) => run('ip', ['netns', 'exec', clientNsName(LAB), process.execPath, `${repoRoot()}dist/src/cli/main.js`, 'vm', 'list', '--json'], {
    env: { ...process.env, FERRY_URL: url, ...(ca ? { FERRY_CA: ca } : {}), ...(token ? { FERRY_TOKEN: token } : { FERRY_TOKEN: '' }) },
  }).then((r) => ({ code: 0, out: r.stdout }), (e: { code?: number; stdout?: string }) => ({ code: e.code ?? 1, out: e.stdout ?? '' }));
  const withToken = await cli(viewer.token);
  assert.equal(withToken.code, 0, withToken.out);
  assert.ok((JSON.parse(withToken.out) as VmView[]).some((v) => v.name === 'au1'));
  const withoutToken = await cli();
  assert.notEqual(withoutToken.code, 0);
  assert.match(withoutToken.out, /UNAUTHENTICATED/);

  // A revoked token: 401.
  const revoked = await ferry(['token', 'revoke', viewer.id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  const late = await call('GET', '/v1/vms', viewer.token);
  assert.deepEqual([late.status, late.json.error?.code], [401, 'UNAUTHENTICATED']);

  // The operator deletes the VM.
  const del = await call('DELETE', '/v1/vms/au1', operator.token);
  assert.equal(del.status, 200, JSON.stringify(del.json));
  assert.equal(await exists('au1'), false);

  // The audit log names who did what, with the outcome.
  const audit = await ferry<(AuditEntry & { host: string })[]>(['audit', '--host', 'h1', '--json']);
  assert.equal(audit.code, 0, audit.stderr);
  const seen = audit.json.map((e) => `${e.who} ${e.method} ${e.route} ${e.vm ?? '-'} ${e.status}`);
  for (const want of [
    'anonymous POST /v1/vms - 401',
    'au-operator POST /v1/vms au1 201',
    'au-viewer POST /v1/migrations - 403',
    'au-operator DELETE /v1/vms/:name au1 200',
    'local-socket POST /v1/tokens - 201',
    'local-socket DELETE /v1/tokens/:id - 200',
  ]) assert.ok(seen.includes(want), `the audit log has "${want}": ${seen.join('; ')}`);
  const create = audit.json.find((e) => e.who === 'au-operator' && e.method === 'POST');
  assert.equal(create?.tokenId, operator.id);
}));
