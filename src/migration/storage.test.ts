import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pools } from '../storage/index.js';
import type { VmSpec } from '../vm/index.js';
import { assessStorage, deletesSourceDisks, nbdUri, parseNbdUri, planStorage } from './storage.js';

const GiB = 1024 ** 3;

function fixture(): { root: string; pools: Pools; vm: VmSpec } {
  const root = mkdtempSync(join(tmpdir(), 'plan-'));
  const pools = new Pools([{ name: 'default', path: join(root, 'local') }, { name: 'shared', path: join(root, 'nfs'), sharedId: 'nfs-1' }]);
  const vm = {
    name: 'vm1', uuid: 'u', memoryMiB: 256, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '52:54:00:00:00:01',
    ip: '10.0.0.5', prefixLength: 24, ha: false,
    disks: [{ path: join(root, 'nfs', 'vm1', 'vm1-disk0.qcow2'), sizeBytes: GiB, pool: 'shared', format: 'qcow2' as const }],
  };
  return { root, pools, vm };
}

test('planStorage: a shared disk moves without a copy only to a host with the same pool id', () => {
  const { root, pools, vm } = fixture();
  try {
    const same = planStorage(pools, vm, { includeStorage: false }, [{ allocatedBytes: 1000, sharedId: 'nfs-1' }]);
    assert.deepEqual(same.copies, []);
    assert.equal(same.spec, vm);
    assert.throws(() => planStorage(pools, vm, { includeStorage: false }, [{ allocatedBytes: 1000, sharedId: 'other' }]), { code: 'STORAGE_NOT_SHARED' });
    assert.throws(() => planStorage(pools, vm, { includeStorage: false }, [{ allocatedBytes: 1000 }]), { code: 'STORAGE_NOT_SHARED' });
    assert.throws(() => planStorage(pools, vm, { includeStorage: false }, undefined), { code: 'STORAGE_NOT_SHARED', message: /--include-storage/ });
    assert.deepEqual(planStorage(pools, { ...vm, disks: [] }, { includeStorage: false }, undefined).copies, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('planStorage: --include-storage targets, existing images, paths outside pools', () => {
  const { root, pools, vm } = fixture();
  try {
    const p = planStorage(pools, vm, { includeStorage: true }, [{ allocatedBytes: 1000, sharedId: 'nfs-1' }]);
    const target = join(root, 'local', 'vm1', 'vm1-disk0.qcow2');
    assert.deepEqual(p.copies, [{ index: 0, sourcePath: vm.disks[0]?.path, destinationPath: target, sizeBytes: GiB }]);
    assert.equal(p.spec.disks[0]?.path, target);
    assert.equal(p.spec.disks[0]?.pool, 'default');
    const fast = join(root, 'local', 'fast');
    assert.equal(planStorage(pools, vm, { includeStorage: true, storagePath: fast }, undefined).copies[0]?.destinationPath, join(fast, 'vm1-disk0.qcow2'));
    assert.throws(() => planStorage(pools, vm, { includeStorage: true, storagePath: '/etc' }, undefined), { code: 'INVALID_PATH' });
    mkdirSync(join(root, 'local', 'vm1'), { recursive: true });
    writeFileSync(target, 'x');
    assert.throws(() => planStorage(pools, vm, { includeStorage: true }, undefined), { code: 'DISK_EXISTS' });
    assert.throws(() => planStorage(pools, vm, { includeStorage: true, storagePath: fast }, [{ allocatedBytes: 2 ** 60 }]), { code: 'INSUFFICIENT_DISK' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('NBD URIs round-trip; anything else from a peer is refused', () => {
  assert.deepEqual(parseNbdUri(nbdUri('10.77.0.12', 40123, 1)), { host: '10.77.0.12', port: 40123, export: 'disk1' });
  for (const bad of ['tcp:1.2.3.4:5', 'nbd://h:1/../x', 'nbd://h/disk0', 'nbd://h:123456/disk0']) {
    assert.throws(() => parseNbdUri(bad), { code: 'MIGRATION_FAILED' }, bad);
  }
});

test('source images are deleted after a storage move unless retained, never after a shared one', () => {
  assert.equal(deletesSourceDisks({ options: { includeStorage: true } }), true);
  assert.equal(deletesSourceDisks({ options: { includeStorage: true, retainSourceDisks: true } }), false);
  assert.equal(deletesSourceDisks({ options: { includeStorage: false } }), false);
});

test('assessStorage: the dry run lists every problem planStorage would throw first, and makes nothing', () => {
  const { root, pools, vm } = fixture();
  try {
    const two = { ...vm, disks: [...vm.disks, { ...vm.disks[0]!, path: join(root, 'local', 'vm1', 'vm1-disk1.qcow2'), pool: 'default' }] };
    const r = assessStorage(pools, two, { includeStorage: false }, [{ allocatedBytes: 1 }, { allocatedBytes: 1 }]);
    assert.deepEqual(r.problems.map((p) => p.code), ['STORAGE_NOT_SHARED', 'STORAGE_NOT_SHARED']);
    assert.equal(r.plan, undefined);
    assert.throws(() => planStorage(pools, two, { includeStorage: false }, undefined), { code: 'STORAGE_NOT_SHARED', message: /Disk 0/ });
    assert.deepEqual(assessStorage(pools, vm, { includeStorage: true, storagePath: '/elsewhere' }, undefined).problems.map((p) => p.code), ['INVALID_PATH']);
    const ok = assessStorage(pools, vm, { includeStorage: true }, [{ allocatedBytes: 1000 }]);
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.plan?.copies.length, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
