import { randomUUID } from 'node:crypto';
import { FerryError } from '../errors/index.js';

/** A disk of a VM: a qcow2 image inside one of the host's storage pools. */
export interface DiskSpec {
  /** Absolute path of the image. */
  path: string;
  sizeBytes: number;
  /** The pool the image lives in. */
  pool: string;
  format: 'qcow2';
}

/** Everything needed to run a VM the same way on any host. Persisted as JSON in the inventory. */
export interface VmSpec {
  name: string;
  uuid: string;
  memoryMiB: number;
  /**
   * KiB the RAM QEMU runs the VM with is short of memoryMiB, fixed at the VM's cold start by the
   * host's QEMU (src/qemu/argv.ts ramTrimFor: 8 under TCG on QEMU < 9, a workaround of a QEMU bug)
   * and kept by moves. Absent: 8 under TCG, 0 under KVM, the rule of agents before the field.
   */
  ramTrimKiB?: number;
  cpus: number;
  /** A named CPU model (a baseline such as qemu64), so the VM can move between hosts of one vendor. */
  cpuModel: string;
  /** A versioned machine type (pc-q35-7.2, not the q35 alias) so both ends of a move agree. */
  machine: string;
  mac: string;
  ip: string;
  prefixLength: number;
  gateway?: string;
  disks: DiskSpec[];
  ha: boolean;
  /**
   * The VM's anti-affinity group (Hyper-V's AntiAffinityClassNames): a drain places VMs of one
   * group on different hosts when it has the choice. Absent: none.
   */
  group?: string;
  /**
   * The guest kernel and initrd the VM was created with. Pinned, because a move must start the
   * destination with the very same firmware blobs even after `ferry image build` made new ones.
   */
  boot?: { kernel: string; initrd: string };
}

/** What a caller asks for when creating a VM (the API's body). */
export interface CreateVmInput {
  name: string;
  memoryMiB: number;
  cpus?: number;
  cpuModel?: string;
  /** One new disk of that many bytes in the pool (default pool `default`). */
  diskSizeBytes?: number;
  diskPool?: string;
  ha?: boolean;
  /** Anti-affinity group (see VmSpec.group). */
  group?: string;
  /** With `ha`: restart order after a host failure (higher first; default 0). */
  haPriority?: number;
  /** With `ha`: `always` (default) restarts it elsewhere when its host fails; `never` leaves it. */
  haRestart?: 'always' | 'never';
  /** With `ha`: `immediate` moves it back live once its home host returns; `none` (default) leaves it. */
  haFailback?: 'none' | 'immediate';
}

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Throws INVALID_NAME unless `name` is 1–63 characters of a-z, 0-9 and dashes, starting with a letter. */
export function validateName(name: unknown, what = 'VM'): string {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.endsWith('-')) {
    throw new FerryError('INVALID_NAME',
      `The ${what} name "${String(name)}" is not 1–63 characters of a-z, 0-9 and dashes starting with a letter.`);
  }
  return name;
}

/** Host limits that creation checks against. */
export interface HostLimits { maxCpus: number; minMemoryMiB: number; maxDiskBytes: number }

/** Checks a create request's shape and ranges (not capacity, which needs the inventory). */
export function validateCreate(input: CreateVmInput, limits: HostLimits): Required<Pick<CreateVmInput, 'cpus'>> & CreateVmInput {
  validateName(input.name);
  if (!Number.isInteger(input.memoryMiB) || input.memoryMiB < limits.minMemoryMiB) {
    throw new FerryError('INVALID_SIZE', `The memory size must be a whole number of MiB, at least ${limits.minMemoryMiB}.`);
  }
  const cpus = input.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > limits.maxCpus) {
    throw new FerryError('INVALID_CPUS', `The vCPU count must be a whole number from 1 to ${limits.maxCpus}.`);
  }
  if (input.diskSizeBytes !== undefined
      && (!Number.isSafeInteger(input.diskSizeBytes) || input.diskSizeBytes < 1024 * 1024 || input.diskSizeBytes > limits.maxDiskBytes)) {
    throw new FerryError('INVALID_SIZE', 'The disk size must be at least 1M and no larger than the pool.');
  }
  if (input.diskPool !== undefined) validateName(input.diskPool, 'pool');
  if (input.group !== undefined) validateName(input.group, 'anti-affinity group');
  return { ...input, cpus };
}

/** The spec with its anti-affinity group changed: undefined keeps it, null removes it. */
export function withGroup(spec: VmSpec, group: string | null | undefined): VmSpec {
  if (group === undefined) return spec;
  const { group: _old, ...rest } = spec;
  return group === null ? rest : { ...rest, group };
}

/** A locally administered MAC derived from the VM's UUID, stable for the VM's life and across hosts. */
export function macFromUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

export const newUuid = (): string => randomUUID();

/** The tap device name for a VM on a host: short (≤ 15 chars) and derived from the UUID. */
export const tapName = (uuid: string): string => `fy${uuid.replace(/-/g, '').slice(0, 10)}`;
