import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failbacks, failedStarts, orphans, placeRestarts, stranded, triedHosts } from './placement.js';
import type { HaRecord, MemberRecord } from './model.js';

/** What the manager does with the VMs whose start failed on a live owner. */
const placeFailedStarts = (rs: HaRecord[], alive: Set<string>, ms: MemberRecord[], groups: Map<string, Set<string>>) =>
  placeRestarts(failedStarts(rs, alive), ms, groups, triedHosts);

const member = (name: string, freeMemoryMiB: number, maintenance = false): MemberRecord =>
  ({ name, url: `https://${name}`, memoryMiB: 4096, freeMemoryMiB, cpus: 2, maintenance, updatedAt: '' });
const vm = (name: string, o: Partial<HaRecord> & { mem?: number; group?: string } = {}): HaRecord => ({
  name, owner: 'h1', home: 'h1', priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '',
  spec: { name, uuid: name, memoryMiB: o.mem ?? 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '', ip: '', prefixLength: 16, disks: [], ha: true, ...(o.group ? { group: o.group } : {}) },
  ...o,
});

describe('orphans', () => {
  it('are the restartable VMs of hosts without a lease', () => {
    const rs = [vm('a'), vm('b', { owner: 'h2' }), vm('c', { restart: 'never' }), vm('d', { state: 'stopped' }), vm('e', { state: 'failed' })];
    assert.deepEqual(orphans(rs, new Set(['h2'])).map((r) => r.name), ['a', 'e']);
  });
});

describe('placeRestarts', () => {
  const cases: { name: string; vms: HaRecord[]; members: MemberRecord[]; groups?: [string, string[]][]; prefer?: string; want: (string | null)[] }[] = [
    { name: 'most free memory wins', vms: [vm('a')], members: [member('h2', 500), member('h3', 900)], want: ['h3'] },
    { name: 'placed memory counts at once', vms: [vm('a', { mem: 600 }), vm('b', { mem: 600 })], members: [member('h2', 1000), member('h3', 700)], want: ['h2', 'h3'] },
    { name: 'higher priority first when room is short', vms: [vm('low', { mem: 600 }), vm('high', { mem: 600, priority: 10 })], members: [member('h2', 700)], want: [null, 'h2'] },
    { name: 'hosts in maintenance take nothing', vms: [vm('a')], members: [member('h2', 900, true)], want: [null] },
    { name: 'anti-affinity beats free memory', vms: [vm('a', { group: 'db' })], members: [member('h2', 900), member('h3', 300)], groups: [['h2', ['db']]], want: ['h3'] },
    { name: 'anti-affinity yields when only one host fits', vms: [vm('a', { group: 'db' })], members: [member('h2', 900), member('h3', 100)], groups: [['h2', ['db']]], want: ['h2'] },
    { name: 'two of one group spread', vms: [vm('a', { group: 'web' }), vm('b', { group: 'web' })], members: [member('h2', 2000), member('h3', 1000)], want: ['h2', 'h3'] },
    { name: 'a preferred host beats more free memory', vms: [vm('a')], members: [member('h2', 300), member('h3', 900)], prefer: 'h2', want: ['h2'] },
    { name: 'a preferred host that holds the group loses to one that does not', vms: [vm('a', { group: 'db' })], members: [member('h2', 900), member('h3', 300)], groups: [['h2', ['db']]], prefer: 'h2', want: ['h3'] },
    { name: 'a preferred host wins when every host holds the group', vms: [vm('a', { group: 'db' })], members: [member('h2', 300), member('h3', 900)], groups: [['h2', ['db']], ['h3', ['db']]], prefer: 'h2', want: ['h2'] },
    { name: 'a preferred host without room is passed over', vms: [vm('a', { mem: 600 })], members: [member('h2', 500), member('h3', 900)], prefer: 'h2', want: ['h3'] },
    { name: 'a preferred host in maintenance is passed over', vms: [vm('a')], members: [member('h2', 900, true), member('h3', 300)], prefer: 'h2', want: ['h3'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = placeRestarts(c.vms, c.members, new Map((c.groups ?? []).map(([h, g]) => [h, new Set(g)])), undefined, () => c.prefer);
      const byVm = new Map(got.map((p) => [p.vm, p.to]));
      assert.deepEqual(c.vms.map((v) => byVm.get(v.name)), c.want);
    });
  }
  it('says why a VM found no host', () => {
    const [p] = placeRestarts([vm('a', { mem: 2048 })], [member('h2', 100)], new Map());
    assert.ok(p && p.to === null && /no live host outside maintenance has 2048 MiB free/.test(p.reason));
  });
});

