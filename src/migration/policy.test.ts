import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bulkCopyMs, completionTimeoutMs, decide, DEFAULT_POLICY, nextDowntimeMs, nextThrottlePercent, policyForMove, progressView, sampleFromInfo,
  type AppliedSettings, type ConvergenceAction, type ConvergencePolicy, type ProgressSample,
} from './index.js';

const MB = 1e6;
const GiB = 1024 ** 3;

/** A sample: pass, remaining MB, dirty MB/s, link MB/s; one sample per 100 ms. */
function s(pass: number, remainingMB: number, dirtyMBps = 0, linkMBps = 100, over: Partial<ProgressSample> = {}): ProgressSample {
  return {
    atMs: pass * 1000, status: 'active', transferredBytes: pass * 100 * MB, remainingBytes: remainingMB * MB, totalBytes: 1024 * MB,
    dirtyPagesRate: (dirtyMBps * MB) / 4096, pageSize: 4096, mbps: linkMBps * 8, expectedDowntimeMs: (remainingMB / linkMBps) * 1000,
    pass, throttlePercent: 0, ...over,
  };
}

/** Passes `from`..`to` with remaining going linearly from `a` to `b` MB. */
const run = (from: number, to: number, a: number, b: number, dirty = 0, link = 100): ProgressSample[] =>
  Array.from({ length: to - from + 1 }, (_, i) => s(from + i, a + ((b - a) * i) / Math.max(1, to - from), dirty, link));

const applied = (over: Partial<AppliedSettings> = {}): AppliedSettings =>
  ({ startedAtMs: 0, downtimeLimitMs: 50, throttleCeilingPercent: 0, postcopyStarted: false, lastActionPass: 0, ...over });

const P = (over: Partial<ConvergencePolicy> = {}): ConvergencePolicy => ({ ...DEFAULT_POLICY, ...over });
const withPostcopy = P({ allowPostcopy: true });
const noThrottle = P({ allowAutoConverge: false });

type Row = [name: string, samples: ProgressSample[], policy: ConvergencePolicy, applied: AppliedSettings, kind: ConvergenceAction['kind'], detail?: number | RegExp, memory?: number];

const stuck = run(1, 6, 300, 300);
const late = (xs: ProgressSample[], atMs: number): ProgressSample[] => xs.map((x, i) => (i === xs.length - 1 ? { ...x, atMs } : x));

const ROWS: Row[] = [
  ['no samples', [], P(), applied(), 'none', /No sample/],
  ['converging VM', run(1, 6, 600, 40), P(), applied(), 'none', /shrinking/],
  ['bulk pass only', [s(1, 900)], P(), applied(), 'none', /bulk/],
  ['too few passes to judge', run(1, 3, 300, 300), P(), applied(), 'none', /Too few/],
  ['stuck, QEMU needs 3 s, beyond every step → the largest', stuck, P(), applied(), 'set-downtime', 500],
  ['stuck, QEMU gives no estimate → the next step', run(1, 6, 300, 300).map((x) => ({ ...x, expectedDowntimeMs: null })), P(), applied(), 'set-downtime', 100],
  ['stuck, QEMU needs 180 ms → jump to the step that fits', run(1, 6, 18, 18, 0, 100), P(), applied(), 'set-downtime', 200],
  ['dirty rate at link rate → step up at once', [s(1, 900), s(2, 300, 120, 100)], P(), applied(), 'set-downtime', 500],
  ['dirty rate below link rate, shrinking', [s(1, 900), s(2, 300, 30, 100), s(3, 150, 30, 100)], P(), applied(), 'none'],
  ['stuck at 300 ms → 500', stuck, P(), applied({ downtimeLimitMs: 300 }), 'set-downtime', 500],
  ['already at max → throttle', stuck, P(), applied({ downtimeLimitMs: 500 }), 'throttle', 20],
  ['throttled to 40 and still stuck → 60', stuck, P(), applied({ downtimeLimitMs: 500, throttleCeilingPercent: 40 }), 'throttle', 60],
  ['throttled to the top, post-copy allowed → post-copy', stuck, withPostcopy, applied({ downtimeLimitMs: 500, throttleCeilingPercent: 99 }), 'start-postcopy'],
  ['no auto-converge, post-copy allowed → post-copy', stuck, P({ allowAutoConverge: false, allowPostcopy: true }), applied({ downtimeLimitMs: 500 }), 'start-postcopy'],
  ['ladder exhausted, no post-copy → wait for the timeout', stuck, P(), applied({ downtimeLimitMs: 500, throttleCeilingPercent: 99 }), 'none', /timeout/],
  ['no auto-converge, no post-copy, at max → wait', stuck, noThrottle, applied({ downtimeLimitMs: 500 }), 'none', /timeout/],
  ['no post-copy past the timeout → abort', late(stuck, 60_000), P(), applied(), 'abort', /timeout/],
  ['post-copy allowed past the timeout → post-copy', late(stuck, 60_000), withPostcopy, applied(), 'start-postcopy', /timeout/],
  ['post-copy running past the timeout → never abort', late(stuck, 60_000), P(), applied({ postcopyStarted: true }), 'none', /never aborted/],
  ['QEMU in post-copy → none', [s(3, 100, 0, 100, { status: 'postcopy-active' })], P(), applied(), 'none'],
  ['past the timeout at pre-switchover → let it finish', [s(5, 0, 0, 100, { status: 'pre-switchover', atMs: 60_000 })], P(), applied(), 'none', /switching over/],
  ['past the timeout in setup → abort', [s(0, 0, 0, 0, { status: 'setup', atMs: 60_000 })], P(), applied(), 'abort'],
  ['completed → none', [s(5, 0, 0, 100, { status: 'completed' })], P(), applied(), 'none'],
  ['just acted → let it work', stuck, P(), applied({ lastActionPass: 5 }), 'none', /take effect/],
  ['acted at pass 2, judged on passes 3–6 only', [...run(1, 2, 900, 900), ...run(3, 6, 300, 300)], P(), applied({ lastActionPass: 2 }), 'set-downtime', 500],
  ['acted at pass 3, shrinking since', [...run(1, 3, 300, 300), ...run(4, 8, 300, 60)], P(), applied({ lastActionPass: 3 }), 'none'],
  ['stuck but QEMU expects to fit the limit', run(1, 6, 3, 3), P(), applied(), 'none', /within/],
  ['256 MiB at 30 s is past its 25 s timeout', late(stuck, 30_000), P(), applied(), 'abort', undefined, 256 * 1024 ** 2],
  ['1 GiB at 30 s is within its 40 s timeout', late(stuck, 30_000), P(), applied(), 'set-downtime', 500, GiB],
  ['slow link: a 20 s bulk copy stretches the timeout to 100 s', late(stuck, 60_000), P(), applied({ downtimeLimitMs: 500, throttleCeilingPercent: 99, bulkEndedAtMs: 20_000 }), 'none', /timeout/, GiB],
  ['slow link: past the stretched timeout → abort', late(stuck, 101_000), P(), applied({ bulkEndedAtMs: 20_000 }), 'abort', /100 s/, GiB],
  ['slow link: half the bulk copy done at 60 s (projected 120 s) → keep going', [s(1, 512, 0, 10, { atMs: 60_000, totalBytes: 1024 * MB })], P(), applied(), 'none', /bulk/, GiB],
  ['4 GiB at 90 s is within its 100 s timeout', late(stuck, 90_000), P(), applied({ downtimeLimitMs: 500, throttleCeilingPercent: 99 }), 'none', undefined, 4 * GiB],
];

