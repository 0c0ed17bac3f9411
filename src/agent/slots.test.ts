import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../errors/index.js';
import { Slots } from './slots.js';

test('slots: up to the limit, then STORAGE_MIGRATION_LIMIT; a release frees exactly one slot, once', () => {
  let limit = 2;
  const s = new Slots(() => ({ storage: limit }));
  const a = s.tryTake('storage');
  const b = s.tryTake('storage');
  assert.equal(s.inUse('storage'), 2);
  assert.throws(() => s.tryTake('storage'), (e: unknown) => e instanceof FerryError && e.code === 'STORAGE_MIGRATION_LIMIT');
  a();
  a();
  assert.equal(s.inUse('storage'), 1, 'a second call of the same release frees nothing more');
  const c = s.tryTake('storage');
  limit = 1;
  assert.throws(() => s.tryTake('storage'), /limit/, 'a lowered limit applies to the next take');
  b();
  c();
  assert.equal(s.inUse('storage'), 0);
});
