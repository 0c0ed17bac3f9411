/**
 * The drain executor (Hyper-V's "Pause, drain roles"): it empties one host for maintenance. It
 * decides nothing itself — placement.ts does — and knows no transport: the caller gives it the
 * host's VMs, the other hosts, the compatibility report and a mover. Standalone, the drained
 * host's agent runs it (src/agent/maintenance.ts: peers over peer RPC, moves through its own
 * queue); in cluster mode the manager can run the same function with an inventory from etcd and a
 * mover that asks each VM's host.
 */
import { FerryError, toFerryError } from '../errors/index.js';
import { planDrain, type PlacementHost, type PlacementVm, type Placement, type Problem } from './placement.js';
import type { DrainEntry, MaintenanceRecord, MaintenanceState } from './store.js';

/** Where the drain keeps the host's state and its ledger (MaintenanceStore, or a cluster's store). */
export interface DrainLedger {
  get(): MaintenanceRecord;
  setState(state: MaintenanceState, force?: boolean): MaintenanceRecord;
  entries(): DrainEntry[];
  put(e: Omit<DrainEntry, 'updatedAt'>): void;
  clear(): void;
}

/** A VM of the host being drained, with its state (`running`, `paused`, `migrating`, `stopped`, `failed`). */
export type HostVm = PlacementVm & { state: string };

/** What {@link drainHost} needs; every call may go over the network. */
export interface DrainDeps {
  /** The host being drained. */
  host: string;
  ledger: DrainLedger;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** The VMs on the host being drained now. */
  vms(): Promise<HostVm[]>;
  /** Every other host that might take VMs (unreachable ones with `reachable: false`). */
  hosts(): Promise<PlacementHost[]>;
  /** The compatibility report of a move of `vm` to `host` (empty: it would work). */
  compare(vm: string, host: string): Promise<Problem[]>;
  /**
   * Moves `vm` to `host` within the migration limits (over them it waits queued) and resolves
   * when the move completed; throws the move's error otherwise. `onJob` hears the job id.
   */
  move(vm: string, host: string, onJob: (jobId: string) => void): Promise<void>;
  /** Stops `vm` cleanly on the host being drained (ACPI power-off, then hard after a timeout). */
  stop(vm: string): Promise<void>;
  /** Told after each change of the ledger (progress events). */
  changed?(): void;
  /**
   * True for an error that ends the whole run instead of blocking one VM (a cluster manager that
   * lost its post: the VMs can still move, the next manager moves them, and none may be stopped).
   */
  fatal?(e: FerryError): boolean;
}

/** The end of a drain run: the state it left the host in and the VMs still on it that could not move. */
export interface DrainOutcome { state: MaintenanceState; entries: DrainEntry[]; blocked: DrainEntry[] }

const ACTIVE_STATES = new Set(['running', 'paused', 'migrating']);

/**
 * Drains `d.host`: marks it `draining` (it takes no new VMs or incoming moves from then on), plans
 * where each running VM goes, starts every move at once (the migration queue holds those over
 * the limit), and waits for them. Then, with `force`, stops each VM that could not move and marks
 * it for resume. The host becomes `drained` when no VM runs on it any more; otherwise it stays
 * `draining` and the outcome lists the VMs that could not move. Running it again continues: VMs
 * that already left stay in the ledger, the others are planned afresh.
 */
export async function drainHost(d: DrainDeps, opts: { force: boolean }): Promise<DrainOutcome> {
  if (d.ledger.get().state === 'active') d.ledger.clear();
  d.ledger.setState('draining', opts.force);
  d.changed?.();
  const vms = await d.vms();
  settleEarlierRun(d, vms);
  const busy = vms.filter((v) => ACTIVE_STATES.has(v.state) && v.state !== 'running');
  for (const v of busy) {
    const code = v.state === 'migrating' ? 'VM_BUSY' : 'VM_BAD_STATE';
    block(d, v.name, null, new FerryError(code, `The VM "${v.name}" is ${v.state}; only a running VM moves live.`));
  }
  const movable = vms.filter((v) => v.state === 'running');
  const hosts = (await d.hosts()).filter((h) => h.name !== d.host);
  const plan = planDrain({ vms: movable, hosts, problems: await reports(d, movable, hosts) });
  d.log.info({ host: d.host, placements: plan.placements, unplaced: plan.unplaced.map((u) => ({ vm: u.vm, code: u.code })) }, 'drain plan');
  for (const u of plan.unplaced) block(d, u.vm, null, new FerryError(u.code, u.message));
  await Promise.all(plan.placements.map((p) => moveOne(d, p)));
  if (opts.force) await stopBlocked(d);
  return finish(d);
}

