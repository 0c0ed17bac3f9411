import type { Db } from '../util/index.js';
import type { ErrorCode } from '../errors/index.js';

/** A host in service (`active`), being emptied (`draining`) or empty for maintenance (`drained`). */
export type MaintenanceState = 'active' | 'draining' | 'drained';

/**
 * What became of one VM of a drain: `moving` (its move is queued or running), `moved` (it runs on
 * `destination`; failback brings it back), `blocked` (it could not move: `error` says why),
 * `stopped` (a forced drain stopped it here; resume starts it again), `returned` (failback or
 * resume brought it back into service here).
 */
export type DrainVmStatus = 'moving' | 'moved' | 'blocked' | 'stopped' | 'returned';

export interface DrainEntry {
  vm: string;
  destination: string | null;
  status: DrainVmStatus;
  /** The move's job id (on this host for a drain, on the other host for a failback). */
  jobId: string | null;
  error: { code: ErrorCode; message: string } | null;
  updatedAt: string;
}

/** The host's maintenance state as it is persisted. */
export interface MaintenanceRecord {
  state: MaintenanceState;
  /** When the state last changed (ISO 8601). */
  since: string | null;
  /** The drain that made the state was forced. */
  force: boolean;
}

interface EntryRow { vm: string; destination: string | null; status: DrainVmStatus; job_id: string | null; error_code: string | null; error_message: string | null; updated_at: string }

/**
 * The host's maintenance state and its drain ledger (which VM went where) in the agent's SQLite
 * file, so an agent restart mid-drain finds the host still `draining`, and a failback weeks later
 * still knows where each VM went.
 */
export class MaintenanceStore {
  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS host_maintenance (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, since TEXT, force INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS host_maintenance_remote (id INTEGER PRIMARY KEY CHECK (id = 1), runs TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS drain_vms (vm TEXT PRIMARY KEY, destination TEXT, status TEXT NOT NULL, job_id TEXT,
        error_code TEXT, error_message TEXT, updated_at TEXT NOT NULL)`);
  }

  get(): MaintenanceRecord {
    const r = this.db.prepare('SELECT state, since, force FROM host_maintenance WHERE id = 1').get() as { state: MaintenanceState; since: string | null; force: number } | undefined;
    return r ? { state: r.state, since: r.since, force: r.force === 1 } : { state: 'active', since: null, force: false };
  }

  /** Sets the state (and stamps `since` when it changes). */
  setState(state: MaintenanceState, force = false): MaintenanceRecord {
    const cur = this.get();
    const since = cur.state === state ? cur.since ?? new Date().toISOString() : new Date().toISOString();
    this.write({ state, since, force });
    return this.get();
  }

  private write(r: MaintenanceRecord): void {
    this.db.prepare(`INSERT INTO host_maintenance (id, state, since, force) VALUES (1, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, since = excluded.since, force = excluded.force`).run(r.state, r.since, r.force ? 1 : 0);
  }

  entries(): DrainEntry[] {
    return (this.db.prepare('SELECT * FROM drain_vms ORDER BY vm').all() as EntryRow[]).map((r) => ({
      vm: r.vm, destination: r.destination, status: r.status, jobId: r.job_id,
      error: r.error_code ? { code: r.error_code as ErrorCode, message: r.error_message ?? '' } : null, updatedAt: r.updated_at,
    }));
  }

  /** Records what became of one VM (replacing what was known of it). */
  put(e: Omit<DrainEntry, 'updatedAt'>): void {
    this.upsert({ ...e, updatedAt: new Date().toISOString() });
  }

  private upsert(e: DrainEntry): void {
    this.db.prepare(`INSERT INTO drain_vms (vm, destination, status, job_id, error_code, error_message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (vm) DO UPDATE SET destination = excluded.destination, status = excluded.status, job_id = excluded.job_id,
        error_code = excluded.error_code, error_message = excluded.error_message, updated_at = excluded.updated_at`)
      .run(e.vm, e.destination, e.status, e.jobId, e.error?.code ?? null, e.error?.message ?? null, e.updatedAt);
  }

  /**
   * Replaces the state and the ledger with a copy kept elsewhere, stamps and all (in cluster mode
   * the manager runs the drain and etcd holds the record; the host keeps this copy so that it
   * refuses new VMs without asking etcd, and resumes from it).
   */
  load(rec: MaintenanceRecord, entries: readonly DrainEntry[]): void {
    this.db.transaction(() => {
      this.write(rec);
      this.db.prepare('DELETE FROM drain_vms').run();
      for (const e of entries) this.upsert(e);
    })();
  }

  /**
   * In a cluster: the runs of this host's drain record as last copied from etcd (the manager runs
   * the drain), kept so that an agent restarted mid-drain shows the run before its first read of
   * etcd. `T` is the caller's shape; null: no record.
   */
  remoteRuns<T>(): T | null {
    const r = this.db.prepare('SELECT runs FROM host_maintenance_remote WHERE id = 1').get() as { runs: string } | undefined;
    return r ? (JSON.parse(r.runs) as T) : null;
  }

  setRemoteRuns(runs: unknown): void {
    if (runs === null) this.db.prepare('DELETE FROM host_maintenance_remote').run();
    else this.db.prepare('INSERT INTO host_maintenance_remote (id, runs) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET runs = excluded.runs').run(JSON.stringify(runs));
  }

  /** Forgets the ledger of an earlier maintenance (a new drain of a host in service starts afresh). */
  clear(): void {
    this.db.prepare('DELETE FROM drain_vms').run();
  }
}
