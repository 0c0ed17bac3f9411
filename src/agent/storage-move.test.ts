import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FerryError } from '../errors/index.js';
import { POOL_MARGIN_BYTES } from '../migration/index.js';
import { FakeQmp, type BlockInfo, type BlockJobInfo } from '../qmp/index.js';
import { createImage, Pools } from '../storage/index.js';
import { openDb } from '../util/index.js';
import { Inventory, type DiskSpec } from '../vm/index.js';
import { Slots } from './slots.js';
import { planStorageMove, StorageMover, type PlanInput } from './storage-move.js';
import { imageIn } from '../storage/index.js';

const GiB = 1024 ** 3;
const disk = (path: string): DiskSpec => ({ path, sizeBytes: GiB, pool: 'default', format: 'qcow2' });

const base: PlanInput = {
  name: 'web', state: 'running', disks: [disk('/p/default/web/web-disk0.qcow2'), disk('/p/default/web/web-disk1.qcow2')],
  toDir: '/p/default/fast', pool: { name: 'default', path: '/p/default' },
  images: [{ virtualSize: GiB, actualSize: 100 << 20 }, { virtualSize: GiB, actualSize: 50 << 20 }],
  freeBytes: 10 * GiB, exists: () => false,
};

test('planStorageMove: a running VM moves live, each disk to DIR/<vm>-disk<i>.qcow2 with its virtual size', () => {
  const p = planStorageMove(base);
  assert.equal(p.live, true);
  assert.deepEqual(p.moves, [
    { index: 0, from: '/p/default/web/web-disk0.qcow2', to: '/p/default/fast/web-disk0.qcow2', sizeBytes: GiB },
    { index: 1, from: '/p/default/web/web-disk1.qcow2', to: '/p/default/fast/web-disk1.qcow2', sizeBytes: GiB },
  ]);
  assert.equal(planStorageMove({ ...base, state: 'paused' }).live, true);
  assert.equal(planStorageMove({ ...base, state: 'stopped' }).live, false, 'a stopped VM is copied');
  assert.equal(imageIn('/a/b', 'x', 3), '/a/b/x-disk3.qcow2');
});

test('planStorageMove refuses with a stable code', () => {
  const need = (100 << 20) + (50 << 20) + POOL_MARGIN_BYTES;
  const cases: [string, Partial<PlanInput>, string][] = [
    ['a VM being migrated', { state: 'migrating' }, 'VM_BAD_STATE'],
    ['a failed VM', { state: 'failed' }, 'VM_BAD_STATE'],
    ['a VM without disks', { disks: [], images: [] }, 'VM_BAD_STATE'],
    ['the folder the disks are in', { toDir: '/p/default/web' }, 'SAME_PATH'],
    ['the same folder spelt with a trailing slash', { toDir: '/p/default/web/' }, 'SAME_PATH'],
    ['an image in the way', { exists: (p) => p.endsWith('web-disk1.qcow2') }, 'DISK_EXISTS'],
    ['a pool one byte short', { freeBytes: need - 1 }, 'INSUFFICIENT_DISK'],
  ];
  for (const [what, change, code] of cases) {
    assert.throws(() => planStorageMove({ ...base, ...change }), (e: unknown) => e instanceof FerryError && e.code === code, what);
  }
  assert.doesNotThrow(() => planStorageMove({ ...base, freeBytes: need }), 'exactly enough room is enough');
});

/** A running VM with one 16 MiB disk in a temporary pool, and a FakeQmp standing in for its QEMU. */
async function rig(): Promise<{ mover: StorageMover; inv: Inventory; qmp: FakeQmp; slots: Slots; root: string; old: string; locks: string[] }> {
  const root = mkdtempSync(join(tmpdir(), 'ferry-sm-'));
  const pools = new Pools([{ name: 'default', path: join(root, 'default') }]);
  const inv = new Inventory(openDb(':memory:'));
  const old = join(root, 'default', 'vm1', 'vm1-disk0.qcow2');
  await createImage(old, 16 << 20);
  inv.insert({
    name: 'vm1', uuid: 'u1', memoryMiB: 64, cpus: 1, cpuModel: 'qemu64', machine: 'q35', mac: 'm', ip: '10.0.0.2', prefixLength: 24, ha: false,
    disks: [{ path: old, sizeBytes: 16 << 20, pool: 'default', format: 'qcow2' }],
  });
  inv.apply('vm1', { type: 'started' }, 1234);
  const qmp = new FakeQmp();
  qmp.handle('query-block', [{ device: '', qdev: '/machine/peripheral/vd0/virtio-backend', inserted: { 'node-name': 'disk0', file: old } }] as unknown as BlockInfo[]);
  qmp.handle('blockdev-add', {});
  qmp.handle('blockdev-del', {});
  qmp.handle('blockdev-mirror', {});
  qmp.handle('block-job-cancel', (a) => { setTimeout(() => qmp.emit('BLOCK_JOB_CANCELLED', { type: 'mirror', device: a.device, len: 1, offset: 1, speed: 0 }), 5); return {}; });
  const slots = new Slots(() => ({ storage: 1 }));
  const locks: string[] = [];
  const mover = new StorageMover({
    inv, pools, slots, log: pino({ level: 'silent' }), qmp: () => qmp, emit: () => undefined,
    lockVm: (n) => { locks.push(`lock ${n}`); return () => locks.push(`unlock ${n}`); },
  });
  return { mover, inv, qmp, slots, root, old, locks };
}

