/**
 * Where the HA VMs of dead hosts restart: a pure function, tested by tables. Highest priority
 * first (ties by name, so every manager decides alike); each goes to the live member outside
 * maintenance with the most free memory that fits it, preferring a host that runs no VM of the
 * same anti-affinity group. Memory placed is counted at once, so two VMs never take the same room.
 */
import type { HaRecord, MemberRecord } from './model.js';

/** One decision: start `vm` on `to`, or leave it with the reason no host could take it. */
export type Placement = { vm: string; to: string } | { vm: string; to: null; reason: string };

/** The HA VMs that need a new host: their owner's lease is gone and their policy restarts them. */
export function orphans(records: readonly HaRecord[], alive: ReadonlySet<string>): HaRecord[] {
  return records.filter((r) => !alive.has(r.owner) && r.restart === 'always' && r.state !== 'stopped');
}

/** Which anti-affinity groups each live host holds, from the HA records it owns. */
export function groupsOnLive(records: readonly HaRecord[], alive: ReadonlySet<string>): Map<string, Set<string>> {
  const groupsOn = new Map<string, Set<string>>();
  for (const r of records) {
    if (!alive.has(r.owner) || r.spec.group === undefined) continue;
    groupsOn.set(r.owner, (groupsOn.get(r.owner) ?? new Set()).add(r.spec.group));
  }
  return groupsOn;
}

/**
 * Places `vms` on `members`. `groupsOn` tells which anti-affinity groups already run on each host
 * (from the HA records of live owners). `excluded` names hosts a VM must not go to; `preferred`, a
 * host that wins over more free memory when it fits and clashes no more than the others.
 */
export function placeRestarts(vms: readonly HaRecord[], members: readonly MemberRecord[], groupsOn: ReadonlyMap<string, ReadonlySet<string>>,
  excluded: (r: HaRecord) => ReadonlySet<string> = () => new Set(), preferred: (r: HaRecord) => string | undefined = () => undefined): Placement[] {
  const free = new Map(members.filter((m) => !m.maintenance).map((m) => [m.name, m.freeMemoryMiB]));
  const groups = new Map([...groupsOn].map(([h, g]) => [h, new Set(g)]));
  const order = [...vms].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  return order.map((r): Placement => {
    const need = r.spec.memoryMiB;
    const skip = excluded(r);
    const open = [...free].filter(([h]) => !skip.has(h));
    const fits = open.filter(([, mib]) => mib >= need);
    if (fits.length === 0) {
      const why = open.length === 0 ? 'no live host outside maintenance' : `no live host outside maintenance has ${need} MiB free`;
      return { vm: r.name, to: null, reason: skip.size > 0 ? `its start failed on ${[...skip].join(', ')}; ${why} among the others` : why };
    }
    const clash = (h: string): number => (r.spec.group !== undefined && groups.get(h)?.has(r.spec.group) ? 1 : 0);
    const first = preferred(r);
    const pref = (h: string): number => (h === first ? 0 : 1);
    fits.sort(([ha, fa], [hb, fb]) => clash(ha) - clash(hb) || pref(ha) - pref(hb) || fb - fa || ha.localeCompare(hb));
    const [to] = fits[0] as [string, number];
    free.set(to, (free.get(to) ?? 0) - need);
    if (r.spec.group !== undefined) {
      const g = groups.get(to) ?? new Set<string>();
      g.add(r.spec.group);
      groups.set(to, g);
    }
    return { vm: r.name, to };
  });
}

/**
 * HA VMs whose failback policy brings them home now: running away from a home host that is alive
 * and outside maintenance.
 */
export function failbacks(records: readonly HaRecord[], members: readonly MemberRecord[]): HaRecord[] {
  const home = new Set(members.filter((m) => !m.maintenance).map((m) => m.name));
  return records.filter((r) => r.failback === 'immediate' && r.state === 'running' && r.owner !== r.home && home.has(r.home));
}

/**
 * The HA VMs whose start failed on their live owner: the manager places them again, with
 * {@link placeRestarts} and {@link triedHosts}, like the VMs of dead hosts.
 */
export function failedStarts(records: readonly HaRecord[], alive: ReadonlySet<string>): HaRecord[] {
  return records.filter((r) => r.state === 'failed' && r.restart === 'always' && alive.has(r.owner) && (r.failedOn ?? []).includes(r.owner));
}

/** The hosts a restart of `r` must not go to: where its starts failed since it last ran. */
export const triedHosts = (r: HaRecord): ReadonlySet<string> => new Set(r.failedOn);

/**
 * HA VMs left `failed` on a live owner that no rule places (no host left to try, or failed for want
 * of room while their owner was away): the manager tries them all again after a while.
 */
export function stranded(records: readonly HaRecord[], alive: ReadonlySet<string>, placed: ReadonlySet<string>): HaRecord[] {
  return records.filter((r) => r.state === 'failed' && r.restart === 'always' && alive.has(r.owner) && !placed.has(r.name));
}
