import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../errors/index.js';
import { matchJob } from './migration.js';

const jobs = [
  { id: 'ba80e35a-927b-4d7b-91d8-e855542afc09', role: 'destination', at: 'h1' },
  { id: 'ba80e35a-927b-4d7b-91d8-e855542afc09', role: 'source', at: 'h2' },
  { id: '4da2f1ae-1111-4d7b-91d8-e855542afc09', role: 'source', at: 'h2' },
  { id: '4da2f1ff-2222-4d7b-91d8-e855542afc09', role: 'source', at: 'h1' },
];

test('matchJob: the whole id, or the 8 characters `migration list` prints, find the source\'s record', () => {
  assert.equal(matchJob(jobs, 'ba80e35a-927b-4d7b-91d8-e855542afc09')?.at, 'h2');
  assert.equal(matchJob(jobs, 'ba80e35a')?.at, 'h2');
  assert.equal(matchJob(jobs, '4da2f1ae')?.id.startsWith('4da2f1ae'), true);
});

test('matchJob: an unknown id or a prefix under 4 characters finds nothing; one two jobs share is refused', () => {
  assert.equal(matchJob(jobs, 'ffffffff'), undefined);
  assert.equal(matchJob(jobs, 'ba8'), undefined);
  assert.throws(() => matchJob(jobs, '4da2f1'), (e: unknown) => e instanceof FerryError && e.code === 'INVALID_INPUT' && /start of 2 migrations/.test(e.message));
});
