import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDb } from '../util/index.js';
import { FerryError } from '../errors/index.js';
import { drainHost, type DrainDeps, type HostVm } from './drain.js';
import { resumeHost, type ResumeDeps } from './resume.js';
import { MaintenanceStore } from './store.js';
import type { PlacementHost } from './placement.js';

const quiet = { info: () => undefined, warn: () => undefined };

/** A two-host world in memory: h1 (drained) and h2; moves and stops change where VMs are. */
function world(vms: HostVm[], h2FreeMiB: number, opts: { failMove?: string; failCode?: 'MIGRATION_FAILED' | 'MIGRATION_CANCELLED' } = {}) {
  const store = new MaintenanceStore(openDb(':memory:'));
  const here = new Map(vms.map((v) => [v.name, { ...v }]));
  const there = new Map<string, HostVm>();
  const moves: string[] = [];
  const h2 = (): PlacementHost => ({
    name: 'h2', freeMemoryMiB: h2FreeMiB - [...there.values()].reduce((a, v) => a + v.memoryMiB, 0), cpus: 4, committedCpus: 0, groups: [], maintenance: null, reachable: true,
  });
  const deps: DrainDeps = {
    host: 'h1', ledger: store, log: quiet,
    vms: async () => [...here.values()],
    hosts: async () => [h2()],
    compare: async () => [],
    move: async (vm, host, onJob) => {
      onJob(`job-${vm}`);
      moves.push(`${vm}→${host}`);
      if (vm === opts.failMove) throw new FerryError(opts.failCode ?? 'MIGRATION_FAILED', `The move of "${vm}" failed.`);
      const v = here.get(vm);
      if (!v) throw new FerryError('VM_NOT_FOUND', 'gone.');
      here.delete(vm);
      there.set(vm, v);
    },
    stop: async (vm) => { const v = here.get(vm); if (v) v.state = 'stopped'; },
  };
  const resumeDeps: ResumeDeps = {
    host: 'h1', ledger: store, log: quiet,
    start: async (vm) => { const v = here.get(vm); if (v) v.state = 'running'; },
    locate: async (vm) => (here.has(vm) ? 'h1' : there.has(vm) ? 'h2' : null),
    moveBack: async (vm, _from, onJob) => { onJob(`back-${vm}`); const v = there.get(vm); if (v) { there.delete(vm); here.set(vm, v); } },
  };
  return { store, here, there, moves, deps, resumeDeps };
}

const vm = (name: string, memoryMiB = 256, state = 'running'): HostVm => ({ name, memoryMiB, cpus: 1, state });

test('drain: movable VMs leave, the one too big is blocked, the host stays draining; force stops it and the host is drained', async () => {
  const w = world([vm('a'), vm('b'), vm('big', 4096), vm('off', 256, 'stopped')], 1024);
  const out = await drainHost(w.deps, { force: false });
  assert.equal(out.state, 'draining');
  assert.deepEqual(out.blocked.map((e) => [e.vm, e.error?.code]), [['big', 'INSUFFICIENT_MEMORY']]);
  assert.deepEqual(w.store.entries().map((e) => [e.vm, e.status, e.destination, e.jobId]),
    [['a', 'moved', 'h2', 'job-a'], ['b', 'moved', 'h2', 'job-b'], ['big', 'blocked', null, null]]);
  assert.deepEqual(w.moves.sort(), ['a→h2', 'b→h2'], 'a stopped VM does not move');
  const forced = await drainHost(w.deps, { force: true });
  assert.equal(forced.state, 'drained');
  assert.equal(w.store.get().state, 'drained');
  assert.deepEqual(w.store.entries().map((e) => [e.vm, e.status]), [['a', 'moved'], ['b', 'moved'], ['big', 'stopped']]);
  assert.equal(w.moves.length, 2, 'the second run moves nothing that already left');
});

test('drain: a failed move blocks its VM with the move\'s code', async () => {
  const w = world([vm('a'), vm('b')], 4096, { failMove: 'b' });
  const out = await drainHost(w.deps, { force: false });
  assert.equal(out.state, 'draining');
  assert.deepEqual(out.blocked.map((e) => [e.vm, e.status, e.destination, e.error?.code]), [['b', 'blocked', 'h2', 'MIGRATION_FAILED']]);
});

test('drain after an agent restart: an entry left moving whose VM is gone counts as moved; the rest is drained', async () => {
  const w = world([vm('b')], 4096);
  w.store.setState('draining');
  w.store.put({ vm: 'a', destination: 'h2', status: 'moving', jobId: 'job-a', error: null });
  const out = await drainHost(w.deps, { force: false });
  assert.equal(out.state, 'drained');
  assert.deepEqual(w.store.entries().map((e) => [e.vm, e.status]), [['a', 'moved'], ['b', 'moved']]);
});

test('resume with failback: the stopped VM starts, the moved ones come back, the host is active', async () => {
  const w = world([vm('a'), vm('big', 4096)], 1024);
  await drainHost(w.deps, { force: true });
  assert.equal(w.store.get().state, 'drained');
  const out = await resumeHost(w.resumeDeps, { failback: true });
  assert.equal(w.store.get().state, 'active');
  assert.deepEqual(out.failed, []);
  assert.deepEqual(w.store.entries().map((e) => [e.vm, e.status]), [['a', 'returned'], ['big', 'returned']]);
  assert.equal(w.here.get('big')?.state, 'running');
  assert.ok(w.here.has('a') && !w.there.has('a'));
});

test('a new drain of a host in service forgets the ledger of the last maintenance', async () => {
  const w = world([vm('a')], 4096);
  w.store.put({ vm: 'old', destination: 'h2', status: 'returned', jobId: null, error: null });
  await drainHost(w.deps, { force: false });
  assert.deepEqual(w.store.entries().map((e) => e.vm), ['a']);
});

test('drain: a fatal error (a manager that lost its post) ends the run at once; nothing is blocked and, even with force, nothing stops', async () => {
  const w = world([vm('a'), vm('big', 4096)], 1024);
  const stopped: string[] = [];
  const deps: DrainDeps = {
    ...w.deps,
    fatal: (e) => e.code === 'NOT_CLUSTER_MANAGER',
    move: async () => { throw new FerryError('NOT_CLUSTER_MANAGER', 'h1 no longer manages the cluster.'); },
    stop: async (v) => { stopped.push(v); },
  };
  await assert.rejects(drainHost(deps, { force: true }), { code: 'NOT_CLUSTER_MANAGER' });
  assert.deepEqual(stopped, [], 'no VM is stopped by a run that ended fatally');
  assert.deepEqual(w.store.entries().filter((e) => e.vm === 'a').map((e) => e.status), ['moving'], 'a stays moving for the next run to settle');
  assert.equal(w.here.get('a')?.state, 'running');
});

test('drain --force stops a VM whose move failed, but not one whose move an operator cancelled (a resume during the drain): that one stays running here', async () => {
  for (const [code, end] of [['MIGRATION_FAILED', 'stopped'], ['MIGRATION_CANCELLED', 'running']] as const) {
    const w = world([vm('a'), vm('c')], 4096, { failMove: 'c', failCode: code });
    const out = await drainHost(w.deps, { force: true });
    assert.equal(w.here.get('c')?.state, end, code);
    assert.equal(out.state, end === 'stopped' ? 'drained' : 'draining', code);
    assert.deepEqual(w.store.entries().map((e) => [e.vm, e.status]), [['a', 'moved'], ['c', end === 'stopped' ? 'stopped' : 'blocked']], code);
  }
});
