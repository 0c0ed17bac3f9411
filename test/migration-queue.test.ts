// Integration: the move queue, and migration networks. With h1's default maxMigrations of 2, a third and a fourth move
// wait `queued` with their positions; cancelling a queued move ends it without touching the VM;
// the third starts when a slot frees and completes. Links shaped to 100 Mbit/s so that moves last
// a few seconds each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { VmView } from '../src/agent/views.js';
import { MIGRATION_NETWORK } from '../src/lab/plan.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRunsOnce, guestState, waitGuest } from './support/invariants.js';

const suite = labSuite('mq', { lab: { bandwidth: '100mbit' } });
const LAB = suite.name;
const { track } = suite;

interface JobJson { id: string; vm: string; status: string; phase: string; queuePosition?: number; totalMs: number | null; error?: { code: string } }

async function createVm(name: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

async function moveNoWait(name: string): Promise<JobJson> {
  const r = await ferry<{ id: string; status: string }>(['move', name, '--to', 'h2', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return show(r.json.id);
}

async function show(id: string): Promise<JobJson> {
  const r = await ferry<JobJson>(['migration', 'show', id, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

test('over maxMigrations a move waits queued, a queued move cancels cleanly, the queue drains', track(async (t) => {
  const vms = [];
  for (const n of ['qa', 'qb', 'qc', 'qd']) vms.push(await createVm(n));
  const d = vms[3];
  assert.ok(d);
  const dBefore = await guestState(LAB, d.ip);
  const a = await moveNoWait('qa');
  const b = await moveNoWait('qb');
  const c = await moveNoWait('qc');
  const dj = await moveNoWait('qd');
  t.diagnostic(`submitted: qa ${a.status}, qb ${b.status}, qc ${c.status} #${c.queuePosition}, qd ${dj.status} #${dj.queuePosition}`);
  assert.notEqual(a.status, 'queued');
  assert.notEqual(b.status, 'queued');
  assert.equal(c.status, 'queued', 'the third move waits for a slot');
  assert.equal(c.queuePosition, 1);
  assert.equal(dj.status, 'queued');
  assert.equal(dj.queuePosition, 2);
  const list = await ferry<JobJson[]>(['migration', 'list', '--json']);
  assert.equal(list.json.filter((j) => j.status === 'queued').length, 2, 'the list shows both waiting moves');

  const cancelled = await ferry<JobJson>(['migration', 'cancel', dj.id, '--json']);
  assert.equal(cancelled.code, 0, cancelled.stderr || cancelled.stdout);
  assert.equal((await show(dj.id)).status, 'cancelled');
  await assertRunsOnce(LAB, 'qd', 'h1');
  await assertGuestIntact(LAB, d.ip, dBefore);

  const ended = async (id: string): Promise<JobJson> => waitFor(`job ${id} ended`, async () => {
    const j = await show(id);
    return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, 240_000);
  const ends = await Promise.all([a, b, c].map((j) => ended(j.id)));
  for (const e of ends) t.diagnostic(`${e.vm}: ${e.status} in ${e.totalMs} ms${e.error ? ` (${e.error.code})` : ''}`);
  assert.deepEqual(ends.map((e) => e.status), ['completed', 'completed', 'completed']);
  for (const n of ['qa', 'qb', 'qc']) await assertRunsOnce(LAB, n, 'h2');
  for (const n of ['qa', 'qb', 'qc', 'qd']) assert.equal((await ferry(['vm', 'delete', n])).code, 0);
}));

/** Bytes host `host` received on `dev` so far (its namespace's counters). */
function rxBytes(host: string, dev: string): number {
  const out = execFileSync('ip', ['-n', `${LAB}-${host}`, '-s', '-j', 'link', 'show', 'dev', dev], { encoding: 'utf8' });
  const [link] = JSON.parse(out) as { stats64: { rx: { bytes: number } } }[];
  return link?.stats64.rx.bytes ?? 0;
}

test('with a migration network set on both hosts, the memory stream crosses it, not the lab network', track(async (t) => {
  for (const h of ['h1', 'h2']) {
    const r = await ferry(['host', 'settings', h, '--migration-network', `${MIGRATION_NETWORK}:1`, '--json']);
    assert.equal(r.code, 0, r.stderr || r.stdout);
  }
  try {
    const vm = await createVm('qnet');
    const before = { mig: rxBytes('h2', 'mig0'), lab: rxBytes('h2', 'eth0') };
    const r = await ferry<JobJson & { transferredBytes: number }>(['move', 'qnet', '--to', 'h2', '--json']);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    const mig = rxBytes('h2', 'mig0') - before.mig;
    const lab = rxBytes('h2', 'eth0') - before.lab;
    t.diagnostic(`moved ${(r.json.transferredBytes / 1e6).toFixed(1)} MB; h2 received ${(mig / 1e6).toFixed(1)} MB on the migration network, ${(lab / 1e6).toFixed(1)} MB on the lab network`);
    assert.ok(mig >= r.json.transferredBytes * 0.9, 'the stream came over the migration network');
    assert.ok(lab < r.json.transferredBytes * 0.2, 'little else crossed the lab network');
    await assertRunsOnce(LAB, 'qnet', 'h2');
    assert.equal((await guestGet(LAB, vm.ip, '/verify')).trim(), 'ok');
    assert.equal((await ferry(['vm', 'delete', 'qnet'])).code, 0);
  } finally {
    for (const h of ['h1', 'h2']) await ferry(['host', 'settings', h, '--any-network', '--json']);
  }
}));
