import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../util/db.js';
import { JobStore, summarize, type JobChange, type NewJob } from './index.js';

/** A clock that moves 10 ms per reading. */
function clock(): () => Date {
  let t = Date.parse('2026-01-01T00:00:00.000Z');
  return () => new Date((t += 10));
}

const job = (over: Partial<NewJob> = {}): NewJob =>
  ({ vm: 'web', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false }, ...over });

test('a successful move: phases stamped, persisted, emitted in order', () => {
  const store = new JobStore(openDb(':memory:'), { now: clock() });
  const seen: string[] = [];
  store.onChange((c) => seen.push(c.kind === 'transition' ? `${c.from.status}->${c.job.state.status}:${c.event.type}` : c.kind));
  const j = store.create(job({ id: 'm1' }));
  assert.equal(j.state.status, 'queued');
  store.apply('m1', { type: 'start' });
  for (const p of ['prepare', 'perform', 'finish', 'confirm'] as const) {
    const r = store.enterPhase('m1', p);
    assert.equal(r.state.status === 'running' && r.state.phase, p);
    assert.equal(store.get('m1').phaseStartedAt[p], r.updatedAt, 'on disk when enterPhase returns');
  }
  store.recordTotals('m1', { downtimeMs: 8, transferredBytes: 123, passes: 3, diskBytes: 1000, diskMs: 5, encrypted: true });
  const end = store.apply('m1', { type: 'done' });
  assert.equal(end.state.status, 'completed');
  assert.ok(end.endedAt);
  assert.equal(end.totals.totalMs, 60, 'begin at +20 ms, ended at +80 ms');
  assert.deepEqual(end.totals, { totalMs: 60, downtimeMs: 8, transferredBytes: 123, passes: 3, diskBytes: 1000, diskMs: 5, encrypted: true });
  assert.equal(summarize(end).encrypted, true, 'the summary says the move travelled over TLS');
  assert.deepEqual(summarize(end, end.endedAt ?? '').phaseMs, { begin: 10, prepare: 10, perform: 10, finish: 10, confirm: 20 });
  assert.deepEqual(seen, ['created', 'queued->running:start', 'running->running:enter', 'running->running:enter', 'running->running:enter',
    'running->running:enter', 'running->completed:done']);
});

test('illegal transitions throw and change nothing', () => {
  const store = new JobStore(openDb(':memory:'));
  store.create(job({ id: 'm1' }));
  let emitted = 0;
  store.onChange(() => emitted++);
  assert.throws(() => store.enterPhase('m1', 'perform'), { code: 'JOB_BAD_PHASE' });
  assert.equal(store.get('m1').state.status, 'queued');
  assert.equal(emitted, 0);
  assert.throws(() => store.apply('nope', { type: 'start' }), { code: 'MIGRATION_NOT_FOUND' });
  assert.throws(() => store.recordProgress('nope', {} as never), { code: 'MIGRATION_NOT_FOUND' });
});

test('one unfinished job per VM (VM_BUSY), same host refused (SAME_HOST), duplicate id refused', () => {
  const store = new JobStore(openDb(':memory:'));
  store.create(job({ id: 'm1' }));
  assert.throws(() => store.create(job({ id: 'm2' })), (e: { code?: string; message?: string }) => e.code === 'VM_BUSY' && /m1/.test(e.message ?? ''));
  assert.throws(() => store.create(job({ vm: 'db', destination: 'h1' })), { code: 'SAME_HOST' });
  assert.throws(() => store.create(job({ id: 'm1', vm: 'other' })), { code: 'INVALID_INPUT' });
  store.apply('m1', { type: 'cancel' });
  assert.equal(store.create(job({ id: 'm3' })).state.status, 'queued', 'a finished job frees the VM');
});