const job = (device: string, j: Partial<BlockJobInfo>): BlockJobInfo => ({
  type: 'mirror', device, len: 16 << 20, offset: 0, busy: false, paused: false, speed: 0, 'io-status': 'ok', ready: false,
  status: 'running', 'auto-finalize': true, 'auto-dismiss': true, ...j,
});

test('StorageMover: a copy that fails leaves the VM on its old image and removes what it made', async () => {
  const { mover, inv, qmp, slots, root, old, locks } = await rig();
  qmp.handle('query-block-jobs', (_a, c) => qmp.calls.filter((x) => x.command === 'blockdev-mirror' && x.at <= c.at)
    .map((m) => job((m.args as { 'job-id': string })['job-id'], { status: 'concluded', error: 'No space left on device' })));
  await assert.rejects(mover.move('vm1', join(root, 'default', 'fast')), { code: 'STORAGE_FAILED' });
  assert.equal(inv.get('vm1').spec.disks[0]?.path, old, 'the spec is unchanged');
  assert.ok(existsSync(old), 'the old image stays');
  assert.equal(existsSync(join(root, 'default', 'fast')), false, 'the new image and its new folder are gone');
  assert.ok(qmp.calls.some((c) => c.command === 'blockdev-del'), 'the target node was removed');
  assert.equal(qmp.calls.some((c) => c.command === 'block-job-complete'), false, 'nothing was switched');
  assert.equal(slots.inUse('storage'), 0);
  assert.deepEqual(locks, ['lock vm1', 'unlock vm1']);
  rmSync(root, { recursive: true, force: true });
});

test('StorageMover: READY, pivot, then the spec follows QEMU and the old image is deleted', async () => {
  const { mover, inv, qmp, slots, root, old } = await rig();
  let completed = false;
  qmp.handle('block-job-complete', (a) => {
    completed = true;
    qmp.emit('BLOCK_JOB_COMPLETED', { type: 'mirror', device: a.device, len: 1, offset: 1, speed: 0 });
    return {};
  });
  qmp.handle('query-block', () => [{
    device: '', qdev: '/machine/peripheral/vd0/virtio-backend',
    inserted: { 'node-name': completed ? 'x-target0' : 'disk0', file: completed ? join(root, 'default', 'fast', 'vm1-disk0.qcow2') : old },
  }] as unknown as BlockInfo[]);
  qmp.handle('query-block-jobs', (_a, c) => (completed ? [] : qmp.calls.filter((x) => x.command === 'blockdev-mirror' && x.at <= c.at)
    .map((m) => job((m.args as { 'job-id': string })['job-id'], { ready: true, offset: 16 << 20 }))));
  const r = await mover.move('vm1', join(root, 'default', 'fast'));
  const to = join(root, 'default', 'fast', 'vm1-disk0.qcow2');
  assert.equal(r.live, true);
  assert.deepEqual(r.disks.map((d) => [d.from, d.to, d.pool, d.sizeBytes]), [[old, to, 'default', 16 << 20]]);
  assert.equal(inv.get('vm1').spec.disks[0]?.path, to);
  assert.equal(existsSync(old), false);
  assert.ok(existsSync(to));
  assert.equal(slots.inUse('storage'), 0);
  const mirror = qmp.calls.find((c) => c.command === 'blockdev-mirror')?.args as { device: string; sync: string; granularity: number; 'buf-size': number };
  assert.deepEqual([mirror.device, mirror.sync, mirror.granularity, mirror['buf-size']], ['disk0', 'full', 1 << 20, 64 << 20]);
  rmSync(root, { recursive: true, force: true });
});

test('StorageMover: over the host\'s storage limit it refuses before touching anything, and releases the VM', async () => {
  const { mover, qmp, slots, root, old, locks } = await rig();
  const held = slots.tryTake('storage');
  await assert.rejects(mover.move('vm1', join(root, 'default', 'fast')), { code: 'STORAGE_MIGRATION_LIMIT' });
  await assert.rejects(mover.move('vm1', join(root, 'elsewhere')), { code: 'INVALID_PATH' });
  await assert.rejects(mover.move('vm2', join(root, 'default', 'fast')), { code: 'VM_NOT_FOUND' });
  held();
  assert.ok(existsSync(old));
  assert.equal(existsSync(join(root, 'default', 'fast')), false);
  assert.equal(qmp.calls.filter((c) => c.command !== 'qmp_capabilities').length, 0, 'QEMU was not asked anything');
  assert.deepEqual(locks, ['lock vm1', 'unlock vm1']);
  rmSync(root, { recursive: true, force: true });
});
