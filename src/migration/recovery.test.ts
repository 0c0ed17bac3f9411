import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { MigrationStatus } from '../qmp/index.js';
import { recoveryAction, type JobRecord, type JobRole, type JobState, type Phase, type RecoveryFacts, type RecoveryStep } from './index.js';
import { recoveryRetryDelayMs, RecoveryWaits } from './recover.js';

const err = { code: 'MIGRATION_FAILED', message: 'It broke.' } as const;
const fwd = (phase: Phase, postcopy = false): JobState => ({ status: 'running', direction: 'forward', phase, postcopy });
const back = (phase: 'finish' | 'confirm', failedIn: Phase, cancelled = false): JobState =>
  ({ status: 'running', direction: 'rollback', phase, failedIn, cancelled, error: err });

const record = (role: JobRole, state: JobState): JobRecord => ({
  id: 'j', vm: 'web', source: 'h1', destination: 'h2', role, state, options: { includeStorage: false }, progress: null,
  phaseStartedAt: {}, totals: { totalMs: null, downtimeMs: null, transferredBytes: null, passes: null, diskBytes: null, diskMs: null },
  createdAt: '', updatedAt: '', endedAt: null,
});

/** Source runs, destination listens idle: the state before switch-over. */
const F = (over: Partial<RecoveryFacts> = {}): RecoveryFacts =>
  ({ sourceQemuAlive: true, sourceRunning: true, destQemuAlive: true, destRunning: false, ...over });
const PEER_UNKNOWN = { destQemuAlive: 'unknown', destRunning: 'unknown' } as const;
const SRC_UNKNOWN = { sourceQemuAlive: 'unknown', sourceRunning: 'unknown' } as const;

const FWD_SRC: RecoveryStep[] = ['stop-source', 'confirm-destination', 'release'];
const FWD_DST: RecoveryStep[] = ['resume-destination', 'take-ownership', 'release'];
const BACK_DST: RecoveryStep[] = ['kill-destination', 'clean-destination', 'release'];
const LOST_SRC: RecoveryStep[] = ['power-off-source', 'release'];

type Row = [name: string, state: JobState, facts: RecoveryFacts, kind: string, steps?: RecoveryStep[], extra?: { awaitPeer?: boolean; status?: string }];

