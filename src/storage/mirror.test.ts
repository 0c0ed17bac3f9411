import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeQmp, type BlockInfo, type BlockJobInfo } from '../qmp/index.js';
import { DiskMirrors } from './mirror.js';

/** A QEMU with one disk whose mirror job is listed, but which refuses to cancel it (it just ended on its own). */
function rig(): FakeQmp {
  const qmp = new FakeQmp();
  qmp.handle('query-block', [{ device: '', qdev: '/machine/peripheral/vd0/virtio-backend', inserted: { 'node-name': 'disk0', file: '/p/a.qcow2' } }] as unknown as BlockInfo[]);
  qmp.handle('blockdev-add', {});
  qmp.handle('blockdev-del', {});
  qmp.handle('yank', {});
  qmp.handle('blockdev-mirror', {});
  qmp.handle('query-block-jobs', [{
    type: 'mirror', device: 't-mirror0', len: 1, offset: 1, busy: false, paused: false, speed: 0, 'io-status': 'ok', ready: true,
    status: 'ready', 'auto-finalize': true, 'auto-dismiss': true,
  }] as BlockJobInfo[]);
  qmp.handle('block-job-cancel', () => { throw FakeQmp.error('GenericError', "Job 't-mirror0' not found"); });
  return qmp;
}

/** Runs `fn`, then waits `ms` more and returns every rejection nobody handled meanwhile. */
async function unhandledDuring(fn: () => Promise<unknown>, ms: number): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (e: unknown): void => { seen.push(e); };
  process.on('unhandledRejection', on);
  try {
    await fn().catch(() => undefined);
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    process.off('unhandledRejection', on);
  }
  return seen;
}

test('DiskMirrors: a cancel QEMU refuses fails settle() with its error and leaves no wait to reject later', async () => {
  const qmp = rig();
  const m = new DiskMirrors(qmp, 't');
  await m.start([{ index: 0, target: { kind: 'file', path: '/p/b.qcow2' } }]);
  let err: unknown;
  const seen = await unhandledDuring(() => m.settle(50).catch((e: unknown) => { err = e; }), 200);
  assert.match(String((err as Error | undefined)?.message), /not found/);
  assert.deepEqual(seen, [], 'the event wait behind the refused command rejected unheard (it ends ferryd)');
});

test('DiskMirrors: abort() of a job that ended on its own never throws and leaves no wait behind', async () => {
  const qmp = rig();
  const m = new DiskMirrors(qmp, 't');
  await m.start([{ index: 0, target: { kind: 'file', path: '/p/b.qcow2' } }]);
  const seen = await unhandledDuring(() => m.abort(), 100);
  assert.deepEqual(seen, []);
  assert.ok(qmp.calls.some((c) => c.command === 'blockdev-del'), 'the target node is removed all the same');
});