describe('failbacks', () => {
  it('bring running VMs home once the home host is back and not in maintenance', () => {
    const rs = [vm('a', { owner: 'h2', failback: 'immediate' }), vm('b', { owner: 'h2' }), vm('c', { owner: 'h2', failback: 'immediate', home: 'h3' })];
    assert.deepEqual(failbacks(rs, [member('h1', 1000), member('h2', 1000), member('h3', 1000, true)]).map((r) => r.name), ['a']);
  });
});

describe('placeFailedStarts', () => {
  const members = [member('h1', 4000), member('h2', 900), member('h3', 500)];
  const alive = new Set(['h1', 'h2', 'h3']);
  const decide = (rs: HaRecord[], ms = members): (string | null)[] => placeFailedStarts(rs, alive, ms, new Map()).map((p) => p.to);
  it('a start that failed on its live owner goes to the best host where none failed', () => {
    assert.deepEqual(decide([vm('a', { state: 'failed', failedOn: ['h1'] })]), ['h2']);
    assert.deepEqual(decide([vm('a', { state: 'failed', owner: 'h2', failedOn: ['h1', 'h2'] })]), ['h3']);
  });
  it('leaves the others alone: running, stopped, never restarted, failed for want of a host (owner dead), or failed elsewhere', () => {
    assert.deepEqual(decide([
      vm('run', { failedOn: ['h1'] }), vm('stop', { state: 'stopped', failedOn: ['h1'] }), vm('never', { state: 'failed', restart: 'never', failedOn: ['h1'] }),
      vm('orphan', { state: 'failed', owner: 'h9' }), vm('other', { state: 'failed', failedOn: ['h2'] }),
    ]), []);
  });
  it('no host left: stays failed, saying where it failed', () => {
    const [p] = placeFailedStarts([vm('a', { state: 'failed', failedOn: ['h1', 'h2', 'h3'] })], alive, members, new Map());
    assert.equal(p?.to, null);
    assert.match(p && p.to === null ? p.reason : '', /start failed on h1, h2, h3; no live host outside maintenance among the others/);
    assert.deepEqual(decide([vm('big', { state: 'failed', failedOn: ['h1'], mem: 2000 })]), [null], 'the others lack the room');
  });
});

describe('placeFailedStarts counts what it places', () => {
  it('two failed VMs do not both take the one host with room for one', () => {
    const ms = [member('h1', 4000), member('h2', 1000), member('h3', 700)];
    const rs = [vm('a', { state: 'failed', failedOn: ['h1'], mem: 600 }), vm('b', { state: 'failed', failedOn: ['h1'], mem: 600 })];
    assert.deepEqual(placeFailedStarts(rs, new Set(['h1', 'h2', 'h3']), ms, new Map()).map((p) => p.to), ['h2', 'h3']);
  });
});

describe('stranded', () => {
  it('are the failed, restartable VMs of live owners that nothing placed this tick', () => {
    const rs = [
      vm('a', { state: 'failed', failedOn: ['h1', 'h2'] }), vm('room', { state: 'failed' }), vm('placed', { state: 'failed', failedOn: ['h1'] }),
      vm('away', { state: 'failed', owner: 'h9' }), vm('never', { state: 'failed', restart: 'never' }), vm('ok'),
    ];
    assert.deepEqual(stranded(rs, new Set(['h1', 'h2']), new Set(['placed'])).map((r) => r.name), ['a', 'room']);
  });
});
