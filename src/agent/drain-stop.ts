/**
 * What a resume during a running drain needs (maintenance.ts): which moves out of this host the
 * drain started (standalone, or asked for by the cluster's manager over drain-step), and a switch
 * that makes this host refuse the drain's further moves and `--force` stops while the resume stops
 * the drain.
 */
import { FerryError } from '../errors/index.js';
import { isTerminal, phaseOf, type JobRecord, type JobStore } from '../migration/index.js';

/**
 * A move a resume may still cancel: queued, or running forward before `finish` and not in post-copy.
 * One that is switching over (perform, QEMU told to send the last state) refuses the cancel itself
 * (MigrationService.cancel) and completes.
 */
export function cancellable(job: JobRecord): boolean {
  const s = job.state;
  if (s.status === 'queued') return true;
  return s.status === 'running' && s.direction === 'forward' && !s.postcopy && ['begin', 'prepare', 'perform'].includes(phaseOf(s));
}

export class DrainStop {
  /** How many resumes are stopping the drain now (two may wait at once; the last to end admits again). */
  private stopping = 0;
  private readonly moves = new Set<string>();

  constructor(private readonly host: string, private readonly jobs: JobStore) {}

  /** Throws MIGRATION_CANCELLED while a resume stops the drain: the drain moves and stops nothing more here. */
  admit(action: 'move' | 'stop', vm: string): void {
    if (this.stopping > 0) throw new FerryError('MIGRATION_CANCELLED', `${this.host} is resuming, which stopped its drain: "${vm}" stays here, running (no ${action}).`);
  }

  /** Starts a move of the drain here (`start`), unless a resume stops the drain, and remembers it. */
  async move(vm: string, start: () => Promise<JobRecord>): Promise<JobRecord> {
    this.admit('move', vm);
    const job = await start();
    this.started(job.id);
    return job;
  }

  /** A move the drain started here, or adopted (its job id). */
  started(id: string): void {
    for (const m of this.moves) {
      const j = this.jobs.find(m);
      if (!j || isTerminal(j.state)) this.moves.delete(m);
    }
    this.moves.add(id);
  }

  /**
   * Stops the drain while `runs()` says it runs: refuses its next steps, and cancels each of its
   * moves that has not reached its stream's end (again each round, for moves asked for meanwhile).
   * A move past that point completes: cancelling it would tell the source that the destination is
   * gone for good, and run the copy here while the destination may run the VM too. Resolves when
   * the run has ended; throws what `late()` throws past `deadlineMs`.
   */
  async stop(runs: () => boolean, cancel: (id: string) => void, late: () => void, deadlineMs: number): Promise<void> {
    this.stopping++;
    const deadline = Date.now() + deadlineMs;
    const asked = new Set<string>();
    try {
      while (runs()) {
        if (Date.now() > deadline) late();
        for (const id of this.moves) {
          const job = this.jobs.find(id);
          if (!job || asked.has(id) || !cancellable(job)) continue;
          asked.add(id);
          cancel(id);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      this.stopping--;
    }
  }
}
