import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canCancel, initialState, pastSwitchover, phaseDurations, phaseOf, step, summarize,
  type JobEvent, type JobRecord, type JobState, type Phase,
} from './index.js';

const fwd = (phase: Phase, postcopy = false): JobState => ({ status: 'running', direction: 'forward', phase, postcopy });
const err = { code: 'MIGRATION_FAILED', message: 'It broke.' } as const;
const cancelErr = (p: Phase) => ({ code: 'MIGRATION_CANCELLED', message: `The move was cancelled in phase ${p}; the VM keeps running on the source.` } as const);
const back = (phase: 'finish' | 'confirm', failedIn: Phase, cancelled = false): JobState =>
  ({ status: 'running', direction: 'rollback', phase, failedIn, cancelled, error: cancelled ? cancelErr(failedIn) : err });
const enter = (phase: Phase): JobEvent => ({ type: 'enter', phase });
const fail: JobEvent = { type: 'fail', error: err };
const cancel: JobEvent = { type: 'cancel' };
const done: JobEvent = { type: 'done' };

test('step: every legal transition', () => {
  const table: [string, JobState, JobEvent, JobState][] = [
    ['queued starts', { status: 'queued' }, { type: 'start' }, fwd('begin')],
    ['begin → prepare', fwd('begin'), enter('prepare'), fwd('prepare')],
    ['prepare → perform', fwd('prepare'), enter('perform'), fwd('perform')],
    ['perform → finish', fwd('perform'), enter('finish'), fwd('finish')],
    ['finish → confirm', fwd('finish'), enter('confirm'), fwd('confirm')],
    ['confirm done', fwd('confirm'), done, { status: 'completed' }],
    ['post-copy flag', fwd('perform'), { type: 'postcopy' }, fwd('perform', true)],
    ['post-copy carries on', fwd('perform', true), enter('finish'), fwd('finish', true)],
    ['fail in begin skips finish', fwd('begin'), fail, back('confirm', 'begin')],
    ['fail in prepare', fwd('prepare'), fail, back('finish', 'prepare')],
    ['fail in perform', fwd('perform'), fail, back('finish', 'perform')],
    ['fail in finish', fwd('finish'), fail, back('finish', 'finish')],
    ['cancel in perform', fwd('perform'), cancel, back('finish', 'perform', true)],
    ['cancel in begin', fwd('begin'), cancel, back('confirm', 'begin', true)],
    ['rollback finish → confirm', back('finish', 'perform'), enter('confirm'), back('confirm', 'perform')],
    ['rollback done → failed', back('confirm', 'perform'), done, { status: 'failed', failedIn: 'perform', error: err }],
    ['cancelled rollback done', back('confirm', 'prepare', true), done, { status: 'cancelled', failedIn: 'prepare', error: cancelErr('prepare') }],
    ['queued cancel', { status: 'queued' }, cancel, { status: 'cancelled', failedIn: 'begin', error: cancelErr('begin') }],
    ['queued fail', { status: 'queued' }, fail, { status: 'failed', failedIn: 'begin', error: err }],
    ['end completed from finish', fwd('finish'), { type: 'end', status: 'completed' }, { status: 'completed' }],
    ['end failed in post-copy', fwd('perform', true), { type: 'end', status: 'failed', error: err }, { status: 'failed', failedIn: 'perform', error: err }],
    ['end cancelled while rolling back', back('finish', 'perform', true), { type: 'end', status: 'cancelled', error: err }, { status: 'cancelled', failedIn: 'perform', error: err }],
    ['end queued', { status: 'queued' }, { type: 'end', status: 'failed', error: err }, { status: 'failed', failedIn: 'begin', error: err }],
  ];
  for (const [name, from, ev, to] of table) assert.deepEqual(step(from, ev), to, name);
});

