/**
 * The cluster manager's work, run each second by the one agent that holds the manager key:
 * restart the HA VMs of hosts whose lease is gone, once they have had time to fence, and ask for
 * failback moves. Decisions come from placement.ts; every write is guarded by the revision read,
 * so a manager that lost its post in between, or a host claiming the VM, makes the write fail
 * instead of placing a VM twice.
 */
import { failbacks, failedStarts, groupsOnLive, orphans, placeRestarts, stranded, triedHosts } from './placement.js';
import { clearFailures, type HaEntry } from './model.js';
import type { ClusterStore } from './store.js';

/** What the manager remembers between ticks (lost when another agent takes over, which then waits afresh). */
export interface ManagerMemory {
  /** When this manager first saw each host without a lease. */
  deadSince: Map<string, number>;
  /** When this agent became manager (0: it is not). */
  electedAt: number;
  /** When this manager first saw each host with a lease (failback waits until a returned host has settled). */
  aliveSince: Map<string, number>;
  /** When this manager first saw each HA VM failed with no host left to try (it tries them all again later). */
  strandedSince: Map<string, number>;
}

/** How long a failed HA VM with no host left to try waits before every host is tried again. */
export const RETRY_ALL_AFTER_MS = 60_000;

/** How long a returned home host must hold its lease before its VMs fail back. */
export const FAILBACK_SETTLE_MS = 5_000;
/** How long after a failback move started the manager waits before asking again (the move may still run, or have failed). */
export const FAILBACK_RETRY_MS = 120_000;

/** One round of the manager's work; `entries` were read this tick. */
export async function managerTick(store: ClusterStore, entries: HaEntry[], mem: ManagerMemory, now = Date.now()): Promise<void> {
  const members = await store.members();
  const alive = new Set(members.map((m) => m.name));
  for (const h of [...mem.deadSince.keys()]) if (alive.has(h)) mem.deadSince.delete(h);
  for (const h of [...mem.aliveSince.keys()]) if (!alive.has(h)) mem.aliveSince.delete(h);
  for (const h of alive) if (!mem.aliveSince.has(h)) mem.aliveSince.set(h, now);
  const records = entries.map((e) => e.rec);
  for (const r of orphans(records, alive)) if (!mem.deadSince.has(r.owner)) mem.deadSince.set(r.owner, now);
  // A lease expires TTL after the dead host's last renewal; it fenced at 0.6 TTL. The margin
  // covers clock rate differences and a fence that takes a moment. A manager elected a moment ago
  // does not know when the lease went, so it waits the margin from its election too.
  const margin = store.config.fenceMarginSec * 1000;
  const ready = orphans(records, alive).filter((r) => now - (mem.deadSince.get(r.owner) ?? now) >= margin && now - mem.electedAt >= margin);
  const groupsOn = groupsOnLive(records, alive);
  const rev = new Map(entries.map((e) => [e.rec.name, e]));
  // The VMs of dead hosts, and those whose start failed on a live owner (a host that cannot reach
  // the disk, lacks room…), placed together: room and groups counted across them all.
  const placed = new Set<string>();
  for (const p of placeRestarts([...ready, ...failedStarts(records, alive)], members, groupsOn, triedHosts)) {
    const e = rev.get(p.vm);
    if (!e) continue;
    if (p.to === null) {
      if (e.rec.state !== 'failed' || e.rec.note !== p.reason) await store.updateHa({ ...e.rec, state: 'failed', note: p.reason }, e.rev);
      continue;
    }
    placed.add(p.vm);
    const gone = !alive.has(e.rec.owner);
    await store.updateHa({
      ...e.rec, owner: p.to, state: 'placing', restarts: e.rec.restarts + 1,
      note: `restarted on ${p.to}: ${gone ? `${e.rec.owner} lost its lease` : `its start on ${e.rec.owner} failed`}`,
    }, e.rev, gone ? { ownerGone: e.rec.owner } : {});
  }
  // Failed with no host left to try (or for want of room while its owner was away): after a while,
  // its owner tries again, and from there every host in turn (restart: always).
  const since = mem.strandedSince;
  const stuck = stranded(records, alive, placed);
  for (const vm of [...since.keys()]) if (!stuck.some((r) => r.name === vm)) since.delete(vm);
  for (const r of stuck) {
    const first = since.get(r.name) ?? now;
    since.set(r.name, first);
    const e = rev.get(r.name);
    if (!e || now - first < RETRY_ALL_AFTER_MS) continue;
    if (await store.updateHa({ ...clearFailures(e.rec), state: 'placing', note: `trying again on ${r.owner}, then on every host` }, e.rev)) since.delete(r.name);
  }
  const settled = members.filter((m) => now - (mem.aliveSince.get(m.name) ?? now) >= FAILBACK_SETTLE_MS);
  const idle = records.filter((x) => alive.has(x.owner) && now - (x.failbackAt ?? 0) >= FAILBACK_RETRY_MS);
  for (const r of failbacks(idle, settled)) {
    const e = rev.get(r.name);
    if (e && r.moveTo !== r.home) await store.updateHa({ ...r, moveTo: r.home }, e.rev);
  }
}
