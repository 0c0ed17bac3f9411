import assert from 'node:assert/strict';
import { test } from 'node:test';
import { managerTick, RETRY_ALL_AFTER_MS, type ManagerMemory } from './manager.js';
import type { HaEntry, HaRecord, MemberRecord } from './model.js';
import type { ClusterStore } from './store.js';

const member = (name: string): MemberRecord => ({ name, url: `https://${name}`, memoryMiB: 4096, freeMemoryMiB: 2048, cpus: 2, maintenance: false, updatedAt: '' });
const rec = (o: Partial<HaRecord>): HaRecord => ({
  name: 'v', owner: 'h2', home: 'h1', priority: 0, restart: 'always', failback: 'none', state: 'failed', restarts: 1, updatedAt: '',
  spec: { name: 'v', uuid: 'v', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '', ip: '', prefixLength: 16, disks: [], ha: true },
  ...o,
});

/** A store holding one record in memory: writes succeed at the revision read, as etcd's guarded ones do. */
function fakeStore(r: HaRecord): { store: ClusterStore; entries: () => HaEntry[]; writes: HaRecord[] } {
  let cur = { rec: r, rev: '1' };
  const writes: HaRecord[] = [];
  const store = {
    config: { fenceMarginSec: 5 },
    members: () => Promise.resolve([member('h1'), member('h2')]),
    updateHa: (next: HaRecord, rev: string) => {
      if (rev !== cur.rev) return Promise.resolve(false);
      writes.push(next);
      cur = { rec: next, rev: String(Number(rev) + 1) };
      return Promise.resolve(true);
    },
  } as unknown as ClusterStore;
  return { store, entries: () => [cur], writes };
}

test('managerTick: a VM whose starts failed on every live host is tried again on its owner after a minute, the list forgotten', async () => {
  const f = fakeStore(rec({ failedOn: ['h1', 'h2'], note: 'start on h2 failed: no disk' }));
  const mem: ManagerMemory = { deadSince: new Map(), electedAt: 1, aliveSince: new Map(), strandedSince: new Map() };
  const t0 = 1_000_000;
  await managerTick(f.store, f.entries(), mem, t0);
  assert.equal(f.writes.length, 1, 'the note says why it stays failed');
  assert.equal(f.writes[0]?.state, 'failed');
  assert.match(f.writes[0]?.note ?? '', /its start failed on h1, h2/);
  await managerTick(f.store, f.entries(), mem, t0 + RETRY_ALL_AFTER_MS - 1);
  assert.equal(f.writes.length, 1, 'nothing before the minute is up');
  await managerTick(f.store, f.entries(), mem, t0 + RETRY_ALL_AFTER_MS);
  const again = f.writes[1];
  assert.equal(again?.state, 'placing', 'its owner starts it again');
  assert.equal(again?.owner, 'h2');
  assert.equal(again?.failedOn, undefined, 'every host may be tried again');
});

test('managerTick: a start that failed on its owner goes to another live host at once', async () => {
  const f = fakeStore(rec({ failedOn: ['h2'] }));
  await managerTick(f.store, f.entries(), { deadSince: new Map(), electedAt: 1, aliveSince: new Map(), strandedSince: new Map() }, 1_000_000);
  assert.equal(f.writes[0]?.owner, 'h1');
  assert.equal(f.writes[0]?.state, 'placing');
  assert.equal(f.writes[0]?.restarts, 2);
});
