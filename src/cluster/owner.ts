/**
 * What the owner of an HA VM does, beside starting it (node.ts): a failback the manager asked for,
 * taking over a stopped VM a leave handed to it (both run from the node's loop, one at a time), and
 * claiming the record for a user's start.
 */
import { FerryError } from '../errors/index.js';
import { FAILBACK_RETRY_MS } from './manager.js';
import { checkNoCopyElsewhere, clearFailures, registeredAgain, type FailbackPolicy, type HaEntry, type HaRecord, type RestartPolicy } from './model.js';
import { withGroup, type VmSpec } from '../vm/index.js';
import type { ClusterStore } from './store.js';
import type { ClusterHost, LocalHaVm } from './host.js';

/** How soon a failback refused for a passing reason before its move started is asked again. */
const FAILBACK_RETRY_SOON_MS = 15_000;

/** The node's parts these use: its store, its host, and its read-change-write of one record. */
export interface OwnerParts {
  store: ClusterStore;
  host: ClusterHost;
  update(name: string, change: (r: HaRecord) => HaRecord | undefined): Promise<boolean>;
  /** The cluster's fence margin, ms: how late a cut-off host may still stop its VMs after its lease is gone. */
  fenceMarginMs: number;
  /** When this node first saw each hand-over mark (its own clock). */
  handOversSeen: Map<string, number>;
  /** Creates a record owned by this host, only while its lease lives (ClusterStore.createHa's holder; CLUSTER_UNAVAILABLE without one). */
  createOwn(rec: HaRecord): Promise<void>;
}

/**
 * `update` of the record of this very VM (its uuid) when this host owns it: the record as written,
 * or else the record found instead (undefined: there is none). A record found that is this host's
 * and this VM's kept changing under the guarded writes.
 */
async function updateOwn(update: OwnerParts['update'], host: string, spec: VmSpec, change: (r: HaRecord) => HaRecord): Promise<{ written: HaRecord } | { found: HaRecord | undefined }> {
  let found: HaRecord | undefined;
  let written: HaRecord | undefined;
  const done = await update(spec.name, (r) => {
    found = r;
    written = r.owner === host && r.spec.uuid === spec.uuid ? change(r) : undefined;
    return written;
  });
  return done && written ? { written } : { found };
}

/** Moves an HA VM this host owns to where the manager asked (`moveTo`), marking the attempt first. */
export async function failback({ store, host, update }: OwnerParts, rec: HaRecord, rev: string): Promise<void> {
  const to = rec.moveTo ?? rec.home;
  const { moveTo: _done, ...rest } = rec;
  if (!(await store.updateHa({ ...rest, failbackAt: Date.now() }, rev))) return;
  if (to === host.name) return;
  host.log.info({ vm: rec.name, to }, 'failback: moving an HA VM home');
  try {
    await host.moveVm(rec.name, to);
  } catch (e) {
    // Refused before it started for a passing reason (an error the catalogue marks retryable: a
    // busy VM, a host that did not answer…): ask again soon, not after the wait meant for a move
    // that may still run. Other refusals (an incompatible host, moves disabled) wait 2 minutes.
    const passing = e instanceof FerryError && e.retryable;
    host.log.warn({ vm: rec.name, to, err: e }, `failback move did not start; the manager asks again in ${passing ? FAILBACK_RETRY_SOON_MS / 1000 : FAILBACK_RETRY_MS / 1000} s`);
    if (!passing) return;
    await update(rec.name, (r) => (r.owner === host.name && r.failbackAt !== undefined ? { ...r, failbackAt: Date.now() - FAILBACK_RETRY_MS + FAILBACK_RETRY_SOON_MS } : undefined))
      .catch((err: unknown) => host.log.warn({ vm: rec.name, err }, 'could not ask for the failback again'));
  }
}

/**
 * An HA VM a leave handed over to this host, stopped (its owner left the cluster for good): records
 * it here, unless it is already, so that a user can start it; then clears the mark, guarded by the
 * revision read (a write in between: the next tick sees the mark again, and recording is idempotent).
 * Not before the fence margin has passed since this host first saw the mark, as the manager waits
 * before a restart: a cut-off former owner may be late in stopping its copy. A VM of that name that
 * is another one (VM_EXISTS) keeps the mark, and the record says why.
 */
