/**
 * Where a drain sends each VM of the host being emptied: a pure function of the VMs, the other
 * hosts' capacity and anti-affinity groups, and each (VM, host) pair's compatibility report. The
 * executor (drain.ts) gathers the facts and carries the plan out; tests drive this with tables.
 */
import type { ErrorCode } from '../errors/index.js';

/** One reason a VM cannot go somewhere: a catalogue code and one sentence. */
export interface Problem { code: ErrorCode; message: string }

/** A VM to place. */
export interface PlacementVm {
  name: string;
  memoryMiB: number;
  cpus: number;
  /** Its anti-affinity group: VMs of one group are kept on different hosts when there is a choice. */
  group?: string | undefined;
}

/** A host that might take VMs, as its agent (or the cluster's store) reports it. */
export interface PlacementHost {
  name: string;
  /** Memory free for VMs now, MiB. */
  freeMemoryMiB: number;
  cpus: number;
  /** vCPUs of the VMs running there now. */
  committedCpus: number;
  /** The anti-affinity group of each VM there that has one (repeated per VM). */
  groups: string[];
  /** `draining` or `drained` hosts take nothing; null when the host is in service. */
  maintenance: string | null;
  /** False when its agent did not answer. */
  reachable: boolean;
}

/** What the planner reads. */
export interface PlacementInput {
  vms: PlacementVm[];
  hosts: PlacementHost[];
  /** The compatibility report per VM and host (`problems[vm][host]`); a missing entry means none. */
  problems?: Record<string, Record<string, Problem[]>>;
}

/** A VM the planner found no host for, with why, host by host. */
export interface Unplaced extends Problem {
  vm: string;
  /** Each candidate's first problem. */
  reasons: (Problem & { host: string })[];
}

export interface Placement { vm: string; host: string; /** True when every host that could take it already runs a VM of its group. */ sharesGroup: boolean }

export interface DrainPlan { placements: Placement[]; unplaced: Unplaced[] }

/** Running totals of one host while VMs are placed on it. */
interface Slot { h: PlacementHost; free: number; committed: number; groups: string[] }

/**
 * Places the biggest VMs first (first-fit decreasing by memory, then vCPUs), each on the host
 * that (1) runs no VM of its anti-affinity group, (2) keeps the most memory free after taking it,
 * (3) has the lowest vCPU commitment per CPU after taking it, (4) comes first by name. A host in
 * maintenance, unreachable, short of memory (counting VMs placed before) or CPUs, or with a
 * problem in the compatibility report is not a candidate. Anti-affinity is a preference: when
 * only hosts with a VM of the group remain, the VM goes there and `sharesGroup` says so.
 */
export function planDrain(input: PlacementInput): DrainPlan {
  const slots: Slot[] = [...input.hosts].sort((a, b) => a.name.localeCompare(b.name))
    .map((h) => ({ h, free: h.freeMemoryMiB, committed: h.committedCpus, groups: [...h.groups] }));
  const order = [...input.vms].sort((a, b) => b.memoryMiB - a.memoryMiB || b.cpus - a.cpus || a.name.localeCompare(b.name));
  const plan: DrainPlan = { placements: [], unplaced: [] };
  for (const vm of order) {
    const reasons: (Problem & { host: string })[] = [];
    const fits: Slot[] = [];
    for (const s of slots) {
      const p = hostProblem(vm, s, input.problems?.[vm.name]?.[s.h.name] ?? []);
      if (p) reasons.push({ host: s.h.name, ...p }); else fits.push(s);
    }
    const best = fits.sort((a, b) => rank(vm, a) - rank(vm, b) || compareSlots(vm, a, b))[0];
    if (!best) { plan.unplaced.push(unplaced(vm, reasons)); continue; }
    const sharesGroup = rank(vm, best) > 0;
    best.free -= vm.memoryMiB;
    best.committed += vm.cpus;
    if (vm.group) best.groups.push(vm.group);
    plan.placements.push({ vm: vm.name, host: best.h.name, sharesGroup });
  }
  return plan;
}

/** Why `s` cannot take `vm` now, or undefined when it can. */
function hostProblem(vm: PlacementVm, s: Slot, report: Problem[]): Problem | undefined {
  const { h } = s;
  if (!h.reachable) return { code: 'HOST_UNREACHABLE', message: `The agent of ${h.name} did not answer.` };
  if (h.maintenance) return { code: 'HOST_IN_MAINTENANCE', message: `Host ${h.name} is ${h.maintenance} for maintenance.` };
  if (report[0]) return report[0];
  if (vm.memoryMiB > s.free) {
    const placed = s.free < h.freeMemoryMiB ? ' once the VMs placed there before it arrive' : '';
    return { code: 'INSUFFICIENT_MEMORY', message: `Host ${h.name} has ${s.free} MiB free for VMs${placed}, less than the ${vm.memoryMiB} MiB of "${vm.name}".` };
  }
  if (vm.cpus > h.cpus) return { code: 'INSUFFICIENT_CPUS', message: `Host ${h.name} has ${h.cpus} CPUs, fewer than the ${vm.cpus} vCPUs of "${vm.name}".` };
  return undefined;
}

/** VMs of `vm`'s anti-affinity group on the host (0 when it has none). */
const rank = (vm: PlacementVm, s: Slot): number => (vm.group ? s.groups.filter((g) => g === vm.group).length : 0);

function compareSlots(vm: PlacementVm, a: Slot, b: Slot): number {
  const load = (s: Slot): number => (s.committed + vm.cpus) / Math.max(1, s.h.cpus);
  return (b.free - a.free) || (load(a) - load(b)) || a.h.name.localeCompare(b.h.name);
}

/** The report of a VM no host takes: the code every candidate gave, or NO_DRAIN_TARGET when they differ or none exist. */
function unplaced(vm: PlacementVm, reasons: (Problem & { host: string })[]): Unplaced {
  if (reasons.length === 0) {
    return { vm: vm.name, code: 'NO_DRAIN_TARGET', message: `No other host is known to take "${vm.name}".`, reasons };
  }
  const codes = new Set(reasons.map((r) => r.code));
  const first = reasons[0] as Problem;
  const code = codes.size === 1 ? first.code : 'NO_DRAIN_TARGET';
  // One code everywhere: the sentences say enough; different codes: each host's code with its sentence.
  const each = reasons.map((r) => (codes.size === 1 ? r.message : `${r.host}: ${r.code}: ${r.message}`).replace(/\.$/, ''));
  const message = `No host can take "${vm.name}": ${each.join('; ')}.`;
  return { vm: vm.name, code, message, reasons };
}
