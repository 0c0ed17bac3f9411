// Every peer route's body schema is closed and bounded at every depth (docs/security.md, "Hostile
// input"), and a GET peer route refuses a query string: read from the OpenAPI document, so a new
// peer route is checked without being listed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testApi } from './test-agent.js';

interface Schema { type?: string | string[]; properties?: Record<string, Schema>; items?: Schema; additionalProperties?: unknown; maxLength?: number; pattern?: string; enum?: unknown[]; maxItems?: number }

/** The places in `s` that are open: an object without additionalProperties false, an unbounded string or array. */
function openings(s: Schema, at: string): string[] {
  const types = Array.isArray(s.type) ? s.type : [s.type];
  const out: string[] = [];
  if (types.includes('object') && s.properties && s.additionalProperties !== false) out.push(`${at}: object without additionalProperties false`);
  if (types.includes('string') && s.maxLength === undefined && s.pattern === undefined && s.enum === undefined) out.push(`${at}: unbounded string`);
  if (types.includes('array') && s.maxItems === undefined) out.push(`${at}: unbounded array`);
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...openings(v, `${at}.${k}`));
  if (s.items) out.push(...openings(s.items, `${at}[]`));
  return out;
}

test('every /v1/peer/ route: a closed, bounded body; no query string on GET', async () => {
  const t = await testApi('peer-strict');
  try {
    const doc = t.app.swagger() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>> };
    const peer = Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1/peer/'));
    assert.ok(peer.length >= 8, `peer routes found: ${peer.map(([p]) => p).join(', ')}`);
    for (const [path, ops] of peer) {
      for (const [method, op] of Object.entries(ops)) {
        const body = op.requestBody?.content['application/json']?.schema;
        if (method === 'post') {
          assert.ok(body, `POST ${path} has a body schema`);
          assert.deepEqual(openings(body, 'body'), [], `POST ${path}`);
        }
        if (method === 'get') {
          const url = path.replace(/\{[^}]+\}/g, 'j1');
          const r = await t.app.inject({ method: 'GET', url: `${url}?x=1` });
          assert.equal(r.statusCode, 400, `GET ${url}?x=1: ${r.body}`);
          assert.equal((r.json() as { error: { code: string } }).error.code, 'INVALID_INPUT');
        }
      }
    }
  } finally {
    await t.close();
  }
});