test('decide: table of convergence decisions', () => {
  for (const [name, samples, policy, app, kind, detail, memory] of ROWS) {
    const a = decide({ samples, policy, applied: app, memoryBytes: memory ?? GiB });
    assert.equal(a.kind, kind, `${name}: ${a.reason}`);
    assert.ok(a.reason.endsWith('.'), `${name}: reason is a sentence`);
    if (typeof detail === 'number') assert.equal(a.kind === 'set-downtime' ? a.downtimeMs : a.kind === 'throttle' ? a.maxCpuThrottlePercent : NaN, detail, name);
    if (detail instanceof RegExp) assert.match(a.reason, detail, name);
    if (a.kind === 'abort') assert.equal(a.code, 'MIGRATION_TIMEOUT');
  }
});

test('escalation runs the ladder in order for a VM that never converges', () => {
  const policy = withPostcopy;
  let app = applied();
  const seen: string[] = [];
  const samples: ProgressSample[] = [];
  for (let pass = 1; pass <= 80 && !app.postcopyStarted; pass++) {
    samples.push(s(pass, 400, 150, 100, { atMs: pass * 300 }));
    const a = decide({ samples, policy, applied: app, memoryBytes: GiB });
    if (a.kind === 'none') continue;
    seen.push(a.kind === 'set-downtime' ? `d${a.downtimeMs}` : a.kind === 'throttle' ? `t${a.maxCpuThrottlePercent}` : a.kind);
    if (a.kind === 'set-downtime') app = { ...app, downtimeLimitMs: a.downtimeMs, lastActionPass: pass };
    if (a.kind === 'throttle') app = { ...app, throttleCeilingPercent: a.maxCpuThrottlePercent, lastActionPass: pass };
    if (a.kind === 'start-postcopy') app = { ...app, postcopyStarted: true, lastActionPass: pass };
  }
  assert.deepEqual(seen, ['d500', 't20', 't40', 't60', 't80', 't99', 'start-postcopy']);
});

