/**
 * Leaving maintenance (Hyper-V's "Resume, fail roles back"): the host takes VMs again, the VMs a
 * forced drain stopped start again, and with failback the VMs the drain moved away come back.
 */
import { FerryError, toFerryError } from '../errors/index.js';
import type { DrainLedger } from './drain.js';
import type { DrainEntry } from './store.js';

/** What {@link resumeHost} needs. */
export interface ResumeDeps {
  host: string;
  ledger: DrainLedger;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Starts a stopped VM of this host. */
  start(vm: string): Promise<void>;
  /** The host the VM runs on now, or null when no host has it. */
  locate(vm: string): Promise<string | null>;
  /** Moves `vm` from host `from` back to the resumed host; resolves when that move completed. `onJob` hears the job id. */
  moveBack(vm: string, from: string, onJob: (jobId: string) => void): Promise<void>;
  changed?(): void;
}

/** The end of a resume: what came back, and what did not (with why). */
export interface ResumeOutcome { returned: DrainEntry[]; failed: DrainEntry[] }

/**
 * Puts the host back in service, then starts the VMs a forced drain stopped and, with `failback`,
 * moves each VM the drain moved away back from wherever it runs now. The moves from one host go
 * together (its queue keeps them within its limits); hosts take turns, so two sources never race
 * for this host's slots.
 */
export async function resumeHost(d: ResumeDeps, opts: { failback: boolean }): Promise<ResumeOutcome> {
  d.ledger.setState('active');
  d.changed?.();
  const done: DrainEntry[] = [];
  const failed: DrainEntry[] = [];
  const settle = (e: DrainEntry, err?: unknown): void => {
    const fe = err === undefined ? undefined : toFerryError(err);
    const next = { ...e, ...(fe ? { error: { code: fe.code, message: fe.message } } : { status: 'returned' as const, error: null }) };
    d.ledger.put(next);
    (fe ? failed : done).push({ ...next, updatedAt: new Date().toISOString() });
    if (fe) d.log.warn({ host: d.host, vm: e.vm, code: fe.code, err: fe.message }, 'resume: VM did not come back');
    d.changed?.();
  };
  for (const e of d.ledger.entries().filter((x) => x.status === 'stopped')) {
    await d.start(e.vm).then(() => settle(e), (err: unknown) => settle(e, err));
  }
  if (opts.failback) await failBack(d, settle);
  d.log.info({ host: d.host, returned: done.map((e) => e.vm), failed: failed.map((e) => e.vm) }, 'resume ended');
  return { returned: done, failed };
}

async function failBack(d: ResumeDeps, settle: (e: DrainEntry, err?: unknown) => void): Promise<void> {
  const bySource = new Map<string, DrainEntry[]>();
  for (const e of d.ledger.entries().filter((x) => x.status === 'moved')) {
    const at = await d.locate(e.vm).catch(() => null);
    if (at === d.host) { settle(e); continue; }
    if (at === null) {
      settle(e, new FerryError('VM_NOT_FOUND', `The VM "${e.vm}" that the drain moved to ${e.destination ?? 'another host'} is on no host that answered.`));
      continue;
    }
    bySource.set(at, [...(bySource.get(at) ?? []), e]);
  }
  for (const [from, list] of bySource) {
    await Promise.all(list.map((e) => d.moveBack(e.vm, from, (jobId) => { d.ledger.put({ ...e, jobId }); d.changed?.(); })
      .then(() => settle(e), (err: unknown) => settle(e, err))));
  }
}
