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
 */
import type { ClusterHost, LocalHaVm } from './host.js';
import type { HaEntry } from './model.js';

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
  const ha = new Set(entries.map((e) => e.rec.name));
  return local.flatMap((v) => (v.incomingFrom !== undefined && ha.has(v.name) && !members.has(v.incomingFrom)
    ? [{ vm: v.name, source: v.incomingFrom }] : []));
}

/** Rolls back, in the background, each move into this host whose source lost its lease (see the top of this file). */
export function abandonStranded(host: ClusterHost, entries: readonly HaEntry[], members: readonly { name: string }[]): void {
  const abandon = host.abandonIncoming;
  if (!abandon) return;
  for (const s of strandedIncoming(host.localHa(), entries, new Set(members.map((m) => m.name)))) {
    const why = `The source ${s.source} lost its cluster lease during the move of "${s.vm}", so it powered the VM off there (fencing); ${host.name} rolled back its half of the move, and the cluster restarts the VM.`;
    host.log.warn({ vm: s.vm, source: s.source }, 'the source of an incoming move of an HA VM lost its cluster lease: rolling the move back here');
    void abandon(s.vm, why).catch((err: unknown) => host.log.error({ vm: s.vm, err }, 'could not roll back an incoming move whose source lost its lease'));
  }
}
