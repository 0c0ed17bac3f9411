/**
 * The compatibility report (Hyper-V's Compare-VM, issue 5): why a move of a VM to a host would
 * fail, decided before anything starts. A pure function of facts the two hosts gather; the
 * destination judges its own facts (it answers the peer message `compare`, protocol.ts) and the
 * source adds its own, so the report is the same whether `ferry compare` or `ferry move` asks.
 */
import type { ErrorCode } from '../errors/index.js';
import type { VmSpec } from '../vm/index.js';

/** One reason the move would fail: a catalogue code and one sentence. */
export interface Incompatibility { code: ErrorCode; message: string }

/** What the source knows that matters for the move. */
export interface SourceFacts {
  host: string;
  outgoingEnabled: boolean;
}

/** A CPU model as a host offers it (src/qemu/cpu-models.ts CpuModelDef, the fields the report reads). */
export interface CpuModelFacts { name: string; unavailable: string[] }

/** What the destination knows about itself and the VM's name and disks there. */
export interface DestinationFacts {
  host: string;
  incomingEnabled: boolean;
  /** `draining` or `drained` while the host is in maintenance (src/host); null or absent in service. */
  maintenance?: string | null;
  freeMemoryMiB: number;
  cpus: number;
  /** Machine types its QEMU offers. */
  machines: string[];
  /** Its QEMU runs TCG and is older than 9.0, so a TCG guest needs its RAM trimmed (src/qemu/argv.ts ramTrimFor). */
  tcgDirtyBug?: boolean;
  /** Its offer of the VM's CPU model; undefined when its QEMU does not know the model. */
  cpuModel: CpuModelFacts | undefined;
  /** The features the VM's model enables there (full expansion); undefined when unknown. */
  cpuFeatures: string[] | undefined;
  bridge: string;
  bridgeExists: boolean;
  vmExists: boolean;
  /** Problems of the storage dry run (assessStorage): STORAGE_NOT_SHARED, INVALID_PATH, DISK_EXISTS, INSUFFICIENT_DISK… */
  storage: Incompatibility[];
}

/** Everything the report reads; either side may be absent (each host judges its own). */
export interface CompareFacts {
  vm: VmSpec;
  source?: SourceFacts;
  destination?: DestinationFacts;
  /** The features the VM's model enables on the source, to compare with the destination's expansion. */
  sourceCpuFeatures?: string[];
}

/** Lists every reason the move would fail, source's first; empty means compatible. */
export function compare(f: CompareFacts): Incompatibility[] {
  return [...(f.source ? sourceProblems(f.vm, f.source) : []), ...(f.destination ? destinationProblems(f, f.destination) : [])];
}

function sourceProblems(vm: VmSpec, s: SourceFacts): Incompatibility[] {
  return s.outgoingEnabled ? [] : [{
    code: 'MIGRATION_DISABLED', message: `Outgoing live migration is turned off on ${s.host}, where "${vm.name}" runs.`,
  }];
}

function destinationProblems(f: CompareFacts, d: DestinationFacts): Incompatibility[] {
  const { vm } = f;
  const out: Incompatibility[] = [];
  if (d.maintenance) out.push({ code: 'HOST_IN_MAINTENANCE', message: `Host ${d.host} is ${d.maintenance} for maintenance and takes no VMs.` });
  if (!d.incomingEnabled) out.push({ code: 'MIGRATION_DISABLED', message: `Incoming live migration is turned off on ${d.host}.` });
  if (d.vmExists) out.push({ code: 'VM_EXISTS', message: `A VM named "${vm.name}" already exists on ${d.host}.` });
  if (!d.machines.includes(vm.machine)) {
    out.push({ code: 'MACHINE_TYPE_UNSUPPORTED', message: `The QEMU of ${d.host} does not offer the machine type ${vm.machine} of "${vm.name}"; upgrade it.` });
  }
  if (d.tcgDirtyBug === true && vm.ramTrimKiB === 0) {
    out.push({ code: 'QEMU_TOO_OLD', message: `The QEMU of ${d.host} (TCG, older than 9.0) would lose guest writes of "${vm.name}" in its next move, which runs with its whole RAM since it started on a newer QEMU; upgrade QEMU there (scripts/install-deps.sh).` });
  }
  out.push(...cpuProblems(f, d));
  if (vm.memoryMiB > d.freeMemoryMiB) {
    out.push({ code: 'INSUFFICIENT_MEMORY', message: `Host ${d.host} has ${d.freeMemoryMiB} MiB free for VMs, less than the ${vm.memoryMiB} MiB of "${vm.name}".` });
  }
  if (vm.cpus > d.cpus) out.push({ code: 'INSUFFICIENT_CPUS', message: `Host ${d.host} has ${d.cpus} CPUs, fewer than the ${vm.cpus} vCPUs of "${vm.name}".` });
  if (!d.bridgeExists) out.push({ code: 'BRIDGE_MISSING', message: `The bridge ${d.bridge} that VMs attach to does not exist on ${d.host}.` });
  out.push(...d.storage);
  return out;
}

function cpuProblems(f: CompareFacts, d: DestinationFacts): Incompatibility[] {
  const model = f.vm.cpuModel;
  if (!d.cpuModel) return [{ code: 'CPU_MODEL_UNSUPPORTED', message: `The QEMU of ${d.host} does not know the CPU model ${model}.` }];
  if (d.cpuModel.unavailable.length > 0) {
    return [{ code: 'CPU_MODEL_UNSUPPORTED', message: `Host ${d.host} cannot offer the CPU model ${model}; it lacks ${listOf(d.cpuModel.unavailable)}.` }];
  }
  if (!f.sourceCpuFeatures || !d.cpuFeatures) return [];
  const there = new Set(d.cpuFeatures);
  const missing = f.sourceCpuFeatures.filter((x) => !there.has(x));
  return missing.length === 0 ? [] : [{
    code: 'CPU_FEATURES_MISSING', message: `The CPU model ${model} on ${d.host} lacks ${listOf(missing)}, which "${f.vm.name}" has on its source.`,
  }];
}

/** "a, b, c and 4 more features". */
function listOf(features: readonly string[]): string {
  const shown = features.slice(0, 6).join(', ');
  const more = features.length - 6;
  return more > 0 ? `the features ${shown} and ${more} more` : `the feature${features.length === 1 ? '' : 's'} ${shown}`;
}

/** One line per problem, `CODE: sentence` (the CLI's report and INCOMPATIBLE's message). */
export const reportLines = (problems: readonly Incompatibility[]): string[] => problems.map((p) => `${p.code}: ${p.message}`);

/** What a host reports of itself for the report (MigrationHost.hostFacts): capacity, QEMU's offer for the VM's CPU model, its bridge. */
export type HostFacts = Pick<DestinationFacts, 'freeMemoryMiB' | 'cpus' | 'machines' | 'tcgDirtyBug' | 'cpuModel' | 'cpuFeatures' | 'bridge' | 'bridgeExists'>;
