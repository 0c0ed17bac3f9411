import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainHost, MaintenanceStore, type DrainDeps, type HostVm } from '../host/index.js';
import { openDb } from '../util/index.js';
import { RecordLedger, RecordWriter } from './drain-ledger.js';
import type { DrainRecord } from './maintenance.js';

const quiet = { info: () => undefined, warn: () => undefined };
const record = (): DrainRecord => ({ host: 'h1', state: 'draining', since: null, force: false, running: null, lastRun: null, vms: [] });
const strip = <T extends { updatedAt?: string; since?: string | null }>(x: T): Omit<T, 'updatedAt' | 'since'> => {
  const { updatedAt: _u, since: _s, ...rest } = x;
  return rest;
};

test('RecordLedger keeps state and ledger as MaintenanceStore does', () => {
  const store = new MaintenanceStore(openDb(':memory:'));
  let changes = 0;
  const ledger = new RecordLedger({ ...record(), state: 'active' }, () => { changes++; });
  for (const l of [store, ledger]) {
    l.setState('draining', true);
    l.put({ vm: 'b', destination: 'h2', status: 'moving', jobId: null, error: null });
    l.put({ vm: 'a', destination: null, status: 'blocked', jobId: null, error: { code: 'INSUFFICIENT_MEMORY', message: 'No room.' } });
    l.put({ vm: 'b', destination: 'h2', status: 'moved', jobId: 'j1', error: null });
    l.setState('drained', true);
  }
  assert.deepEqual(strip(ledger.get()), strip(store.get()));
  assert.ok(ledger.get().since);
  assert.deepEqual(ledger.entries().map(strip), store.entries().map(strip));
  assert.equal(changes, 5);
  ledger.clear();
  store.clear();
  assert.deepEqual(ledger.entries(), store.entries());
});

/** h1 being drained, h2 taking VMs; `hang` makes that VM's move never end (the manager running it dies). */
function world(vms: string[], rec: DrainRecord, hang?: string) {
  const here = new Map(vms.map((n): [string, HostVm] => [n, { name: n, memoryMiB: 128, cpus: 1, state: 'running' }]));
  const moves: string[] = [];
  const ledger = new RecordLedger(rec, () => undefined);
  const deps: DrainDeps = {
    host: 'h1', ledger, log: quiet,
    vms: async () => [...here.values()],
    hosts: async () => [{ name: 'h2', freeMemoryMiB: 4096, cpus: 4, committedCpus: 0, groups: [], maintenance: null, reachable: true }],
    compare: async () => [],
    move: async (vm, host, onJob) => {
      moves.push(`${vm}→${host}`);
      onJob(`job-${vm}`);
      if (vm === hang) return new Promise<void>(() => undefined);
      here.delete(vm);
    },
    stop: async () => undefined,
  };
  return { here, moves, deps };
}

test('a cluster drain run again from its record after the manager died mid-drain: moves nothing twice and ends drained', async () => {
  const rec = record();
  const first = world(['a', 'b'], rec, 'b');
  void drainHost(first.deps, { force: false });
  await new Promise((r) => setTimeout(r, 20));
  // The manager dies here: etcd holds a moved, b moving with its job; b's move completes on h1 without it.
  const saved = JSON.parse(JSON.stringify(rec)) as DrainRecord;
  assert.deepEqual(saved.vms.map((e) => [e.vm, e.status, e.jobId]).sort(), [['a', 'moved', 'job-a'], ['b', 'moving', 'job-b']]);
  const second = world([], saved);
  const out = await drainHost(second.deps, { force: false });
  assert.equal(out.state, 'drained');
  assert.deepEqual(second.moves, [], 'the second manager starts no move');
  assert.deepEqual(saved.vms.map((e) => [e.vm, e.status, e.destination]).sort(), [['a', 'moved', 'h2'], ['b', 'moved', 'h2']]);
});

test('RecordWriter writes the latest record one write at a time, retries when etcd is away, and stops once deposed', async () => {
  const rec = record();
  const written: string[] = [];
  let answer: boolean | 'throw' = 'throw';
  let release: () => void = () => undefined;
  const w = new RecordWriter(rec, async (r) => {
    await new Promise<void>((res) => { release = res; setTimeout(res, 5); });
    if (answer === 'throw') { answer = true; throw new Error('etcd away'); }
    written.push(r.state);
    return answer;
  }, () => true, quiet, 1);
  rec.state = 'drained';
  w.changed();
  rec.state = 'draining';
  w.changed();
  rec.state = 'active';
  w.changed();
  release();
  await w.flushed();
  assert.deepEqual(written, ['active'], 'one failed write, then the latest state once');
  answer = false;
  rec.state = 'drained';
  w.changed();
  await w.flushed();
  assert.equal(w.deposed, true);
  w.changed();
  await w.flushed();
  assert.deepEqual(written, ['active', 'drained'], 'nothing more after the guard failed');
});