export async function adopt(p: OwnerParts, rec: HaRecord, rev: string, known: boolean): Promise<void> {
  const { store, host } = p;
  const first = p.handOversSeen.get(rec.name) ?? Date.now();
  p.handOversSeen.set(rec.name, first);
  if (Date.now() - first < p.fenceMarginMs) return;
  try {
    if (!known) await host.define(rec.spec);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    host.log.warn({ vm: rec.name, err: e }, 'could not take over a stopped HA VM handed over by a leave');
    const note = `handed over from ${rec.handedOverFrom ?? '?'} to ${host.name}, which could not record it: ${why}`;
    if (rec.note !== note) await store.updateHa({ ...rec, note }, rev);
    return;
  }
  const { handedOverFrom: from, ...rest } = rec;
  if (await store.updateHa(rest, rev)) {
    p.handOversSeen.delete(rec.name);
    host.log.info({ vm: rec.name, from }, 'took over a stopped HA VM from a host that left the cluster');
  }
}

/**
 * A user's start of an HA VM here: claims its record first (owner this host, `placing`, failed
 * starts forgotten), guarded by revision, so that the manager does not give it to another host
 * while this one boots it. VM_BAD_STATE when another host owns it, when the record is another VM's
 * of the same name (another uuid), or when there is no record: the VM was deleted on another host
 * while this one was away, or the cluster's data was lost, and this host does not start a copy the
 * cluster does not know (another host may run, or own, a VM of that name on the same disks), unless
 * the user says `register`: then a record owned here is created (only if none of that name exists),
 * once every other member answered that it runs no VM of that name (model.ts checkNoCopyElsewhere).
 * VM_BUSY when the record kept changing.
 */
export async function claimForStart({ store, host, update, createOwn }: OwnerParts, spec: VmSpec, register = false): Promise<void> {
  const u = await updateOwn(update, host.name, spec, (r) => ({ ...clearFailures(r), state: 'placing', note: `started by a user on ${host.name}` }));
  if ('written' in u) return;
  const r = u.found;
  if (r === undefined && register) {
    // etcd cannot tell whether another member runs a copy: each one is asked.
    const others = (await store.members()).filter((m) => m.name !== host.name).map(({ name, url }) => ({ name, url }));
    checkNoCopyElsewhere(spec.name, host.name, await host.peerVms(others));
    try {
      await createOwn({ ...registeredAgain(spec, host.name, host.recallPolicies?.(spec.uuid), `registered again by a user's start on ${host.name}`), state: 'placing' });
    } catch (e) {
      if (!(e instanceof FerryError && e.code === 'VM_EXISTS')) throw e;
      throw new FerryError('VM_BUSY', `A record of "${spec.name}" appeared in the cluster while this start registered it; try again.`);
    }
    return;
  }
  if (r === undefined) {
    throw new FerryError('VM_BAD_STATE', `The HA VM "${spec.name}" has no record in the cluster: it was deleted on another host while ${host.name} was away, or the cluster's data was lost. ${host.name} does not start a copy the cluster does not know (another host may run or own a VM of that name). If you know none does (etcd's data was lost), \`ferry vm start ${spec.name} --register\` registers it again here and starts it; \`ferry vm delete ${spec.name}\` forgets this copy and keeps its disks.`);
  }
  if (r.spec.uuid !== spec.uuid) {
    throw new FerryError('VM_BAD_STATE', `Another VM named "${spec.name}" (uuid ${r.spec.uuid}) is registered in the cluster, owned by ${r.owner}; this copy on ${host.name} (uuid ${spec.uuid}) is not it and does not start.`);
  }
  if (r.owner !== host.name) throw new FerryError('VM_BAD_STATE', `The HA VM "${spec.name}" runs on ${r.owner} now (the cluster restarted it there); start it there.`);
  throw new FerryError('VM_BUSY', `The cluster record of "${spec.name}" kept changing while this start claimed it; try again.`);
}

