// The perform loop around QEMU's switch-over, on a FakeQmp: a cancel while a storage move's disks
// settle keeps QEMU from being told to continue; once it was told, the move is no longer cancelled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { openDb } from '../util/db.js';
import { FerryError } from '../errors/index.js';
import { FakeQmp, type MigrationStatus } from '../qmp/index.js';
import { DEFAULT_POLICY, JobStore } from './index.js';
import { perform, type PerformInput } from './perform.js';

/** A source QEMU that reaches pre-switchover right after `migrate`, then reports `status()`. */
function rig(status: () => MigrationStatus): FakeQmp {
  const qmp = new FakeQmp();
  qmp.handle('migrate-set-capabilities', {});
  qmp.handle('migrate-set-parameters', {});
  qmp.handle('migrate', () => {
    setTimeout(() => qmp.emit('MIGRATION', { status: 'pre-switchover' }), 5);
    return {};
  });
  qmp.handle('migrate-continue', {});
  qmp.handle('query-migrate', () => ({ status: status() }));
  return qmp;
}

function input(qmp: FakeQmp, ctl: AbortController, more: Partial<PerformInput> = {}): PerformInput {
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
  return { jobId: 'm1', qmp, uri: 'tcp:10.0.0.2:4444', policy: DEFAULT_POLICY, memoryBytes: 256 * 1024 * 1024, jobs, log: pino({ level: 'silent' }), signal: ctl.signal, ...more };
}

test('a cancel while the disks settle at pre-switchover: QEMU is never told to continue, and the move ends ABORTED', async () => {
  const qmp = rig(() => 'pre-switchover');
  const ctl = new AbortController();
  let settled: () => void = () => undefined;
  let continued = false;
  const run = perform(input(qmp, ctl, {
    beforeContinue: () => new Promise<void>((r) => { settled = r; ctl.abort(); }),
    onContinue: () => { continued = true; },
  }));
  await assert.rejects(run, (e: FerryError) => e.code === 'ABORTED');
  settled();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(qmp.calls.filter((c) => c.command === 'migrate-continue').length, 0);
  assert.equal(continued, false);
});

test('an abort after QEMU was told to continue is ignored: the stream completes', async () => {
  let status: MigrationStatus = 'pre-switchover';
  const qmp = rig(() => status);
  const ctl = new AbortController();
  let told = 0;
  const run = perform(input(qmp, ctl, {
    onContinue: () => {
      told++;
      ctl.abort();
      setTimeout(() => { status = 'completed'; }, 30);
    },
  }));
  const info = await run;
  assert.equal(info.status, 'completed');
  assert.equal(told, 1);
  assert.equal(qmp.calls.filter((c) => c.command === 'migrate-continue').length, 1);
});
