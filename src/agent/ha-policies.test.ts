// The host's memory of its HA VMs' policies, in SQLite: what a VM registered again after a loss of etcd's data gets back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { newHaRecord, type HaRecord } from '../cluster/index.js';
import { openDb } from '../util/index.js';
import type { VmSpec } from '../vm/index.js';
import { HaPolicyMemory } from './ha-policies.js';

const spec = (name: string): VmSpec => ({ name, uuid: `uuid-${name}`, memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'q35', mac: '', ip: '', prefixLength: 16, disks: [], ha: true });
const rec = (name: string, p: Partial<HaRecord> = {}): HaRecord => ({ ...newHaRecord(spec(name), 'h2', {}), updatedAt: '2026-11-20T10:00:00.000Z', ...p });

test('keeps the policies and home of the records of VMs held here, by uuid, and forgets a VM no longer held; a lost record leaves what was kept', () => {
  const log = pino({ level: 'silent' });
  const dir = mkdtempSync(join(tmpdir(), 'ferry-hapol-'));
  try {
    const path = join(dir, 'ferry.db');
    const m = new HaPolicyMemory(openDb(path), log);
    assert.equal(m.recall('uuid-a'), undefined, 'nothing kept yet');
    const held = new Set(['uuid-a', 'uuid-b']);
    m.remember([rec('a', { priority: 5, failback: 'immediate', home: 'h1' }), rec('b'), rec('c', { priority: 7 })], held);
    assert.deepEqual(m.recall('uuid-a'), { priority: 5, restart: 'always', failback: 'immediate', home: 'h1', asOf: '2026-11-20T10:00:00.000Z' });
    assert.deepEqual(m.recall('uuid-b'), { priority: 0, restart: 'always', failback: 'none', home: 'h2', asOf: '2026-11-20T10:00:00.000Z' });
    assert.equal(m.recall('uuid-c'), undefined, 'a record of a VM not held here is not kept');
    // Another VM of the name a (another uuid) is not this host's a: it changes nothing kept.
    m.remember([{ ...rec('a', { priority: 99 }), spec: { ...spec('a'), uuid: 'uuid-other' } }], held);
    assert.equal(m.recall('uuid-a')?.priority, 5);
    assert.equal(m.recall('uuid-other'), undefined);
    // A change of policy is kept; a record gone from etcd (its data lost) leaves what was kept of it.
    m.remember([rec('a', { priority: -3, restart: 'never', home: 'h1', updatedAt: '2026-11-21T10:00:00.000Z' })], held);
    assert.deepEqual(m.recall('uuid-a'), { priority: -3, restart: 'never', failback: 'none', home: 'h1', asOf: '2026-11-21T10:00:00.000Z' });
    assert.equal(m.recall('uuid-b')?.home, 'h2', 'b\'s record is gone, what was kept of it stays');
    // b left this host (moved, deleted): forgotten. It survives the agent's restart (same file).
    m.remember([], new Set(['uuid-a']));
    const again = new HaPolicyMemory(openDb(path), log);
    assert.equal(again.recall('uuid-b'), undefined);
    assert.equal(again.recall('uuid-a')?.priority, -3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a kept row that does not hold a whole record\'s policies counts as none', () => {
  const db = openDb(':memory:');
  const m = new HaPolicyMemory(db, pino({ level: 'silent' }));
  const put = db.prepare('INSERT INTO ha_policies (uuid, policies) VALUES (?, ?)');
  put.run('u1', JSON.stringify({ priority: 1, restart: 'always', failback: 'none', asOf: 'x' }));
  put.run('u2', JSON.stringify({ priority: 1.5, restart: 'always', failback: 'none', home: 'h1', asOf: 'x' }));
  put.run('u3', JSON.stringify({ priority: 1, restart: 'sometimes', failback: 'none', home: 'h1', asOf: 'x' }));
  put.run('u4', '{"priority":');
  assert.deepEqual(['u1', 'u2', 'u3', 'u4'].map((u) => m.recall(u)), [undefined, undefined, undefined, undefined]);
});

test('a database that cannot be written or read is logged once until it works again, throws nothing, and recalls nothing', () => {
  const warned: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => { warned.push((JSON.parse(s) as { msg: string }).msg); } });
  const db = openDb(':memory:');
  const m = new HaPolicyMemory(db, log);
  const held = new Set(['uuid-a']);
  const failures = (): number => warned.filter((w) => /could not keep the HA policies/.test(w)).length;
  db.exec('DROP TABLE ha_policies');
  m.remember([rec('a', { priority: 5 })], held);
  m.remember([rec('a', { priority: 6 })], held);
  assert.equal(failures(), 1, `once while it fails: ${JSON.stringify(warned)}`);
  db.exec('CREATE TABLE ha_policies (uuid TEXT PRIMARY KEY, policies TEXT NOT NULL)');
  m.remember([rec('a', { priority: 7 })], held);
  assert.equal(m.recall('uuid-a')?.priority, 7, 'kept once it works again');
  db.exec('DROP TABLE ha_policies');
  m.remember([rec('a', { priority: 8 })], held);
  assert.equal(failures(), 2, 'a new failure after a success is told again');
  db.close();
  assert.equal(m.recall('uuid-a'), undefined, 'the defaults, then');
  assert.ok(warned.some((w) => /could not read the kept HA policies/.test(w)));
});
