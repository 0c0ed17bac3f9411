/** What QEMU needs to run one VM; the agent fills it from the VM spec and host facts. */
export interface QemuLaunch {
  name: string;
  uuid: string;
  machine: string;
  accel: 'kvm' | 'tcg';
  cpuModel: string;
  memoryMiB: number;
  /**
   * KiB the guest's RAM is short of memoryMiB (VmSpec.ramTrimKiB): fixed when the VM cold-starts
   * and carried by every move, since both ends of a move must have RAM of the same size.
   */
  ramTrimKiB?: number;
  cpus: number;
  /** Direct kernel boot of the test guest (or any kernel/initrd pair). */
  boot: { kernel: string; initrd: string; append: string };
  nic: { tap: string; mac: string };
  /**
   * `shared`: the image lives on storage other hosts open too (a move's destination opens it
   * while the source still runs). It is opened with O_DIRECT (cache.direct), so neither host
   * reads stale data from its own page cache, and with image locking on, so two QEMUs never both
   * hold it writable: the incoming side opens it inactive and takes the write lock only once the
   * source has let go at switch-over.
   */
  disks: { path: string; format: 'qcow2'; shared?: boolean }[];
  /** Per-VM folder: QMP socket, pidfile, serial log. */
  runDir: string;
  /** Start paused waiting for `migrate-incoming` (the destination of a move). */
  incoming?: boolean;
}

/**
 * QEMU before 9.0 under TCG loses guest writes during live migration when guest RAM is a multiple
 * of 256 KiB: the dirty-bitmap sync takes a fast path that skips the TCG TLB reset, so pages
 * written after a sync are never sent again (fixed upstream in QEMU 9.0, commit 03bfc2188f,
 * "physmem: Fix migration dirty bitmap coherency with TCG memory access"). Measured here on 7.2:
 * 13 of 17 moves of a guest dirtying 20–50 MB/s lost 12–33 pages and the guest oopsed; with RAM
 * 8 KiB short of the MiB size, 8 of 8 moves lost nothing. KVM does not take that path.
 * The price of the short size: the slow path resets every vCPU's TLB once per dirty page with
 * QEMU's big lock held, and at a QEMU's first migration sync every page is dirty, so the guest
 * stalls as the move starts: measured (setup-time), 343 ms at 1 GiB on 7.2, against 1 ms on
 * QEMU 10.0 with the whole size. So Ferry trims RAM only where the bug is: TCG on QEMU < 9.
 */
/** The version in `qemu-system-x86_64 --version`'s output (`10.0.2`), or 'unknown'. */
export const parseQemuVersion = (out: string): string => /version ([\d.]+)/.exec(out)?.[1] ?? 'unknown';

export const qemuHasTcgDirtyBug = (qemuVersion: string): boolean => {
  const major = /^(\d+)\./.exec(qemuVersion)?.[1];
  return major === undefined || Number(major) < 9;
};

/** Whether a host's TCG guests need their RAM trimmed: TCG on a QEMU older than 9.0. */
export const needsRamTrim = (accel: 'kvm' | 'tcg', qemuVersion: string): boolean => accel === 'tcg' && qemuHasTcgDirtyBug(qemuVersion);

/**
 * The KiB a VM's RAM is trimmed by when it cold-starts on this host (VmSpec.ramTrimKiB), or
 * undefined for the rule agents used before the field existed (8 under TCG, none under KVM), which
 * keeps the spec, and so the peer messages, unchanged wherever that rule still holds.
 */
export function ramTrimFor(accel: 'kvm' | 'tcg', qemuVersion: string): number | undefined {
  return accel === 'tcg' && !needsRamTrim(accel, qemuVersion) ? 0 : undefined;
}

/** QEMU's `-m`: the MiB asked for, less the trim the VM started with (see {@link ramTrimFor}). */
export function memoryArg(l: Pick<QemuLaunch, 'accel' | 'memoryMiB' | 'ramTrimKiB'>): string {
  const trim = l.ramTrimKiB ?? (l.accel === 'tcg' ? 8 : 0);
  return trim > 0 ? `${l.memoryMiB * 1024 - trim}k` : String(l.memoryMiB);
}

/**
 * Heap settings for QEMU's allocator (glibc), merged into any GLIBC_TUNABLES already set. QEMU's
 * NBD server takes a fresh buffer for every request it receives; at glibc's default those of
 * 128 KiB and up are mmap()ed and unmapped again, so every request faults its pages in anew.
 * Measured here, a 1 GiB disk mirrored over NBD on loopback: the receiving QEMU spent 5.2–6.5 s
 * of CPU, mostly in page faults, for 150–180 MiB/s; with buffers up to 32 MiB kept on the heap
 * (and up to 128 MiB of free heap kept rather than handed back), 0.7–1.8 s of CPU for
 * 470–800 MiB/s. Guest RAM is mapped on its own and is not affected.
 */
export const QEMU_MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728';

/** The environment QEMU starts with: the agent's, plus {@link QEMU_MALLOC_TUNABLES} unless the operator set those tunables. */
export function qemuEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = base.GLIBC_TUNABLES ?? '';
  if (/glibc\.malloc\.(mmap|trim)_threshold/.test(own)) return { ...base };
  return { ...base, GLIBC_TUNABLES: own === '' ? QEMU_MALLOC_TUNABLES : `${own}:${QEMU_MALLOC_TUNABLES}` };
}

/** Files QEMU keeps in a VM's run folder. */
export const runFiles = (runDir: string) => ({
  qmp: `${runDir}/qmp.sock`,
  pid: `${runDir}/qemu.pid`,
  serial: `${runDir}/serial.log`,
  log: `${runDir}/qemu.log`,
});

/**
 * The I/O thread every disk runs in. Without it a disk's requests, and the block jobs on it (a
 * storage move's mirror, with its NBD client and TLS), run in QEMU's main loop, which also
 * carries the guest's network: measured here, a mirror copying at full speed delayed the guest's
 * replies by up to 113 ms at a time. In its own thread the copy leaves the main loop to the network.
 */
export const DISK_IOTHREAD = 'iot0';

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
    '-m', memoryArg(l),
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
  if (l.disks.length > 0) argv.push('-object', `iothread,id=${DISK_IOTHREAD}`);
  l.disks.forEach((d, i) => {
    const file = d.shared === true ? { driver: 'file', filename: d.path, locking: 'on' } : { driver: 'file', filename: d.path };
    const node = { driver: d.format, 'node-name': `disk${i}`, ...(d.shared === true ? { cache: { direct: true } } : {}), file };
    argv.push('-blockdev', JSON.stringify(node), '-device', `virtio-blk-pci,drive=disk${i},id=vd${i},iothread=${DISK_IOTHREAD}`);
  });
  // -S: the destination's vCPUs wait for the agent's `cont`, so ownership changes only when the agent says so.
  if (l.incoming) argv.push('-S', '-incoming', 'defer');
  return argv;
}
