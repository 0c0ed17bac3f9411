// Integration: a guest that dirties memory faster than the link carries it, on real QEMU in a
// 2-host lab whose links are shaped to 100 Mbit/s. Without post-copy the move must be aborted
// cleanly at its completion timeout and the VM keep running on the source, untouched; with
// `--postcopy` the same guest must move. The lab's agents get a short completion timeout and no
// auto-converge (agent config `convergence`), so the ladder runs out within seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet } from './support/cli.js';
import { assertGuestIntact, assertRolledBack, assertRunsOnce, beforeMove, waitGuest } from './support/invariants.js';

const TIMEOUT_MS = 12_000;
const suite = labSuite('mc', {
  lab: {
    bandwidth: '100mbit',
    agentConfig: {
      convergence: {
        allowAutoConverge: false, downtimeStepsMs: [100], maxDowntimeMs: 100,
        completionTimeoutBaseMs: TIMEOUT_MS, completionTimeoutPerGiBMs: 0, completionTimeoutBulkFactor: 2,
      },
    },
  },
});
const LAB = suite.name;
const { track } = suite;

interface MoveJson {
  id: string; status: string; totalMs: number | null; downtimeMs: number | null; transferredBytes: number | null;
  passes: number | null; postcopy: boolean; error?: { code: string; message: string };
}

/** A VM whose workload rewrites its 32 MiB test area at 40 MB/s: about three times what 100 Mbit/s carries. */
async function busyVm(name: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  assert.equal((await guestGet(LAB, r.json.ip, '/dirty?mbps=40')).trim(), 'ok');
  return r.json;
}

const fmt = (j: MoveJson): string =>
  `${j.status} after ${j.totalMs} ms, ${((j.transferredBytes ?? 0) / 1048576).toFixed(1)} MiB in ${j.passes} passes, ` +
  `downtime ${j.downtimeMs} ms, post-copy ${j.postcopy}${j.error ? `, ${j.error.code}: ${j.error.message}` : ''}`;

test('a VM dirtying faster than the link, post-copy not allowed: aborted at the timeout, keeps running on the source', track(async (t) => {
  await busyVm('fast-dirty');
  const b = await beforeMove(LAB, 'fast-dirty', 'h2');
  const t0 = Date.now();
  const r = await ferry<MoveJson>(['move', 'fast-dirty', '--to', 'h2', '--json']);
  const took = Date.now() - t0;
  t.diagnostic(`${fmt(r.json)}; the CLI returned after ${took} ms`);
  assert.notEqual(r.code, 0, 'a failed move exits non-zero');
  assert.equal(r.json.status, 'failed', r.stdout);
  assert.equal(r.json.error?.code, 'MIGRATION_TIMEOUT', r.stdout);
  assert.ok(took >= TIMEOUT_MS, `not before the ${TIMEOUT_MS} ms timeout (${took} ms)`);
  assert.ok(took < TIMEOUT_MS + 30_000, `aborted soon after the timeout, not hung (${took} ms)`);
  await assertRolledBack(LAB, 'fast-dirty', b);
  assert.equal((await guestGet(LAB, b.ip, '/verify')).trim(), 'ok');
  assert.equal((await ferry(['vm', 'delete', 'fast-dirty'])).code, 0);
}));

test('the same VM with --postcopy: switches to post-copy and moves, the guest intact', track(async (t) => {
  await busyVm('pc-move');
  const b = await beforeMove(LAB, 'pc-move', 'h2');
  const r = await ferry<MoveJson>(['move', 'pc-move', '--to', 'h2', '--postcopy', '--json']);
  t.diagnostic(fmt(r.json));
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(r.json.status, 'completed', r.stdout);
  assert.equal(r.json.postcopy, true, 'the move needed post-copy to finish');
  await assertRunsOnce(LAB, 'pc-move', 'h2');
  await assertGuestIntact(LAB, b.ip, b.guest);
  assert.equal((await guestGet(LAB, b.ip, '/verify')).trim(), 'ok');
  assert.equal((await ferry(['vm', 'delete', 'pc-move'])).code, 0);
}));
