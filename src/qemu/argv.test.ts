import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildArgv, parseQemuVersion, qemuEnv, ramTrimFor, QEMU_MALLOC_TUNABLES, type QemuLaunch } from './index.js';

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

test('argv: every disk runs in the one I/O thread, which exists only when there are disks', () => {
  const two = buildArgv({ ...base, disks: [...base.disks, { path: '/p/e.qcow2', format: 'qcow2' }] });
  assert.deepEqual(after(two, '-object'), ['iothread,id=iot0']);
  assert.deepEqual(after(two, '-device').filter((d) => d.startsWith('virtio-blk-pci')),
    ['virtio-blk-pci,drive=disk0,id=vd0,iothread=iot0', 'virtio-blk-pci,drive=disk1,id=vd1,iothread=iot0']);
  assert.deepEqual(after(buildArgv({ ...base, disks: [] }), '-object'), []);
});

test('argv: RAM under TCG is 8 KiB short unless the VM started with another trim; KVM gets it whole', () => {
  assert.deepEqual(after(buildArgv(base), '-m'), ['262136k'], 'no trim recorded: the rule of older agents');
  assert.deepEqual(after(buildArgv({ ...base, ramTrimKiB: 0 }), '-m'), ['256']);
  assert.deepEqual(after(buildArgv({ ...base, ramTrimKiB: 8 }), '-m'), ['262136k']);
  assert.deepEqual(after(buildArgv({ ...base, accel: 'kvm' }), '-m'), ['256']);
});

test('ramTrimFor: 8 KiB (the older rule, left unrecorded) only under TCG on QEMU before 9.0, where the dirty-tracking bug is', () => {
  assert.equal(ramTrimFor('tcg', '7.2.22'), undefined);
  assert.equal(ramTrimFor('tcg', '8.2.1'), undefined);
  assert.equal(ramTrimFor('tcg', 'unknown'), undefined, 'an unknown QEMU is taken to have the bug');
  assert.equal(ramTrimFor('tcg', '9.0.0'), 0);
  assert.equal(ramTrimFor('tcg', '10.0.2'), 0);
  assert.equal(ramTrimFor('kvm', '7.2.22'), undefined);
  assert.equal(ramTrimFor('kvm', '10.0.2'), undefined);
  assert.equal(parseQemuVersion('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright'), '10.0.2');
  assert.equal(parseQemuVersion('nonsense'), 'unknown');
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
