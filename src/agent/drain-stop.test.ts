import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDb } from '../util/db.js';
import { FerryError } from '../errors/index.js';
import { JobStore } from '../migration/index.js';
import { cancellable, DrainStop } from './drain-stop.js';

/** Jobs of this host: q1 queued, p1 in perform, f1 in finish (its stream completed), c1 post-copy. */
function jobs(): JobStore {
  const s = new JobStore(openDb(':memory:'));
  for (const id of ['q1', 'p1', 'f1', 'c1']) s.create({ id, vm: `vm-${id}`, source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
  for (const id of ['p1', 'f1', 'c1']) {
    s.apply(id, { type: 'start' });
    for (const p of ['prepare', 'perform'] as const) s.enterPhase(id, p);
  }
  s.enterPhase('f1', 'finish');
  s.apply('c1', { type: 'postcopy' });
  return s;
}

test('a resume cancels a drain move only before its stream completed, never in post-copy', () => {
  const s = jobs();
  assert.deepEqual(['q1', 'p1', 'f1', 'c1'].map((id) => cancellable(s.get(id))), [true, true, false, false]);
});

test('stopping a drain: its cancellable moves are cancelled once, others and moves not of the drain are not; it refuses the drain\'s moves and stops until the run ends', async () => {
  const s = jobs();
  s.create({ id: 'x1', vm: 'vm-x1', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
  const stop = new DrainStop('h1', s);
  for (const id of ['q1', 'p1', 'f1', 'c1']) stop.started(id);
  stop.admit('move', 'a');
  let rounds = 0;
  const cancelled: string[] = [];
  let refused: unknown;
  await stop.stop(() => {
    if (rounds === 1) {
      try { stop.admit('stop', 'big'); } catch (e) { refused = e; }
    }
    return rounds++ < 3;
  }, (id) => cancelled.push(id), () => assert.fail('not late'), 60_000);
  assert.deepEqual(cancelled, ['q1', 'p1'], 'x1 was not started by the drain; f1 is past its stream\'s end; c1 in post-copy');
  assert.ok(refused instanceof FerryError && refused.code === 'MIGRATION_CANCELLED', 'a --force stop is refused while the resume stops the drain');
  assert.doesNotThrow(() => stop.admit('move', 'a'), 'and admitted again afterwards');
});

test('stopping a drain that does not end in time throws what late() throws, and admits again', async () => {
  const stop = new DrainStop('h1', jobs());
  await assert.rejects(stop.stop(() => true, () => undefined, () => { throw new FerryError('DRAIN_IN_PROGRESS', 'still running'); }, 0), (e: FerryError) => e.code === 'DRAIN_IN_PROGRESS');
  assert.doesNotThrow(() => stop.admit('stop', 'a'));
});
