/**
 * The ledger of a drain the cluster manager runs (cluster-drain.ts): the drained host's record in
 * etcd (`drains/<host>`), held in memory while the run goes and written back after each change.
 * drainHost() reads and writes its ledger synchronously; the writes to etcd follow one at a time,
 * each guarded by the manager key, so a manager that lost its post stops writing.
 */
import type { DrainEntry, DrainLedger, MaintenanceRecord, MaintenanceState } from '../host/index.js';
import type { DrainRecord } from './maintenance.js';

/** A DrainLedger over a record in memory; `changed` is told after each change (to write it back). */
export class RecordLedger implements DrainLedger {
  constructor(readonly rec: DrainRecord, private readonly changed: () => void) {}

  get(): MaintenanceRecord { return { state: this.rec.state, since: this.rec.since, force: this.rec.force }; }

  setState(state: MaintenanceState, force = false): MaintenanceRecord {
    if (this.rec.state !== state || this.rec.since === null) this.rec.since = new Date().toISOString();
    this.rec.state = state;
    this.rec.force = force;
    this.changed();
    return this.get();
  }

  entries(): DrainEntry[] { return [...this.rec.vms].sort((a, b) => a.vm.localeCompare(b.vm)).map((e) => ({ ...e })); }

  put(e: Omit<DrainEntry, 'updatedAt'>): void {
    const next: DrainEntry = { vm: e.vm, destination: e.destination, status: e.status, jobId: e.jobId, error: e.error, updatedAt: new Date().toISOString() };
    this.rec.vms = [...this.rec.vms.filter((x) => x.vm !== e.vm), next];
    this.changed();
  }

  clear(): void {
    this.rec.vms = [];
    this.changed();
  }
}

/** What a {@link RecordWriter} writes through: false when the guard failed (another manager now). */
export type WriteRecord = (rec: DrainRecord) => Promise<boolean>;

/**
 * Writes a record back after each change, one write at a time, the latest state only. A write that
 * etcd refused by its guard deposes the writer (`deposed`): it writes no more. One that failed (etcd
 * away) is tried again after a second while `stillManager()`.
 */
export class RecordWriter {
  deposed = false;
  private dirty = false;
  private writing: Promise<void> | null = null;

  constructor(private readonly rec: DrainRecord, private readonly write: WriteRecord, private readonly stillManager: () => boolean,
    private readonly log: { warn(o: object, msg: string): void }, private readonly retryMs = 1000) {}

  /** Marks the record changed and starts writing it unless a write is under way (that one writes again after). */
  changed(): void {
    this.dirty = true;
    this.kick();
  }

  private kick(): void {
    if (this.writing || this.deposed) return;
    // A change that came as the loop ended starts it again.
    this.writing = this.loop().finally(() => { this.writing = null; if (this.dirty) this.kick(); });
  }

  /** Resolves once the last change is in etcd, or the writer is deposed or no longer manager. */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.deposed) {
      this.dirty = false;
      const snapshot = JSON.parse(JSON.stringify(this.rec)) as DrainRecord;
      const ok = await this.write(snapshot).catch((err: unknown) => {
        this.log.warn({ host: this.rec.host, err }, 'could not write the drain record; trying again');
        return null;
      });
      if (ok === false) {
        this.deposed = true;
        this.log.warn({ host: this.rec.host }, 'this host no longer manages the cluster: it stops writing the drain record');
      } else if (ok === null) {
        if (!this.stillManager()) { this.deposed = true; return; }
        this.dirty = true;
        await new Promise((r) => setTimeout(r, this.retryMs));
      }
    }
  }
}
