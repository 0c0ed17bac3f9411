import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CATALOGUE, FerryError, toFerryError } from './index.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

test('docs/errors.md lists every code with its status and meaning', () => {
  for (const [code, spec] of Object.entries(CATALOGUE)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/errors.md (run node scripts/gen-errors.mjs)`);
    assert.ok(row.includes(`| ${spec.httpStatus} |`) && row.includes(spec.summary), `${code}'s row is stale`);
  }
});

test('FerryError carries code, status and a sentence; toFerryError keeps it', () => {
  const e = new FerryError('VM_BUSY', 'The VM is busy.');
  assert.equal(e.httpStatus, 409);
  assert.equal(e.retryable, true);
  assert.deepEqual(e.toJSON(), { code: 'VM_BUSY', message: 'The VM is busy.' });
  assert.equal(toFerryError(e), e);
  const w = toFerryError(new Error('boom'));
  assert.equal(w.code, 'INTERNAL');
  assert.equal(w.message, 'boom.');
});
