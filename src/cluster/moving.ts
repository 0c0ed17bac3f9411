/**
 * HA VMs in the middle of a live move, decided apart from done (node.ts acts on it).
 *
 * A move has a QEMU of the VM on both hosts: the source's runs the guest until the switch-over,
 * the destination's waits for the stream (`-incoming`) and runs the guest after it. A host that must
 * fence powers off every one of them, and its watchdog covers them all. Fencing only running VMs
 * left a source cut off mid-move running the guest while the survivors restarted it from the same
 * disks, and an incoming QEMU that could still receive the rest of the stream and run it.
 *
 * The other end: a destination whose move's source holds no lease any more (its member key is gone
 * from etcd) knows that the source powered its QEMU off before the lease could expire (its own
 * fence at 0.6 TTL, or its watchdog at 0.75; fencing.ts). Its incoming QEMU, which has not run the
 * VM, then waits for a stream that will never complete, while the cluster restarts the VM from its
 * disks, maybe on this very host. So the destination rolls its half back at once, instead of
 * holding the VM's name, memory and move slot until a source that may never come back cancels.
 *
 * Past the switch-over it is the other way round: a source whose stream completed and whose
 * destination lost its lease gives up its paused copy (strandedOutgoing), and the destination,
 * back, ends its record of a move that ran the VM there and lost it since as the source ended it.
 */
import type { ClusterHost, LocalHaVm } from './host.js';
import { recordKey, vmKey, type HaEntry } from './model.js';

/** Whether a local VM is the copy of one of the records (the same name and uuid). */
function recorded(entries: readonly HaEntry[]): (v: LocalHaVm) => boolean {
  const ids = new Set(entries.map((e) => recordKey(e.rec)));
  return (v) => ids.has(vmKey(v));
}

/** The HA VMs a fence powers off and the watchdog covers: each one with a QEMU here, whatever that QEMU does. */
export function fenceTargets(local: readonly LocalHaVm[]): string[] {
  return local.filter((v) => v.qemu).map((v) => v.name);
}

/** An incoming move of an HA VM whose source holds no lease. */
export interface StrandedMove { vm: string; source: string }

/**
 * The moves into this host that it gives up: an HA VM (one with a record in etcd) whose QEMU here
 * is an incoming one, from a source that is not among `members` (the member keys just read, which
 * exist only while their host's lease lives).
 */
export function strandedIncoming(local: readonly LocalHaVm[], entries: readonly HaEntry[], members: ReadonlySet<string>): StrandedMove[] {
  const ha = recorded(entries);
  return local.flatMap((v) => (v.incomingFrom !== undefined && ha(v) && !members.has(v.incomingFrom)
    ? [{ vm: v.name, source: v.incomingFrom }] : []));
}

/**
 * The moves from this host whose stream completed and whose destination holds no lease: the
 * destination ran the VM and has powered it off since (fencing, or its watchdog), so the copy here,
 * paused at the switch-over, is older than the VM's disks and must not run; the VM must be
 * restarted from its disks. Without this the source waits for the destination for as long as it
 * is cut off, and the VM runs nowhere.
 */
export function strandedOutgoing(local: readonly LocalHaVm[], entries: readonly HaEntry[], members: ReadonlySet<string>): { vm: string; destination: string }[] {
  const ha = recorded(entries);
  return local.flatMap((v) => (v.sentTo !== undefined && ha(v) && !members.has(v.sentTo) ? [{ vm: v.name, destination: v.sentTo }] : []));
}

/**
 * What settleMoves remembers between ticks: the VMs being settled now (`busy`), and since when each
 * outgoing move's destination has been seen without a lease (`goneSince`, keyed `vm>destination`).
 */
export interface SettleMemory { busy: Set<string>; goneSince: Map<string, number> }

/**
 * Settles, in the background, what a cut-off end of a move left (see the top of this file and
 * strandedOutgoing): a move into this host whose source lost its lease is rolled back; a move from
 * this host whose destination lost its lease after the switch-over gives up its paused copy; and a
 * move that ran the VM here and lost it since (this host was cut off) ends as its source ended it.
 * Each at most once at a time (`memory.busy`).
 *
 * The outgoing rule waits until the destination has been seen without a lease for `marginMs` (the
 * cluster's fence margin), as the manager does before it places a dead host's VMs: giving up ends
 * the move, and this host then starts the VM again if etcd names it. A member key can expire before
 * the destination's fence has powered the VM off (a fence check under way may take a few seconds
 * more, and the watchdog is fed up to 0.6 × the margin ahead: fencing.ts, watchdogDeadline).
 */
export function settleMoves(host: ClusterHost, entries: readonly HaEntry[], members: readonly { name: string }[], memory: SettleMemory,
  marginMs: number, now = Date.now()): void {
  const { busy, goneSince } = memory;
  const live = new Set(members.map((m) => m.name));
  const local = host.localHa();
  const run = (vm: string, msg: string, fn: (() => Promise<void>) | undefined): void => {
    if (!fn || busy.has(vm)) return;
    busy.add(vm);
    host.log.warn({ vm }, msg);
    void fn().catch((err: unknown) => host.log.error({ vm, err }, `failed: ${msg}`)).finally(() => busy.delete(vm));
  };
  const abandonIn = host.abandonIncoming?.bind(host);
  const abandonOut = host.abandonOutgoing?.bind(host);
  const settle = host.settleArrival?.bind(host);
  for (const s of strandedIncoming(local, entries, live)) {
    const why = `The source ${s.source} lost its cluster lease during the move of "${s.vm}", so it powered the VM off there (fencing); ${host.name} rolled back its half of the move, and the cluster restarts the VM.`;
    run(s.vm, `the source ${s.source} of an incoming move lost its cluster lease: rolling the move back here`, abandonIn && (() => abandonIn(s.vm, why)));
  }
  const outgoing = strandedOutgoing(local, entries, live);
  const seen = new Set(outgoing.map((s) => `${s.vm}>${s.destination}`));
  for (const k of goneSince.keys()) if (!seen.has(k)) goneSince.delete(k);
  for (const s of outgoing) {
    const since = goneSince.get(`${s.vm}>${s.destination}`) ?? now;
    goneSince.set(`${s.vm}>${s.destination}`, since);
    if (now - since < marginMs) continue;
    const why = `The destination ${s.destination} lost its cluster lease after the switch-over of "${s.vm}", so it powered the VM off there (fencing); ${host.name} powered off its own copy, older than what ran there, and the cluster restarts the VM from its disks.`;
    run(s.vm, `the destination ${s.destination} lost its cluster lease after the switch-over: asking it, then powering off the paused copy here unless it answers`, abandonOut && (() => abandonOut(s.vm, why)));
  }
  for (const v of local.filter((x) => x.lostArrivalFrom !== undefined)) {
    run(v.name, `the VM ran here after a move from ${v.lostArrivalFrom ?? '?'} and was powered off since: ending the move as its source did`, settle && (() => settle(v.name)));
  }
}
