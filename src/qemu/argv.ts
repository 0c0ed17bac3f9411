/** What QEMU needs to run one VM; the agent fills it from the VM spec and host facts. */
export interface QemuLaunch {
  name: string;
  uuid: string;
  machine: string;
  accel: 'kvm' | 'tcg';
  cpuModel: string;
  memoryMiB: number;
  cpus: number;
  /** Direct kernel boot of the test guest (or any kernel/initrd pair). */
  boot: { kernel: string; initrd: string; append: string };
  nic: { tap: string; mac: string };
  disks: { path: string; format: 'qcow2' }[];
  /** Per-VM folder: QMP socket, pidfile, serial log. */
  runDir: string;
  /** Start paused waiting for `migrate-incoming` (the destination of a move). */
  incoming?: boolean;
}

/** Files QEMU keeps in a VM's run folder. */
export const runFiles = (runDir: string) => ({
  qmp: `${runDir}/qmp.sock`,
  pid: `${runDir}/qemu.pid`,
  serial: `${runDir}/serial.log`,
  log: `${runDir}/qemu.log`,
});

/**
 * Builds QEMU's argv. The device model depends only on the spec, never on the host, so that the
 * destination of a move can build the very same one; host-specific parts (paths, tap) sit in
 * backends, which migration does not compare.
 */
export function buildArgv(l: QemuLaunch): string[] {
  const f = runFiles(l.runDir);
  const argv = [
    '-name', `guest=${l.name},debug-threads=on`,
    '-uuid', l.uuid,
    '-machine', `${l.machine},accel=${l.accel}`,
    '-cpu', l.cpuModel,
    '-m', String(l.memoryMiB),
    '-smp', String(l.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-kernel', l.boot.kernel, '-initrd', l.boot.initrd, '-append', l.boot.append,
    '-serial', `file:${f.serial}`,
    '-qmp', `unix:${f.qmp},server=on,wait=off`,
    '-pidfile', f.pid,
    '-D', f.log,
    '-daemonize',
    '-netdev', `tap,id=net0,ifname=${l.nic.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=net0,mac=${l.nic.mac},id=nic0`,
  ];
  l.disks.forEach((d, i) => {
    const node = { driver: d.format, 'node-name': `disk${i}`, file: { driver: 'file', filename: d.path } };
    argv.push('-blockdev', JSON.stringify(node), '-device', `virtio-blk-pci,drive=disk${i},id=vd${i}`);
  });
  // -S: the destination's vCPUs wait for the agent's `cont`, so ownership changes only when the agent says so.
  if (l.incoming) argv.push('-S', '-incoming', 'defer');
  return argv;
}