test('downtime and throttle steps', () => {
  assert.equal(nextDowntimeMs(DEFAULT_POLICY, 50, null), 100);
  assert.equal(nextDowntimeMs(DEFAULT_POLICY, 50, 250), 300);
  assert.equal(nextDowntimeMs(DEFAULT_POLICY, 50, 5000), 500);
  assert.equal(nextDowntimeMs(DEFAULT_POLICY, 500, 100), undefined);
  assert.equal(nextDowntimeMs(P({ downtimeStepsMs: [100, 1000], maxDowntimeMs: 400 }), 100, null), 400);
  assert.equal(nextThrottlePercent(DEFAULT_POLICY, 0), 20);
  assert.equal(nextThrottlePercent(DEFAULT_POLICY, 99), undefined);
  assert.equal(completionTimeoutMs(DEFAULT_POLICY, GiB / 2), 30_000);
  assert.equal(completionTimeoutMs(DEFAULT_POLICY, GiB / 2, 2_000), 30_000, 'a quick bulk copy: memory decides');
  assert.equal(completionTimeoutMs(DEFAULT_POLICY, GiB / 2, 30_000), 140_000, 'a slow one: 4 × its duration');
  assert.equal(bulkCopyMs([s(1, 768, 0, 10, { atMs: 3_000, totalBytes: 1024 * MB })], applied()), 12_000);
  assert.equal(bulkCopyMs([s(1, 1000, 0, 10, { atMs: 3_000, totalBytes: 1024 * MB })], applied()), null, 'under 5% done');
  assert.equal(bulkCopyMs([], applied({ startedAtMs: 1_000, bulkEndedAtMs: 9_000 })), 8_000);
});

test('samples from query-migrate, including before RAM figures exist', () => {
  assert.deepEqual(sampleFromInfo({ status: 'setup' }, 5), {
    atMs: 5, status: 'setup', transferredBytes: 0, remainingBytes: 0, totalBytes: 0, dirtyPagesRate: 0, pageSize: 4096,
    mbps: 0, expectedDowntimeMs: null, pass: 0, throttlePercent: 0,
  });
  const ram = {
    transferred: 10, remaining: 20, total: 40, duplicate: 0, skipped: 0, normal: 0, 'normal-bytes': 0, 'dirty-pages-rate': 100, mbps: 8,
    'dirty-sync-count': 3, 'postcopy-requests': 0, 'page-size': 4096, 'multifd-bytes': 0, 'pages-per-second': 0, 'precopy-bytes': 0,
    'downtime-bytes': 0, 'postcopy-bytes': 0, 'dirty-sync-missed-zero-copy': 0,
  };
  const x = sampleFromInfo({ status: 'active', ram, 'expected-downtime': 12, 'cpu-throttle-percentage': 30 }, 7);
  assert.equal(x.pass, 3);
  assert.equal(x.expectedDowntimeMs, 12);
  assert.equal(x.throttlePercent, 30);
  assert.equal(x.dirtyPagesRate, 100);
});

test('progress view: percent, throughput, dirty rate', () => {
  const a = s(2, 512, 20, 100, { atMs: 1000, transferredBytes: 100 * MB });
  const b = s(2, 256, 20, 100, { atMs: 1500, transferredBytes: 160 * MB });
  const v = progressView(b, a);
  assert.equal(v.percent, 75);
  assert.equal(v.throughputBytesPerSec, 120 * MB);
  assert.equal(v.dirtyRateMBps, 20);
  assert.equal(v.pass, 2);
  assert.equal(v.remainingBytes, 256 * MB);
  assert.equal(progressView(a).throughputBytesPerSec, 100 * MB, 'without prev, from mbps');
  assert.equal(progressView({ ...b, status: 'completed', remainingBytes: 5 }).percent, 100);
  assert.equal(progressView({ ...b, status: 'completed', remainingBytes: 5 }).remainingBytes, 0);
  assert.equal(progressView(s(0, 0, 0, 0, { status: 'setup', totalBytes: 0 })).percent, 0);
  assert.equal(progressView(b, { ...b, atMs: 1500 }).throughputBytesPerSec, 100 * MB, 'no time passed: fall back to mbps');
});

test('policyForMove: host settings give the downtime target and post-copy; the move\'s own choice wins', () => {
  const host = { ...DEFAULT_POLICY, allowPostcopy: false };
  const cases: [string, { allowPostcopy?: boolean }, { downtimeTargetMs: number; allowPostcopy: boolean } | undefined, number, boolean][] = [
    ['no settings: the host policy', {}, undefined, 50, false],
    ['settings: their target and post-copy', {}, { downtimeTargetMs: 120, allowPostcopy: true }, 120, true],
    ['move says no post-copy', { allowPostcopy: false }, { downtimeTargetMs: 120, allowPostcopy: true }, 120, false],
    ['move asks for post-copy', { allowPostcopy: true }, { downtimeTargetMs: 30, allowPostcopy: false }, 30, true],
  ];
  for (const [what, opts, settings, target, postcopy] of cases) {
    const p = policyForMove(host, opts, settings);
    assert.equal(p.downtimeTargetMs, target, what);
    assert.equal(p.allowPostcopy, postcopy, what);
  }
  const long = policyForMove(host, {}, { downtimeTargetMs: 2000, allowPostcopy: false });
  assert.equal(long.maxDowntimeMs, 2000, 'the largest pause allowed is never below the target');
  assert.equal(nextDowntimeMs(long, 2000, 5000), undefined, 'nothing to raise beyond it');
});
