import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FerryError } from '../errors/index.js';
import { openDb } from '../util/index.js';
import { HostMaintenance, type DrainRecord, type MaintenanceDeps } from './maintenance.js';

/** A host in a cluster whose drain record lives in a fake etcd (one variable). */
function clusterHost(db = openDb(':memory:')) {
  let rec: DrainRecord | undefined;
  const calls: string[] = [];
  const events: unknown[] = [];
  const m = new HostMaintenance({
    db, host: 'h2', log: pino({ level: 'silent' }), emit: (_t: string, d: unknown) => events.push(d),
    peers: () => [], inv: { list: () => [] }, jobs: { activeFor: () => undefined },
    // A resume during a run stops it and waits for its end; this fake etcd's run ends only by hand.
    stopDrainMs: 300,
    cluster: {
      active: () => true,
      request: async (r: DrainRecord) => {
        if (rec?.running) throw new FerryError('DRAIN_IN_PROGRESS', 'A drain runs.');
        calls.push('request');
        rec = r;
        return r;
      },
      release: async () => {
        if (rec?.running) throw new FerryError('DRAIN_IN_PROGRESS', 'A drain runs.');
        calls.push('release');
        rec = undefined;
      },
    },
  } as unknown as MaintenanceDeps);
  return { m, calls, events, record: () => rec, setRecord: (r: DrainRecord | undefined) => { rec = r; } };
}

test('in a cluster, drain records the run for the manager and the host is draining at once; its copy follows the record', async () => {
  const c = clusterHost();
  const v = await c.m.drain({ force: true });
  assert.deepEqual(c.calls, ['request']);
  assert.equal(v.state, 'draining');
  assert.equal(v.running?.operation, 'drain');
  assert.equal(c.record()?.running?.force, true);
  assert.deepEqual(c.record()?.vms, []);
  assert.throws(() => c.m.admit('new VMs'), (e: FerryError) => e.code === 'HOST_IN_MAINTENANCE');
  await assert.rejects(c.m.drain({ force: false }), (e: FerryError) => e.code === 'DRAIN_IN_PROGRESS');
  await assert.rejects(c.m.resume({ failback: false }), (e: FerryError) => e.code === 'DRAIN_IN_PROGRESS');

  // The manager ends the run: one VM moved, one blocked; the host copies it on its next tick.
  const rec = c.record();
  assert.ok(rec?.running);
  const error = { code: 'DRAIN_INCOMPLETE' as const, message: '1 VM could not leave h2.' };
  const ended: DrainRecord = {
    ...rec, running: null, lastRun: { ...rec.running, endedAt: new Date().toISOString(), error },
    vms: [
      { vm: 'b', destination: null, status: 'blocked', jobId: null, error: { code: 'INSUFFICIENT_MEMORY', message: 'No room.' }, updatedAt: 't2' },
      { vm: 'a', destination: 'h3', status: 'moved', jobId: 'j1', error: null, updatedAt: 't1' },
    ],
  };
  c.setRecord(ended);
  c.m.mirror(ended);
  const after = c.m.view();
  assert.equal(after.running, null);
  assert.deepEqual(after.lastRun?.error, error);
  assert.deepEqual(after.vms.map((e) => [e.vm, e.status, e.destination]), [['a', 'moved', 'h3'], ['b', 'blocked', null]]);
  assert.equal(c.events.length, 2, 'one event for the request, one for the end');
  c.m.mirror(ended);
  assert.equal(c.events.length, 2, 'no event when nothing changed');

  // Draining again continues with the ledger; resume removes the record and puts the host back in service.
  const again = await c.m.drain({ force: false });
  assert.equal(c.record()?.vms.length, 2);
  assert.equal(again.vms.length, 2);
  c.setRecord({ ...ended, state: 'drained' });
  c.m.mirror(c.record());
  const back = await c.m.resume({ failback: false });
  assert.deepEqual(c.calls, ['request', 'request', 'release']);
  assert.equal(back.state, 'active');
  assert.equal(c.record(), undefined);
  assert.equal(back.lastRun?.error?.code, 'DRAIN_INCOMPLETE', 'the drain stays the last run while the resume runs');
});

test('in a cluster, an agent restarted mid-drain shows the run from its last copy before its first read of etcd', async () => {
  const db = openDb(':memory:');
  const before = clusterHost(db);
  await before.m.drain({ force: false });
  const rec = before.record();
  assert.ok(rec?.running);
  before.m.mirror(rec);
  // The agent restarts: a new HostMaintenance over the same SQLite file, no tick yet.
  const after = clusterHost(db);
  const v = after.m.view();
  assert.equal(v.state, 'draining');
  assert.equal(v.running?.operation, 'drain', 'a poller still sees the run');
  assert.equal(v.running?.startedAt, rec.running.startedAt);
  await assert.rejects(after.m.resume({ failback: false }), (e: FerryError) => e.code === 'DRAIN_IN_PROGRESS');
  // Its first read of etcd: the record is gone (resumed while the agent was down).
  after.m.mirror(undefined);
  assert.equal(after.m.view().running, null);
  assert.equal(clusterHost(db).m.view().running, null, 'and that is kept too');
});
