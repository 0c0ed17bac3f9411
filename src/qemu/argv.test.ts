import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildArgv, qemuEnv, QEMU_MALLOC_TUNABLES, type QemuLaunch } from './index.js';

const base: QemuLaunch = {
  name: 'vm1', uuid: 'u-1', machine: 'pc-q35-7.2', accel: 'tcg', cpuModel: 'qemu64', memoryMiB: 256, cpus: 2,
  boot: { kernel: '/k', initrd: '/i', append: 'console=ttyS0' }, nic: { tap: 'fy1', mac: '52:54:00:00:00:01' },
  disks: [{ path: '/p/d.qcow2', format: 'qcow2' }], runDir: '/run/vm1',
};

const after = (argv: string[], flag: string): string[] => argv.flatMap((a, i) => (a === flag ? [argv[i + 1] ?? ''] : []));

test('argv: versioned machine, named CPU, daemonized with pidfile and QMP socket', () => {
  const a = buildArgv(base);
  assert.deepEqual(after(a, '-machine'), ['pc-q35-7.2,accel=tcg']);
  assert.deepEqual(after(a, '-cpu'), ['qemu64']);
  assert.ok(a.includes('-daemonize'));
  assert.deepEqual(after(a, '-pidfile'), ['/run/vm1/qemu.pid']);
  assert.deepEqual(after(a, '-qmp'), ['unix:/run/vm1/qmp.sock,server=on,wait=off']);
  assert.ok(!a.includes('-incoming'));
});

test('argv: disks as blockdev nodes with stable node names; incoming defers', () => {
  const a = buildArgv({ ...base, incoming: true });
  const node = JSON.parse(after(a, '-blockdev')[0] ?? '{}') as { 'node-name': string; file: { filename: string } };
  assert.equal(node['node-name'], 'disk0');
  assert.equal(node.file.filename, '/p/d.qcow2');
  assert.deepEqual(after(a, '-incoming'), ['defer']);
  assert.ok(after(a, '-device').some((d) => d.includes('mac=52:54:00:00:00:01')));
});

test('argv: under TCG, RAM is 8 KiB short of the MiB size (QEMU 7.2 dirty-tracking bug); KVM gets it whole', () => {
  assert.deepEqual(after(buildArgv(base), '-m'), ['262136k']);
  assert.deepEqual(after(buildArgv({ ...base, accel: 'kvm' }), '-m'), ['256']);
});

test('argv: a disk on shared storage opens with O_DIRECT and image locking on; a local one with neither', () => {
  const shared = JSON.parse(after(buildArgv({ ...base, disks: [{ path: '/nfs/d.qcow2', format: 'qcow2', shared: true }] }), '-blockdev')[0] ?? '{}') as
    { cache?: { direct: boolean }; file: { locking?: string } };
  assert.deepEqual(shared.cache, { direct: true });
  assert.equal(shared.file.locking, 'on');
  const local = JSON.parse(after(buildArgv(base), '-blockdev')[0] ?? '{}') as { cache?: unknown; file: { locking?: string } };
  assert.equal(local.cache, undefined);
  assert.equal(local.file.locking, undefined);
});

test('qemuEnv: keeps NBD request buffers on the heap, merged with tunables already set, never overriding the operator', () => {
  assert.equal(qemuEnv({ PATH: '/bin' }).GLIBC_TUNABLES, QEMU_MALLOC_TUNABLES);
  assert.equal(qemuEnv({ PATH: '/bin' }).PATH, '/bin');
  assert.equal(qemuEnv({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' }).GLIBC_TUNABLES, `glibc.pthread.rseq=0:${QEMU_MALLOC_TUNABLES}`);
  assert.equal(qemuEnv({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=65536');
});
