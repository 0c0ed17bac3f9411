import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { testApi, type TestApi } from './test-agent.js';

// In-process: DELETE /v1/cluster/members/:host takes any host name a certificate can carry
// (src/security/pki.ts: dots, capitals, a leading digit), and nothing else.
let t: TestApi;
let admin: string;

before(async () => {
  t = await testApi('leave-route');
  admin = t.agent.tokens.create('root', 'admin').token;
});
after(() => t.close());

const leave = (host: string) => t.app.inject({ method: 'DELETE', url: `/v1/cluster/members/${host}`, headers: { authorization: `Bearer ${admin}` } });

test('a leave accepts host names with dots, capitals and a leading digit; a standalone host answers NOT_IN_CLUSTER', async () => {
  for (const host of ['h2', 'Node-7.lab.example', '1host', 'a']) {
    const r = await leave(host);
    assert.equal(r.statusCode, 409, `${host}: ${r.body}`);
    assert.equal(r.json().error.code, 'NOT_IN_CLUSTER', host);
  }
});

test('a leave refuses what cannot be a host name', async () => {
  for (const host of ['-h2', 'h2-', 'h_2', 'h2%2Fx', `${'a'.repeat(64)}`]) {
    const r = await leave(host);
    assert.equal(r.statusCode, 400, `${host}: ${r.body}`);
    assert.equal(r.json().error.code, 'INVALID_INPUT', host);
  }
});
