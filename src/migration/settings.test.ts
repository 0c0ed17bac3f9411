import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cutoverAction, cutoverDue, DEFAULT_CUTOVER, DEFAULT_POLICY, destinationSettings, HELD_THROTTLE_PERCENT, pollIntervalMs,
  sourceSettings, type CutoverState, type ProgressSample,
} from './index.js';

const MB = 1e6;
const on = (caps: { capability: string; state: boolean }[]): string[] => caps.filter((c) => c.state).map((c) => c.capability).sort();

test('source settings: capabilities fixed before migrate, auto-converge held low', () => {
  const s = sourceSettings({ ...DEFAULT_POLICY, allowAutoConverge: true, allowPostcopy: false });
  assert.deepEqual(on(s.capabilities), ['auto-converge', 'events', 'pause-before-switchover', 'return-path', 'validate-uuid']);
  assert.ok(s.capabilities.some((c) => c.capability === 'postcopy-ram' && !c.state), 'post-copy explicitly off');
  assert.equal(s.parameters['downtime-limit'], 50);
  assert.equal(s.parameters['max-cpu-throttle'], HELD_THROTTLE_PERCENT);
  assert.ok((s.parameters['max-cpu-throttle'] ?? 0) >= (s.parameters['cpu-throttle-initial'] ?? 0), 'QEMU refuses max < initial');
  const p = sourceSettings({ ...DEFAULT_POLICY, allowAutoConverge: false, allowPostcopy: true }, 1000);
  assert.deepEqual(on(p.capabilities), ['events', 'pause-before-switchover', 'postcopy-ram', 'return-path', 'validate-uuid']);
  assert.equal(p.parameters['max-bandwidth'], 1000);
  assert.equal(p.parameters['max-cpu-throttle'], undefined);
});

test('destination settings: both-ends capabilities and announce pacing', () => {
  const d = destinationSettings({ ...DEFAULT_POLICY, allowPostcopy: true });
  assert.deepEqual(on(d.capabilities), ['events', 'postcopy-ram', 'return-path']);
  assert.equal(d.parameters['announce-rounds'], 5);
});

/** A sample with a link of `linkMBps` and `remainingMB` left. */
const x = (pass: number, remainingMB: number, over: Partial<ProgressSample> = {}): ProgressSample => ({
  atMs: 1000, status: 'active', transferredBytes: 0, remainingBytes: remainingMB * MB, totalBytes: 1024 * MB, dirtyPagesRate: 1000,
  pageSize: 4096, mbps: 8000, expectedDowntimeMs: remainingMB, pass, throttlePercent: 0, ...over,
});

test('cut-over: redirect just before the pause, never during the bulk pass unless nearly done', () => {
  // Link 1000 MB/s: at a 50 ms limit QEMU switches once 50 MB remain.
  const rows: [string, ProgressSample, boolean][] = [
    ['bulk pass, lots left', x(1, 800, { expectedDowntimeMs: 800 }), false],
    ['bulk pass, under the floor', x(1, 20, { expectedDowntimeMs: null }), true],
    ['bulk pass, under the switch threshold but over the floor', x(1, 45, { expectedDowntimeMs: 45 }), false],
    ['pass 3, QEMU about to switch', x(3, 45, { expectedDowntimeMs: 45 }), true],
    ['pass 3, estimate fits the limit', x(3, 200, { expectedDowntimeMs: 40 }), true],
    ['pass 3, still far', x(3, 400, { expectedDowntimeMs: 400 }), false],
    ['slow link: the floor counts', x(3, 29, { mbps: 8, expectedDowntimeMs: 3600 }), true],
    ['already at pre-switchover: late but do it', x(3, 0, { status: 'pre-switchover' }), true],
    ['setup', x(0, 0, { status: 'setup', totalBytes: 0 }), false],
    ['completed', x(4, 0, { status: 'completed' }), false],
  ];
  for (const [name, s, due] of rows) assert.equal(cutoverDue(s, 50), due, name);
});

test('cut-over: undo a redirect held too long, and do not flap in the same pass', () => {
  const st = (over: Partial<CutoverState> = {}): CutoverState => ({ downtimeLimitMs: 50, redirectedAtMs: null, restoredInPass: 0, ...over });
  assert.equal(cutoverAction(x(3, 10), st()), 'redirect');
  assert.equal(cutoverAction(x(3, 10), st({ redirectedAtMs: 900 })), 'none');
  assert.equal(cutoverAction(x(3, 10, { atMs: 900 + DEFAULT_CUTOVER.holdMs }), st({ redirectedAtMs: 900 })), 'restore');
  assert.equal(cutoverAction(x(3, 10, { status: 'device', atMs: 5000 }), st({ redirectedAtMs: 900 })), 'none', 'paused: keep it');
  assert.equal(cutoverAction(x(3, 10), st({ restoredInPass: 3 })), 'none');
  assert.equal(cutoverAction(x(4, 10), st({ restoredInPass: 3 })), 'redirect');
  assert.equal(cutoverAction(x(3, 0, { status: 'pre-switchover' }), st({ restoredInPass: 3 })), 'redirect');
});

test('polling speeds up near the switch point', () => {
  assert.equal(pollIntervalMs(undefined, 50), 100);
  assert.equal(pollIntervalMs(x(2, 800), 50), 100);
  assert.equal(pollIntervalMs(x(2, 150), 50), 5);
});