test('step: illegal transitions throw JOB_BAD_PHASE', () => {
  const table: [string, JobState, JobEvent][] = [
    ['skip a phase', fwd('begin'), enter('perform')],
    ['go back a phase', fwd('perform'), enter('prepare')],
    ['re-enter a phase', fwd('perform'), enter('perform')],
    ['enter before start', { status: 'queued' }, enter('begin')],
    ['start twice', fwd('begin'), { type: 'start' }],
    ['done before confirm', fwd('finish'), done],
    ['post-copy outside perform', fwd('prepare'), { type: 'postcopy' }],
    ['post-copy twice', fwd('perform', true), { type: 'postcopy' }],
    ['fail after the destination resumed', fwd('confirm'), fail],
    ['cancel after the destination resumed', fwd('confirm'), cancel],
    ['cancel in post-copy', fwd('perform', true), cancel],
    ['fail in post-copy', fwd('finish', true), fail],
    ['fail while rolling back', back('finish', 'perform'), fail],
    ['cancel while rolling back', back('confirm', 'perform'), cancel],
    ['rollback done too early', back('finish', 'perform'), done],
    ['rollback enters a forward phase', back('finish', 'perform'), enter('finish')],
    ['complete a queued job', { status: 'queued' }, { type: 'end', status: 'completed' }],
    ['anything after completed', { status: 'completed' }, cancel],
    ['anything after failed', { status: 'failed', failedIn: 'perform', error: err }, { type: 'start' }],
    ['end after cancelled', { status: 'cancelled', failedIn: 'perform', error: err }, { type: 'end', status: 'completed' }],
  ];
  for (const [name, from, ev] of table) {
    assert.throws(() => step(from, ev), (e: { code?: string; message?: string }) => e.code === 'JOB_BAD_PHASE' && /cannot take/.test(e.message ?? ''), name);
  }
});

test('helpers: initial states, switch-over, cancellable, phase', () => {
  assert.deepEqual(initialState('source'), { status: 'queued' });
  assert.deepEqual(initialState('destination'), fwd('prepare'));
  assert.equal(pastSwitchover(fwd('finish')), false);
  assert.equal(pastSwitchover(fwd('confirm')), true);
  assert.equal(pastSwitchover(fwd('perform', true)), true);
  assert.equal(canCancel({ status: 'queued' }), true);
  assert.equal(canCancel(fwd('finish')), true);
  assert.equal(canCancel(fwd('confirm')), false);
  assert.equal(canCancel(back('finish', 'perform')), false);
  assert.equal(phaseOf({ status: 'queued' }), 'begin');
  assert.equal(phaseOf(back('confirm', 'prepare')), 'confirm');
  assert.equal(phaseOf({ status: 'failed', failedIn: 'prepare', error: err }), 'prepare');
});

test('summary: CLI fields and time per phase', () => {
  const rec: JobRecord = {
    id: 'j1', vm: 'web', source: 'h1', destination: 'h2', role: 'source',
    state: { status: 'failed', failedIn: 'perform', error: err }, options: { includeStorage: false }, progress: null,
    phaseStartedAt: { begin: '2026-01-01T00:00:00.000Z', prepare: '2026-01-01T00:00:00.100Z', perform: '2026-01-01T00:00:01.000Z', finish: '2026-01-01T00:00:03.000Z' },
    totals: { totalMs: 3500, downtimeMs: null, transferredBytes: 1000, passes: 3, diskBytes: null, diskMs: null },
    createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:03.500Z', endedAt: '2026-01-01T00:00:03.500Z',
  };
  assert.deepEqual(phaseDurations(rec, '2030-01-01T00:00:00.000Z'), { begin: 100, prepare: 900, perform: 2000, finish: 500 });
  const s = summarize(rec);
  assert.equal(s.status, 'failed');
  assert.equal(s.phase, 'perform');
  assert.equal(s.totalMs, 3500);
  assert.deepEqual(s.error, err);
  const ok = summarize({ ...rec, state: { status: 'completed' } });
  assert.equal('error' in ok, false);
});
