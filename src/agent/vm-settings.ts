/**
 * `ferry vm set NAME`: a VM's settings that change without a restart. Its anti-affinity group
 * (any VM; the next drain or placement uses it) and, for an HA VM, its restart priority, restart
 * policy and failback policy, which live in the cluster's record (the manager reads them at its
 * next tick). Not while a move or another action holds the VM: the spec travels with a move.
 */
import { FerryError } from '../errors/index.js';
import type { FailbackPolicy, HaChange, HaRecord, RestartPolicy } from '../cluster/index.js';
import { validateName, withGroup, type Inventory, type VmRecord, type VmSpec } from '../vm/index.js';

/** The body of PATCH /v1/vms/{name}: at least one field; `group: null` removes the group. */
export interface VmSettingsInput { group?: string | null; haPriority?: number; haRestart?: RestartPolicy; haFailback?: FailbackPolicy }

/** An HA VM's policies as the cluster holds them. */
export interface HaPolicies { priority: number; restart: RestartPolicy; failback: FailbackPolicy }

export interface VmSettingsDeps {
  inv: Inventory;
  /** The VM's lock (VmActions.tryLock): VM_BUSY while another action or a move holds it. */
  lockVm(name: string, what: string): () => void;
  /** A move of the VM this host takes part in, as source or destination. */
  moving(name: string): boolean;
  /** The cluster's record change (ClusterLink.changeHa). */
  changeHa(spec: VmSpec, c: HaChange): Promise<HaRecord>;
}

const policiesOf = (r: HaRecord): HaPolicies => ({ priority: r.priority, restart: r.restart, failback: r.failback });

/**
 * Applies `input` (the API's schema has checked its shape: at least one field) to VM `name` here;
 * answers the VM and, for an HA VM, its policies as written.
 */
export async function setVmSettings(d: VmSettingsDeps, name: string, input: VmSettingsInput): Promise<{ vm: VmRecord; ha: HaPolicies | null }> {
  if (input.group !== undefined && input.group !== null) validateName(input.group, 'anti-affinity group');
  d.inv.get(name); // VM_NOT_FOUND before VM_BUSY
  const unlock = d.lockVm(name, 'changing its settings');
  try {
    if (d.moving(name)) throw new FerryError('VM_BUSY', `The VM "${name}" is in a move; change its settings when the move has ended.`);
    const spec = d.inv.get(name).spec;
    if (!spec.ha && (input.haPriority !== undefined || input.haRestart !== undefined || input.haFailback !== undefined)) {
      throw new FerryError('VM_NOT_HA', `The VM "${name}" is not an HA VM, so it has no restart priority, restart or failback policy (they come with \`vm create --ha\`).`);
    }
    const vm = d.inv.updateSpec(withGroup(spec, input.group));
    if (!spec.ha) return { vm, ha: null };
    try {
      const rec = await d.changeHa(spec, { priority: input.haPriority, restart: input.haRestart, failback: input.haFailback, group: input.group });
      return { vm, ha: policiesOf(rec) };
    } catch (e) {
      // The cluster refused (or etcd did not answer): the local spec goes back as it was.
      d.inv.updateSpec(spec);
      throw e;
    }
  } finally {
    unlock();
  }
}
