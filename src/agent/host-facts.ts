import { existsSync } from 'node:fs';
import { FerryError } from '../errors/index.js';
import type { CpuModelProbe } from '../qemu/index.js';
import type { HostFacts } from '../migration/index.js';

/** What {@link hostFacts} reads of the agent. */
export interface HostFactsDeps {
  cpuModels: CpuModelProbe;
  capacity: () => { memoryMiB: number; cpus: number };
  usedMemoryMiB: () => number;
  bridge: string;
  /** True when this host runs TCG on a QEMU older than 9.0 (its TCG guests need their RAM trimmed). */
  tcgDirtyBug: () => Promise<boolean>;
}

/** This host's side of a compatibility report (MigrationHost.hostFacts). */
export async function hostFacts(d: HostFactsDeps, cpuModel: string): Promise<HostFacts> {
  const [p, cpuFeatures, tcgDirtyBug] = await Promise.all([d.cpuModels.probe(), d.cpuModels.features(cpuModel), d.tcgDirtyBug()]);
  const m = p.models.find((x) => x.name === cpuModel);
  const cap = d.capacity();
  return {
    freeMemoryMiB: cap.memoryMiB - d.usedMemoryMiB(), cpus: cap.cpus, machines: p.machines, tcgDirtyBug,
    cpuModel: m ? { name: m.name, unavailable: m.unavailable } : undefined, cpuFeatures,
    // The agent runs in the host's network namespace, so sysfs shows that namespace's devices.
    bridge: d.bridge, bridgeExists: existsSync(`/sys/class/net/${d.bridge}`),
  };
}

/** Throws INVALID_CPU_MODEL unless QEMU on this host knows the model and can offer all its features. */
export async function checkCpuModel(probe: CpuModelProbe, model: string): Promise<void> {
  const m = await probe.model(model);
  if (!m) throw new FerryError('INVALID_CPU_MODEL', `QEMU on this host does not know the CPU model "${model}".`);
  if (m.unavailable.length > 0) {
    throw new FerryError('INVALID_CPU_MODEL',
      `This host cannot run the CPU model "${model}": it lacks ${m.unavailable.slice(0, 8).join(', ')}${m.unavailable.length > 8 ? ` and ${m.unavailable.length - 8} more features` : ''}.`);
  }
}