/** Entries a previous run left `moving` (the agent restarted meanwhile): moved when the VM is gone from here. */
function settleEarlierRun(d: DrainDeps, vms: HostVm[]): void {
  const here = new Set(vms.map((v) => v.name));
  for (const e of d.ledger.entries()) {
    if (e.status === 'moving' && !here.has(e.vm)) d.ledger.put({ ...e, status: 'moved', error: null });
  }
}

/** Each movable VM's report against each host that is up and in service (a failed ask counts as that host's problem). */
async function reports(d: DrainDeps, vms: PlacementVm[], hosts: PlacementHost[]): Promise<Record<string, Record<string, Problem[]>>> {
  const out: Record<string, Record<string, Problem[]>> = {};
  const usable = hosts.filter((h) => h.reachable && !h.maintenance);
  await Promise.all(vms.map(async (vm) => {
    const byHost: Record<string, Problem[]> = {};
    await Promise.all(usable.map(async (h) => {
      byHost[h.name] = await d.compare(vm.name, h.name).catch((e: unknown) => {
        const fe = toFerryError(e);
        return [{ code: fe.code, message: fe.message }];
      });
    }));
    out[vm.name] = byHost;
  }));
  return out;
}

function block(d: DrainDeps, vm: string, destination: string | null, e: FerryError): void {
  d.log.warn({ host: d.host, vm, code: e.code, err: e.message }, 'drain: VM cannot move');
  d.ledger.put({ vm, destination, status: 'blocked', jobId: null, error: { code: e.code, message: e.message } });
  d.changed?.();
}

async function moveOne(d: DrainDeps, p: Placement): Promise<void> {
  let jobId: string | null = null;
  d.ledger.put({ vm: p.vm, destination: p.host, status: 'moving', jobId, error: null });
  d.changed?.();
  try {
    await d.move(p.vm, p.host, (id) => {
      jobId = id;
      d.ledger.put({ vm: p.vm, destination: p.host, status: 'moving', jobId: id, error: null });
      d.changed?.();
    });
    d.ledger.put({ vm: p.vm, destination: p.host, status: 'moved', jobId, error: null });
    d.changed?.();
  } catch (e) {
    const fe = toFerryError(e, 'MIGRATION_FAILED');
    if (d.fatal?.(fe)) throw fe;
    block(d, p.vm, p.host, fe);
  }
}

/**
 * `--force`: stops each VM that could not move and marks it, so that resume starts it again. Not a
 * VM whose move an operator cancelled (MIGRATION_CANCELLED; a resume during the drain does that):
 * it was kept here on purpose.
 */
async function stopBlocked(d: DrainDeps): Promise<void> {
  const here = new Map((await d.vms()).map((v) => [v.name, v]));
  for (const e of d.ledger.entries()) {
    const v = here.get(e.vm);
    if (e.status !== 'blocked' || !v || !ACTIVE_STATES.has(v.state) || e.error?.code === 'MIGRATION_CANCELLED') continue;
    try {
      await d.stop(e.vm);
      d.log.info({ host: d.host, vm: e.vm, reason: e.error?.code }, 'drain --force: stopped a VM that could not move');
      d.ledger.put({ ...e, destination: null, status: 'stopped' });
    } catch (err) {
      const fe = toFerryError(err);
      if (d.fatal?.(fe)) throw fe;
      d.ledger.put({ ...e, error: { code: fe.code, message: `It could not move (${e.error?.code ?? 'unknown'}) and did not stop: ${fe.message}` } });
    }
    d.changed?.();
  }
}

/** Drained when no VM of the host has a QEMU any more; the blocked entries are those still running here. */
async function finish(d: DrainDeps): Promise<DrainOutcome> {
  const left = (await d.vms()).filter((v) => ACTIVE_STATES.has(v.state));
  const stillHere = new Set(left.map((v) => v.name));
  const state: MaintenanceState = left.length === 0 ? 'drained' : 'draining';
  d.ledger.setState(state, d.ledger.get().force);
  d.changed?.();
  const entries = d.ledger.entries();
  const blocked = entries.filter((e) => stillHere.has(e.vm));
  d.log.info({ host: d.host, state, blocked: blocked.map((e) => e.vm) }, 'drain ended');
  return { state, entries, blocked };
}