test('failure path: rollback phases, error kept, cancelled status', () => {
  const store = new JobStore(openDb(':memory:'));
  store.create(job({ id: 'm1' }));
  store.apply('m1', { type: 'start' });
  store.enterPhase('m1', 'prepare');
  store.enterPhase('m1', 'perform');
  const r = store.apply('m1', { type: 'cancel' });
  assert.deepEqual(r.state, {
    status: 'running', direction: 'rollback', phase: 'finish', failedIn: 'perform', cancelled: true,
    error: { code: 'MIGRATION_CANCELLED', message: 'The move was cancelled in phase perform; the VM keeps running on the source.' },
  });
  store.enterPhase('m1', 'confirm');
  const end = store.apply('m1', { type: 'done' });
  assert.equal(end.state.status, 'cancelled');
  assert.equal(summarize(end).error?.code, 'MIGRATION_CANCELLED');
  assert.equal(summarize(end).phase, 'perform');
});

test('destination record starts in prepare; post-copy flag survives a reopen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-jobs-'));
  try {
    const path = join(dir, 'agent.db');
    const a = new JobStore(openDb(path));
    const d = a.create(job({ id: 'm1', role: 'destination' }));
    assert.equal(d.state.status === 'running' && d.state.phase, 'prepare');
    assert.ok(d.phaseStartedAt.prepare);
    a.enterPhase('m1', 'perform');
    a.apply('m1', { type: 'postcopy' });
    a.recordProgress('m1', {
      status: 'postcopy-active', percent: 50, transferredBytes: 1, remainingBytes: 1, totalBytes: 2, throughputBytesPerSec: 1,
      dirtyRateMBps: 0, pass: 4, expectedDowntimeMs: null, throttlePercent: 0,
    });
    // A fresh store on the same file is what an agent sees after SIGKILL and restart.
    const b = new JobStore(openDb(path));
    const r = b.get('m1');
    assert.deepEqual(r.state, { status: 'running', direction: 'forward', phase: 'perform', postcopy: true });
    assert.equal(r.role, 'destination');
    assert.equal(r.progress?.pass, 4);
    assert.deepEqual(b.active().map((x) => x.id), ['m1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('history: newest first, by VM, by status; active ones oldest first', () => {
  const store = new JobStore(openDb(':memory:'), { now: clock() });
  for (const [id, vm] of [['a', 'web'], ['b', 'db'], ['c', 'web']] as const) {
    if (store.activeFor(vm)) store.apply(store.activeFor(vm)?.id ?? '', { type: 'cancel' });
    store.create(job({ id, vm }));
  }
  assert.deepEqual(store.list().map((j) => j.id), ['c', 'b', 'a']);
  assert.deepEqual(store.list({ vm: 'web' }).map((j) => j.id), ['c', 'a']);
  assert.deepEqual(store.list({ status: 'cancelled' }).map((j) => j.id), ['a']);
  assert.deepEqual(store.list({ limit: 1 }).map((j) => j.id), ['c']);
  assert.deepEqual(store.active().map((j) => j.id), ['b', 'c']);
  assert.equal(store.activeFor('web')?.id, 'c');
});

test('a throwing listener neither undoes nor hides a committed change', () => {
  const errors: JobChange['kind'][] = [];
  const store = new JobStore(openDb(':memory:'), { onListenerError: (_e, c) => errors.push(c.kind) });
  let later = 0;
  store.onChange(() => { throw new Error('listener bug'); });
  const off = store.onChange(() => later++);
  store.create(job({ id: 'm1' }));
  store.apply('m1', { type: 'start' });
  assert.equal(store.get('m1').state.status, 'running');
  assert.equal(later, 2);
  assert.deepEqual(errors, ['created', 'transition']);
  off();
  store.enterPhase('m1', 'prepare');
  assert.equal(later, 2);
});

test('a job the state database cannot write is STATE_STORE_FAILED, not taken for a busy VM', () => {
  const db = openDb(':memory:');
  const store = new JobStore(db, { now: clock() });
  db.pragma('query_only = ON');
  assert.throws(() => store.create(job({ id: 'ro1' })), { code: 'STATE_STORE_FAILED' });
});
