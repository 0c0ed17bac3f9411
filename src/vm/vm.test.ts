import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDb } from '../util/index.js';
import { FerryError, toFerryError } from '../errors/index.js';
import { Inventory, macFromUuid, step, tapName, validateCreate, validateName, type VmSpec, type VmState, type VmEvent } from './index.js';

const limits = { maxCpus: 2, minMemoryMiB: 64, maxDiskBytes: 10 * 1024 ** 3 };

test('names: accepted and refused', () => {
  for (const ok of ['t1', 'web-01', 'a'.repeat(63)]) assert.equal(validateName(ok), ok);
  for (const bad of ['', '1vm', 'Web', 'a_b', 'a/b', '../x', 'a'.repeat(64), 'trailing-', 'x y']) {
    assert.throws(() => validateName(bad), { code: 'INVALID_NAME' }, bad);
  }
});

test('create validation: sizes and CPU counts', () => {
  const cases: [Partial<Parameters<typeof validateCreate>[0]>, string | null][] = [
    [{}, null],
    [{ memoryMiB: 32 }, 'INVALID_SIZE'],
    [{ memoryMiB: 1.5 }, 'INVALID_SIZE'],
    [{ cpus: 0 }, 'INVALID_CPUS'],
    [{ cpus: 3 }, 'INVALID_CPUS'],
    [{ diskSizeBytes: 100 }, 'INVALID_SIZE'],
    [{ diskSizeBytes: 11 * 1024 ** 3 }, 'INVALID_SIZE'],
    [{ diskPool: 'no/pe' }, 'INVALID_NAME'],
  ];
  for (const [over, code] of cases) {
    const input = { name: 'vm1', memoryMiB: 256, ...over };
    if (code) assert.throws(() => validateCreate(input, limits), { code }, JSON.stringify(over));
    else assert.equal(validateCreate(input, limits).cpus, 1);
  }
});

test('state machine: table of legal and illegal steps', () => {
  const table: [VmState, VmEvent['type'], VmState | null][] = [
    ['stopped', 'started', 'running'], ['running', 'stopped', 'stopped'], ['running', 'paused', 'paused'],
    ['paused', 'resumed', 'running'], ['running', 'migration-began', 'migrating'], ['migrating', 'migration-ended', 'running'],
    ['running', 'crashed', 'failed'], ['failed', 'started', 'running'], ['failed', 'stopped', 'stopped'],
    ['stopped', 'paused', null], ['stopped', 'migration-began', null], ['migrating', 'migration-began', null], ['stopped', 'crashed', null],
  ];
  for (const [from, type, to] of table) {
    const ev = (type === 'crashed' ? { type, reason: 'x' } : { type }) as VmEvent;
    if (to) assert.equal(step(from, ev), to);
    else assert.throws(() => step(from, ev), { code: 'VM_BAD_STATE' });
  }
});

test('MAC and tap names are stable and short', () => {
  const uuid = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  assert.equal(macFromUuid(uuid), '52:54:00:0f:1e:2d');
  assert.ok(tapName(uuid).length <= 15);
  assert.equal(tapName(uuid), tapName(uuid));
});

test('inventory: insert, duplicate, transitions through one setter', () => {
  const inv = new Inventory(openDb(':memory:'));
  const seen: string[] = [];
  inv.onTransition((n, f, t) => seen.push(`${n}:${f}->${t}`));
  const spec: VmSpec = { name: 'a', uuid: 'u1', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: 'm', ip: '10.0.0.1', prefixLength: 16, disks: [], ha: false };
  inv.insert(spec);
  assert.throws(() => inv.insert(spec), { code: 'VM_EXISTS' });
  assert.equal(inv.apply('a', { type: 'started' }, 42).pid, 42);
  assert.equal(inv.apply('a', { type: 'crashed', reason: 'gone' }).reason, 'gone');
  assert.equal(inv.get('a').pid, null);
  assert.deepEqual(seen, ['a:stopped->running', 'a:running->failed']);
  assert.throws(() => inv.get('b'), { code: 'VM_NOT_FOUND' });
  inv.remove('a');
  assert.equal(inv.list().length, 0);
});

test('inventory: an insert the state database cannot write is not taken for a duplicate; the API answers it STATE_STORE_FAILED', () => {
  const db = openDb(':memory:');
  const inv = new Inventory(db);
  db.pragma('query_only = ON');
  const spec: VmSpec = { name: 'a', uuid: 'u1', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: 'm', ip: '10.0.0.1', prefixLength: 16, disks: [], ha: false };
  let thrown: unknown;
  try { inv.insert(spec); } catch (e) { thrown = e; }
  assert.ok(thrown && !(thrown instanceof FerryError), 'not VM_EXISTS');
  const fe = toFerryError(thrown);
  assert.equal(fe.code, 'STATE_STORE_FAILED');
  assert.match(fe.message, /^The agent's state database failed \(SQLITE_READONLY: /);
});

test('inventory: updateSpec replaces the spec of the same VM, keeps its state and tells no listener', () => {
  const inv = new Inventory(openDb(':memory:'));
  const seen: string[] = [];
  inv.onTransition((n) => seen.push(n));
  const spec: VmSpec = { name: 'a', uuid: 'u1', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: 'm', ip: '10.0.0.1', prefixLength: 16, disks: [], ha: false };
  inv.insert(spec);
  inv.apply('a', { type: 'started' }, 7);
  seen.length = 0;
  const disks = [{ path: '/p/b/a-disk0.qcow2', sizeBytes: 1 << 20, pool: 'b', format: 'qcow2' as const }];
  const r = inv.updateSpec({ ...spec, disks });
  assert.deepEqual(r.spec.disks, disks);
  assert.equal(r.state, 'running');
  assert.equal(r.pid, 7);
  assert.deepEqual(seen, []);
  assert.throws(() => inv.updateSpec({ ...spec, uuid: 'other' }), { code: 'INTERNAL' });
  assert.throws(() => inv.updateSpec({ ...spec, name: 'b' }), { code: 'VM_NOT_FOUND' });
});