/** What `ferry vm set` may change of an HA VM: its policies, and its anti-affinity group (null: none). */
export interface HaChange { priority?: number; restart?: RestartPolicy; failback?: FailbackPolicy; group?: string | null }

/** A record with `c` applied (a field left undefined keeps its value). */
export function withChange(r: HaRecord, c: HaChange): HaRecord {
  return { ...r, priority: c.priority ?? r.priority, restart: c.restart ?? r.restart, failback: c.failback ?? r.failback, spec: withGroup(r.spec, c.group) };
}

/**
 * A user's change of an HA VM's policies or group on the host that owns it, guarded by revision;
 * answers the record as written. VM_BAD_STATE when this copy is not the one the cluster knows
 * (no record, another uuid, another owner), VM_BUSY when the record kept changing.
 */
export async function changeHa({ host, update }: OwnerParts, spec: VmSpec, c: HaChange): Promise<HaRecord> {
  const u = await updateOwn(update, host.name, spec, (r) => withChange(r, c));
  if ('written' in u) return u.written;
  const r = u.found;
  if (r === undefined) throw new FerryError('VM_BAD_STATE', `The HA VM "${spec.name}" has no record in the cluster, so it has no policies to change here.`);
  if (r.spec.uuid !== spec.uuid) throw new FerryError('VM_BAD_STATE', `Another VM named "${spec.name}" (uuid ${r.spec.uuid}) is registered in the cluster; this copy on ${host.name} is not it.`);
  if (r.owner !== host.name) throw new FerryError('VM_BAD_STATE', `The HA VM "${spec.name}" belongs to ${r.owner} now; change its settings there.`);
  throw new FerryError('VM_BUSY', `The cluster record of "${spec.name}" kept changing while its settings were written; try again.`);
}

/**
 * Running HA VMs here that the cluster has no record of are registered again, owned by this host,
 * with the policies and home it last saw in the VM's record (ClusterHost.recallPolicies), else the
 * defaults. A running HA VM always has a record (a new one is registered before
 * it starts; a delete powers it off before removing the record), so one without is what a loss of
 * etcd's data leaves, or a record removed by hand: left so, the VM would run unprotected. Only an
 * idle VM (no move, no action) seen without a record for the fence margin (`missingSince`, this
 * host's clock), and only if no record of that name exists: another VM's record of that name wins.
 * Only while this host's lease lives: once it has expired, the manager may place a record at once,
 * and this host is about to fence what has one.
 */
export async function reRegister(p: OwnerParts, local: readonly LocalHaVm[], entries: readonly HaEntry[], missingSince: Map<string, number>): Promise<void> {
  const { host } = p;
  const named = new Set(entries.map((e) => e.rec.name));
  const missing = local.filter((v) => v.running && !v.busy && !named.has(v.name));
  for (const k of missingSince.keys()) if (!missing.some((v) => v.name === k)) missingSince.delete(k);
  for (const v of missing) {
    const first = missingSince.get(v.name) ?? Date.now();
    missingSince.set(v.name, first);
    if (Date.now() - first < p.fenceMarginMs) continue;
    missingSince.delete(v.name);
    const kept = host.recallPolicies?.(v.uuid);
    const note = `registered again by ${host.name}, where it ran without a record (etcd's data lost, or the record removed): ${kept ? `the policies and home of its last record seen here${kept.asOf ? ` (of ${kept.asOf})` : ''}` : 'default policies'}; \`ferry vm set\` changes the policies, a move the home`;
    // Under the VM's lock: a user's stop or delete of it meanwhile is refused (VM_BUSY); after, it finds the record.
    await host.whileIdle?.(v.name, async (spec) => {
      if (spec.uuid !== v.uuid) return;
      try {
        await p.createOwn(registeredAgain(spec, host.name, kept, note));
        host.log.warn({ vm: v.name }, 'an HA VM running here had no record in the cluster: registered it again');
      } catch (e) {
        // VM_EXISTS: a record of that name appeared meanwhile (the next tick sees it); or no lease now.
        host.log.warn({ vm: v.name, err: e }, 'could not register again an HA VM running here without a record');
      }
    });
  }
}