const SOURCE: Row[] = [
  ['queued: nothing started', { status: 'queued' }, F(), 'roll-back', ['release'], { status: 'failed' }],
  ['begin: just unlock', fwd('begin'), F(), 'roll-back', ['release'], { awaitPeer: false }],
  ['prepare: clean the destination', fwd('prepare'), F(), 'roll-back', ['cancel-destination', 'release']],
  ['prepare, peer silent: cancel is best effort', fwd('prepare'), F(PEER_UNKNOWN), 'roll-back', ['cancel-destination', 'release'], { awaitPeer: false }],
  ['perform, copying', fwd('perform'), F({ qemuMigrationStatus: 'active' }), 'roll-back', ['cancel-migration', 'cancel-destination', 'release']],
  ['perform, at pre-switchover', fwd('perform'), F({ sourceRunning: false, qemuMigrationStatus: 'pre-switchover' }), 'roll-back',
    ['cancel-migration', 'cancel-destination', 'resume-source', 'release']],
  // The stream completed before the agent wrote finish: the destination may run the VM already (it does not wait for finish).
  ['perform, QEMU completed, destination did not resume', fwd('perform'), F({ sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-back',
    ['cancel-destination', 'resume-source', 'release'], { awaitPeer: true }],
  ['perform, completed, peer silent: may have resumed', fwd('perform'), F({ sourceRunning: false, qemuMigrationStatus: 'completed', ...PEER_UNKNOWN }), 'wait'],
  ['perform, QEMU did not answer: cancel anyway', fwd('perform'), F(), 'roll-back', ['cancel-migration', 'cancel-destination', 'release']],
  ['perform, migration failed on its own', fwd('perform'), F({ qemuMigrationStatus: 'failed' }), 'roll-back', ['cancel-destination', 'release']],
  ['perform, destination runs: RESUME rule', fwd('perform'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_SRC],
  ['perform, both run', fwd('perform'), F({ destRunning: true }), 'manual', []],
  ['perform, source QEMU gone, destination complete', fwd('perform'), F({ sourceQemuAlive: false, sourceRunning: false, peerMigrationStatus: 'completed' }),
    'roll-forward', ['finish-destination', 'release'], { awaitPeer: true }],
  ['perform, source QEMU gone, peer silent', fwd('perform'), F({ sourceQemuAlive: false, sourceRunning: false, ...PEER_UNKNOWN }), 'wait'],
  ['perform, source QEMU gone, peer status missing', fwd('perform'), F({ sourceQemuAlive: false, sourceRunning: false }), 'wait'],
  ['perform, source QEMU gone, destination incomplete', fwd('perform'), F({ sourceQemuAlive: false, sourceRunning: false, peerMigrationStatus: 'active' }),
    'vm-lost', ['cancel-destination', 'release']],
  ['begin, source QEMU gone', fwd('begin'), F({ sourceQemuAlive: false, sourceRunning: false, destQemuAlive: false }), 'vm-lost', ['release']],
  ['post-copy running', fwd('perform', true), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'postcopy-active' }), 'wait'],
  ['post-copy requested, not yet switched', fwd('perform', true), F({ sourceRunning: false, qemuMigrationStatus: 'active' }), 'wait'],
  ['post-copy status without the flag', fwd('perform'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'postcopy-active' }), 'wait'],
  ['post-copy completed', fwd('perform', true), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward',
    ['finish-destination', 'stop-source', 'confirm-destination', 'release']],
  ['post-copy paused: link broke', fwd('perform', true), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'postcopy-paused' }), 'manual', []],
  ['post-copy, source gone, destination complete', fwd('perform', true), F({ sourceQemuAlive: false, sourceRunning: false, destRunning: true, peerMigrationStatus: 'completed' }),
    'roll-forward', ['finish-destination', 'release']],
  ['post-copy, source gone mid-way', fwd('perform', true), F({ sourceQemuAlive: false, sourceRunning: false, destRunning: true, peerMigrationStatus: 'postcopy-active' }),
    'vm-lost', ['cancel-destination', 'release']],
  ['post-copy flag, but the switch never happened', fwd('perform', true), F({ qemuMigrationStatus: 'failed' }), 'roll-back', ['cancel-destination', 'release']],
  ['finish, destination resumed', fwd('finish'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_SRC],
  ['finish, peer silent: may have resumed', fwd('finish'), F({ sourceRunning: false, qemuMigrationStatus: 'completed', ...PEER_UNKNOWN }), 'wait'],
  ['finish, destination did not resume', fwd('finish'), F({ sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-back',
    ['cancel-destination', 'resume-source', 'release'], { awaitPeer: true, status: 'failed' }],
  ['finish, destination QEMU gone', fwd('finish'), F({ sourceRunning: false, destQemuAlive: false, qemuMigrationStatus: 'completed' }), 'roll-back',
    ['cancel-destination', 'resume-source', 'release'], { awaitPeer: true }],
  ['finish, stale answer: destination QEMU gone but "running"', fwd('finish'), F({ sourceRunning: false, destQemuAlive: false, destRunning: true, qemuMigrationStatus: 'completed' }),
    'roll-back', ['cancel-destination', 'resume-source', 'release']],
  // The destination resumed the VM (its record is in confirm) and its QEMU died since: it refuses the cancel; only forward ends the job.
  ['finish, destination confirmed, its QEMU gone since', fwd('finish'), F({ sourceRunning: false, destQemuAlive: false, destConfirmed: true, qemuMigrationStatus: 'completed' }),
    'roll-forward', FWD_SRC],
  ['perform, QEMU completed, destination confirmed and paused', fwd('perform'), F({ sourceRunning: false, destConfirmed: true, qemuMigrationStatus: 'completed' }),
    'roll-forward', FWD_SRC],
  ['rollback from finish, destination confirmed', back('finish', 'finish'), F({ sourceRunning: false, destQemuAlive: false, destConfirmed: true, qemuMigrationStatus: 'completed' }),
    'roll-forward', FWD_SRC],
  ['finish, destination confirmed, its copy gone, source runs again', back('confirm', 'finish', true), F({ destQemuAlive: false, destConfirmed: true }),
    'roll-back', ['release'], { status: 'cancelled' }],
  ['finish, destination confirmed, both QEMUs gone since', fwd('finish'), F({ sourceQemuAlive: false, sourceRunning: false, destQemuAlive: false, destConfirmed: true }),
    'roll-forward', FWD_SRC],
  ['finish, destination confirmed and alive, source runs again', fwd('finish'), F({ destConfirmed: true }), 'manual', []],
  ['finish, source gone, destination complete', fwd('finish'), F({ sourceQemuAlive: false, sourceRunning: false, peerMigrationStatus: 'completed' }),
    'roll-forward', ['finish-destination', 'release']],
  ['confirm: destination had resumed', fwd('confirm'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_SRC],
  ['confirm, peer silent: still forward', fwd('confirm'), F({ sourceRunning: false, ...PEER_UNKNOWN }), 'roll-forward', FWD_SRC],
  ['confirm, source QEMU already stopped', fwd('confirm'), F({ sourceQemuAlive: false, sourceRunning: false, destRunning: true }), 'roll-forward', FWD_SRC],
  ['confirm, source runs again', fwd('confirm'), F({ destRunning: false }), 'manual', []],
  ['rollback finish after a cancel', back('finish', 'perform', true), F({ sourceRunning: false, qemuMigrationStatus: 'cancelled' }), 'roll-back',
    ['cancel-destination', 'resume-source', 'release'], { status: 'cancelled', awaitPeer: false }],
  ['rollback of a failure after the stream completed, peer silent: may run the VM', back('finish', 'finish'), F({ sourceRunning: false, qemuMigrationStatus: 'completed', ...PEER_UNKNOWN }), 'wait'],
  ['rollback of a cancel after the stream completed, peer silent: the cancel runs the copy', back('finish', 'finish', true), F({ sourceRunning: false, qemuMigrationStatus: 'completed', ...PEER_UNKNOWN }),
    'roll-back', ['cancel-destination', 'resume-source', 'release'], { status: 'cancelled' }],
  ['rollback confirm from prepare', back('confirm', 'prepare'), F(), 'roll-back', ['cancel-destination', 'release'], { status: 'failed' }],
  ['rollback confirm from begin', back('confirm', 'begin'), F({ ...PEER_UNKNOWN }), 'roll-back', ['release']],
  ['rollback, source paused at pre-switchover', back('finish', 'perform'), F({ sourceRunning: false, qemuMigrationStatus: 'pre-switchover' }), 'roll-back',
    ['cancel-migration', 'cancel-destination', 'resume-source', 'release']],
  // The destination ran the VM and lost it (its record ended, `ranHere`): the older copy here neither runs nor goes.
  ['finish, destination ran the VM and lost it', fwd('finish'), F({ sourceRunning: false, destQemuAlive: false, destLost: { message: 'Its QEMU is gone.' }, qemuMigrationStatus: 'completed' }),
    'vm-lost', LOST_SRC],
  ['perform, completed, destination ran the VM and lost it', fwd('perform'), F({ sourceRunning: false, destQemuAlive: false, destLost: {}, qemuMigrationStatus: 'completed' }), 'vm-lost', LOST_SRC],
  ['rollback of a failure, destination ran the VM and lost it', back('finish', 'finish'), F({ sourceRunning: false, destQemuAlive: false, destLost: {}, qemuMigrationStatus: 'completed' }),
    'vm-lost', LOST_SRC],
  ['finish, destination lost it, source QEMU gone too: the VM stays, stopped', fwd('finish'), F({ sourceQemuAlive: false, sourceRunning: false, destQemuAlive: false, destLost: {} }),
    'vm-lost', LOST_SRC],
  ['post-copy completed, destination lost it', fwd('perform', true), F({ sourceRunning: false, destQemuAlive: false, destLost: {}, qemuMigrationStatus: 'completed' }), 'vm-lost', LOST_SRC],
  ['finish, destination lost it, source runs again', back('confirm', 'finish', true), F({ destQemuAlive: false, destLost: {} }), 'roll-back', ['release']],
  ['completed', { status: 'completed' }, F(), 'none'],
  ['failed', { status: 'failed', failedIn: 'perform', error: err }, F(), 'none'],
  ['cancelled', { status: 'cancelled', failedIn: 'perform', error: err }, F(), 'none'],
];

const DESTINATION: Row[] = [
  ['prepare, listening', fwd('prepare'), F({ qemuMigrationStatus: 'setup' }), 'roll-back', BACK_DST, { status: 'failed' }],
  ['prepare, QEMU never started', fwd('prepare'), F({ destQemuAlive: false, destRunning: false }), 'roll-back', BACK_DST],
  ['prepare, receiving', fwd('prepare'), F({ qemuMigrationStatus: 'active' }), 'roll-back', BACK_DST],
  ['prepare, complete copy, source alive', fwd('prepare'), F({ sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-back', BACK_DST],
  ['prepare, complete copy, source gone', fwd('prepare'), F({ sourceQemuAlive: false, sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_DST],
  ['prepare, complete copy, source silent', fwd('prepare'), F({ ...SRC_UNKNOWN, qemuMigrationStatus: 'completed' }), 'wait'],
  ['prepare, incomplete, source silent', fwd('prepare'), F({ ...SRC_UNKNOWN, qemuMigrationStatus: 'active' }), 'roll-back', BACK_DST],
  ['perform, receiving', fwd('perform'), F({ qemuMigrationStatus: 'active' }), 'roll-back', BACK_DST],
  ['perform, post-copy running here', fwd('perform'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'postcopy-active' }), 'wait'],
  ['perform, post-copy paused', fwd('perform'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'postcopy-paused' }), 'manual', []],
  ['perform, post-copy completed, running', fwd('perform'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_DST],
  ['finish, resumed before the restart', fwd('finish'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_DST],
  ['finish, not resumed, source alive', fwd('finish'), F({ sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-back', BACK_DST],
  ['finish, not resumed, source gone', fwd('finish'), F({ sourceQemuAlive: false, sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_DST],
  ['finish, not resumed, source silent', fwd('finish'), F({ ...SRC_UNKNOWN, qemuMigrationStatus: 'completed' }), 'wait'],
  ['finish, QEMU gone', fwd('finish'), F({ destQemuAlive: false, destRunning: false }), 'roll-back', BACK_DST],
  ['confirm, running', fwd('confirm'), F({ destRunning: true, ...SRC_UNKNOWN }), 'roll-forward', FWD_DST],
  ['confirm, paused after resume', fwd('confirm'), F({ sourceRunning: false, destRunning: false }), 'roll-forward', FWD_DST],
  ['confirm, source runs again', fwd('confirm'), F({ destRunning: false }), 'manual', []],
  ['confirm, source runs again, this copy gone (a cancel on the source)', fwd('confirm'), F({ destQemuAlive: false, destRunning: false }), 'roll-back',
    ['forget-destination', 'release'], { status: 'failed' }],
  // The VM lost here: a storage move's images are kept (forget, not clean); the source keeps the VM stopped.
  ['confirm, QEMU gone after take-over', fwd('confirm'), F({ sourceRunning: false, destQemuAlive: false, destRunning: false }), 'vm-lost', ['forget-destination', 'release']],
  ['both run', fwd('finish'), F({ destRunning: true }), 'manual', []],
  ['rollback finish', back('finish', 'perform'), F({ qemuMigrationStatus: 'failed' }), 'roll-back', BACK_DST, { status: 'failed' }],
  ['rollback after a cancel', back('confirm', 'prepare', true), F(), 'roll-back', BACK_DST, { status: 'cancelled' }],
  ['rollback, complete copy, source gone: save it', back('finish', 'finish'), F({ sourceQemuAlive: false, sourceRunning: false, qemuMigrationStatus: 'completed' }), 'roll-forward', FWD_DST],
  ['completed', { status: 'completed' }, F(), 'none'],
];

function check(role: JobRole, rows: Row[]): void {
  for (const [name, state, facts, kind, steps, extra] of rows) {
    const d = recoveryAction(role, record(role, state), facts);
    const label = `${role}: ${name}`;
    assert.equal(d.kind, kind, `${label}: ${d.reason}`);
    assert.ok(d.reason.endsWith('.'), `${label}: the reason is a sentence`);
    if (d.kind === 'none' || d.kind === 'wait') continue;
    if (steps) assert.deepEqual(d.steps, steps, label);
    if (extra?.awaitPeer !== undefined) assert.equal(d.awaitPeer, extra.awaitPeer, label);
    if (extra?.status !== undefined) assert.equal(d.end.status, extra.status, label);
    assert.equal(d.end.status === 'completed', d.kind === 'roll-forward', label);
  }
}

test('recovery on the source: every phase', () => check('source', SOURCE));
test('recovery on the destination: every phase', () => check('destination', DESTINATION));

test('a cancel reaches a source that waits for a silent destination: it runs its own copy again, and only there', () => {
  const silent = F({ sourceRunning: false, qemuMigrationStatus: 'completed', ...PEER_UNKNOWN });
  for (const state of [fwd('finish'), fwd('perform')]) {
    const d = recoveryAction('source', record('source', state), silent, { cancelRequested: true });
    assert.ok(d.kind === 'roll-back', d.reason);
    assert.deepEqual(d.steps, ['cancel-destination', 'resume-source', 'release']);
    assert.equal(d.awaitPeer, false, 'the operator said the destination is gone: nobody waits for it');
    assert.ok(d.end.status === 'cancelled' && d.end.error.code === 'MIGRATION_CANCELLED');
  }
  // Where the source does not wait for the destination, a cancel request changes nothing.
  for (const [state, facts] of [
    [fwd('finish'), F({ sourceRunning: false, destRunning: true, qemuMigrationStatus: 'completed' })],
    [fwd('perform', true), F({ sourceRunning: false, qemuMigrationStatus: 'postcopy-active', ...PEER_UNKNOWN })],
    [fwd('finish'), F({ sourceQemuAlive: false, sourceRunning: false, ...PEER_UNKNOWN })],
  ] as const) {
    assert.deepEqual(recoveryAction('source', record('source', state), facts, { cancelRequested: true }), recoveryAction('source', record('source', state), facts));
  }
});

test('a restart alone is reported as a failure that names the phase', () => {
  const d = recoveryAction('source', record('source', fwd('perform')), F());
  assert.ok(d.kind === 'roll-back' && d.end.status === 'failed' && d.end.error.code === 'MIGRATION_FAILED' && /perform/.test(d.end.error.message));
});

const fact = fc.constantFrom<boolean | 'unknown'>(true, false, 'unknown');
const status = fc.option(fc.constantFrom<MigrationStatus>('setup', 'active', 'pre-switchover', 'device', 'completed', 'failed', 'cancelled',
  'postcopy-active', 'postcopy-paused', 'none'), { nil: undefined });
const phase = fc.constantFrom<Phase>('begin', 'prepare', 'perform', 'finish', 'confirm');
const state: fc.Arbitrary<JobState> = fc.oneof(
  fc.record({ status: fc.constant('running' as const), direction: fc.constant('forward' as const), phase, postcopy: fc.boolean() }),
  fc.record({
    status: fc.constant('running' as const), direction: fc.constant('rollback' as const), phase: fc.constantFrom<'finish' | 'confirm'>('finish', 'confirm'),
    failedIn: fc.constantFrom<Phase>('begin', 'prepare', 'perform', 'finish'), error: fc.constant(err), cancelled: fc.boolean(),
  }),
);
/** Facts that agree with themselves: a QEMU that is gone does not run (recoveryAction assumes as much). */
const facts = fc.record({
  sourceQemuAlive: fact, sourceRunning: fact, destQemuAlive: fact, destRunning: fact, qemuMigrationStatus: status, peerMigrationStatus: status,
  destConfirmed: fc.option(fc.boolean(), { nil: undefined }),
  destLost: fc.option(fc.record({ message: fc.constant('Its QEMU is gone.') }), { nil: undefined }),
}).map((f) => ({
  ...f,
  sourceRunning: f.sourceQemuAlive === false ? false : f.sourceRunning,
  destRunning: f.destQemuAlive === false ? false : f.destRunning,
}));

test('never two: no decision resumes one side while the other is known to run', () => {
  fc.assert(fc.property(fc.constantFrom<JobRole>('source', 'destination'), state, facts, (role, s, f) => {
    const d = recoveryAction(role, record(role, s), f);
    if (d.kind === 'none' || d.kind === 'wait') return;
    if (d.steps.includes('resume-source')) assert.notEqual(f.destRunning, true);
    if (d.steps.includes('resume-destination') || d.steps.includes('finish-destination')) assert.notEqual(f.sourceRunning, true);
    // Rolling back while the destination runs the guest would lose what it did since.
    if (d.kind === 'roll-back') assert.notEqual(f.destRunning, true);
  }), { numRuns: 5000 });
});

test('never none: the source is stopped only when the destination has (or had confirmed) the VM', () => {
  fc.assert(fc.property(state, facts, (s, f) => {
    const d = recoveryAction('source', record('source', s), f);
    if (d.kind === 'none' || d.kind === 'wait' || !d.steps.includes('stop-source')) return;
    const confirmed = s.status === 'running' && s.direction === 'forward' && s.phase === 'confirm';
    const postcopyDone = f.qemuMigrationStatus === 'completed';
    assert.ok(confirmed || f.destRunning === true || postcopyDone || f.destConfirmed === true, `stop-source with ${JSON.stringify({ s, f })}`);
  }), { numRuns: 5000 });
});

test('after a completed stream the source runs its copy again only when the destination said it does not, or an operator cancelled', () => {
  fc.assert(fc.property(state, facts, fc.boolean(), (s, f, cancelRequested) => {
    const d = recoveryAction('source', record('source', s), f, { cancelRequested });
    if (d.kind !== 'roll-back' || !d.steps.includes('resume-source')) return;
    if (s.status !== 'running' || (s.direction === 'rollback' && s.cancelled) || f.qemuMigrationStatus !== 'completed') return;
    assert.ok(f.destRunning === false || cancelRequested, `resume-source with ${JSON.stringify({ s, f })}`);
  }), { numRuns: 5000 });
});

test('a destination kills its QEMU only when the source is known to still have the VM or the copy is incomplete', () => {
  fc.assert(fc.property(state, facts, (s, f) => {
    const d = recoveryAction('destination', record('destination', s), f);
    if (d.kind !== 'roll-back' || !d.steps.includes('kill-destination')) return;
    assert.notEqual(f.destRunning, true);
    if (f.destQemuAlive === true && f.qemuMigrationStatus === 'completed') assert.equal(f.sourceQemuAlive, true);
  }), { numRuns: 5000 });
});

test('a source never rolls back by asking a destination that confirmed RESUME to cancel: it refuses, and the recovery would decide the same forever', () => {
  fc.assert(fc.property(state, facts, fc.boolean(), (s, f, cancelRequested) => {
    const d = recoveryAction('source', record('source', s), { ...f, destConfirmed: true }, { cancelRequested });
    if (d.kind !== 'roll-back') return;
    assert.ok(!d.steps.includes('cancel-destination'), `cancel-destination with ${JSON.stringify({ s, f })}: ${d.reason}`);
  }), { numRuns: 5000 });
});

test('a destination that ran the VM and lost it: the source neither resumes its older copy, nor lets go, nor asks the destination to clean up', () => {
  fc.assert(fc.property(state, facts, fc.boolean(), (s, f, cancelRequested) => {
    const d = recoveryAction('source', record('source', s), { ...f, destLost: { message: 'Its QEMU is gone.' } }, { cancelRequested });
    if (d.kind === 'none') return;
    assert.notEqual(d.kind, 'wait', 'the destination answered: nothing to wait for');
    if (d.kind === 'wait') return;
    for (const step of ['resume-source', 'stop-source', 'finish-destination', 'cancel-destination'] as const) {
      assert.ok(!d.steps.includes(step), `${step} with ${JSON.stringify({ s, f })}: ${d.reason}`);
    }
    if (f.sourceRunning !== true && f.destRunning !== true) {
      assert.deepEqual(d.steps, ['power-off-source', 'release']);
      assert.ok(d.end.status === 'failed' && d.end.error.code === 'MIGRATION_LOST_ON_DESTINATION');
      assert.match(d.end.error.message, /ran on h2 after the switch-over and was lost there \(h2: Its QEMU is gone\); its copy here on h1 was older and was not run\. Start it/);
    }
  }), { numRuns: 5000 });
});

test('after a storage move the source\'s reason says that the destination kept its newer images', () => {
  const r = { ...record('source', fwd('finish')), options: { includeStorage: true } };
  const d = recoveryAction('source', r, F({ sourceRunning: false, destQemuAlive: false, destLost: { message: 'Gone. Its images stay on h2 at /p/web.qcow2.' }, qemuMigrationStatus: 'completed' }));
  assert.ok(d.kind === 'vm-lost' && d.end.status === 'failed');
  assert.match(d.end.error.message, /Its images stay on h2 at \/p\/web\.qcow2\).*as of the switch-over; h2 kept its newer images/);
});

test('a waiting recovery never gives up: every 2 s for 2 minutes, then every 15 s', () => {
  assert.equal(recoveryRetryDelayMs(1), 2000);
  assert.equal(recoveryRetryDelayMs(59), 2000);
  assert.equal(recoveryRetryDelayMs(60), 15_000);
  assert.equal(recoveryRetryDelayMs(10_000), 15_000);
});

test('a cancel reaches a waiting recovery at once, and only a waiting one', async () => {
  const waits = new RecoveryWaits();
  assert.equal(waits.requestCancel('j'), false, 'no recovery of j');
  assert.equal(waits.cancelRequested('j'), false);
  waits.begin('j');
  // Asking the peer right now (no timer): the request waits for the decision.
  assert.equal(waits.requestCancel('j'), true);
  assert.equal(waits.cancelRequested('j'), true);
  let ran = 0;
  waits.schedule('j', 60_000, () => { ran += 1; });
  assert.equal(waits.requestCancel('j'), true);
  assert.equal(ran, 1, 'a waiting recovery runs now, not in a minute');
  waits.done('j');
  assert.equal(waits.has('j'), false);
  assert.equal(waits.cancelRequested('j'), false);
  assert.equal(waits.requestCancel('j'), false, 'the recovery ended');
});
