/**
 * Migration jobs in the host's SQLite file. {@link JobStore.apply} is the one setter of a
 * job's state: it runs the step function, commits, and only then tells the listeners, so a
 * phase is on disk before the executor starts its side effects and before anyone hears of it.
 * better-sqlite3 is synchronous: when `apply` returns, the write has committed.
 */
import { randomUUID } from 'node:crypto';
import { isConstraintError, type Db } from '../util/db.js';
import { FerryError, toFerryError, type ErrorCode } from '../errors/index.js';
import {
  initialState, isTerminal, PHASES, step,
  type JobEvent, type JobRecord, type JobRole, type JobState, type JobStatus, type JobTotals, type MoveOptions, type Phase,
} from './job.js';
import type { ProgressView } from './policy.js';

interface Row {
  id: string; vm: string; source: string; destination: string; role: JobRole;
  status: JobStatus; phase: Phase; direction: 'forward' | 'rollback' | null; postcopy: number; cancelled: number;
  failed_in: Phase | null; error_code: string | null; error_message: string | null;
  options: string; progress: string | null;
  begin_at: string | null; prepare_at: string | null; perform_at: string | null; finish_at: string | null; confirm_at: string | null;
  total_ms: number | null; downtime_ms: number | null; transferred_bytes: number | null; passes: number | null;
  disk_bytes: number | null; disk_ms: number | null; encrypted: number | null;
  created_at: string; updated_at: string; ended_at: string | null;
}

/** Columns that hold the state; everything else is data about the job. */
type StateColumns = Pick<Row, 'status' | 'phase' | 'direction' | 'postcopy' | 'cancelled' | 'failed_in' | 'error_code' | 'error_message'>;

function stateToColumns(s: JobState): StateColumns {
  const none = { direction: null, postcopy: 0, cancelled: 0, failed_in: null, error_code: null, error_message: null };
  switch (s.status) {
    case 'queued': return { ...none, status: 'queued', phase: 'begin' };
    case 'completed': return { ...none, status: 'completed', phase: 'confirm', postcopy: s.postcopy ? 1 : 0 };
    case 'failed':
    case 'cancelled':
      return { ...none, status: s.status, phase: s.failedIn, failed_in: s.failedIn, error_code: s.error.code, error_message: s.error.message };
    case 'running':
      return s.direction === 'forward'
        ? { ...none, status: 'running', phase: s.phase, direction: 'forward', postcopy: s.postcopy ? 1 : 0 }
        : {
          ...none, status: 'running', phase: s.phase, direction: 'rollback', cancelled: s.cancelled ? 1 : 0,
          failed_in: s.failedIn, error_code: s.error.code, error_message: s.error.message,
        };
  }
}

function columnsToState(r: StateColumns): JobState {
  const error = { code: (r.error_code ?? 'INTERNAL') as ErrorCode, message: r.error_message ?? 'No reason was recorded.' };
  switch (r.status) {
    case 'queued': return { status: 'queued' };
    case 'completed': return r.postcopy === 1 ? { status: 'completed', postcopy: true } : { status: 'completed' };
    case 'failed':
    case 'cancelled': return { status: r.status, failedIn: r.failed_in ?? r.phase, error };
    case 'running':
      if (r.direction === 'rollback') {
        const phase = r.phase === 'finish' ? 'finish' : 'confirm';
        return { status: 'running', direction: 'rollback', phase, failedIn: r.failed_in ?? r.phase, error, cancelled: r.cancelled === 1 };
      }
      return { status: 'running', direction: 'forward', phase: r.phase, postcopy: r.postcopy === 1 };
  }
}

function fromRow(r: Row): JobRecord {
  const phaseStartedAt: JobRecord['phaseStartedAt'] = {};
  for (const p of PHASES) {
    const at = r[`${p}_at`];
    if (at !== null) phaseStartedAt[p] = at;
  }
  return {
    id: r.id, vm: r.vm, source: r.source, destination: r.destination, role: r.role,
    state: columnsToState(r),
    options: JSON.parse(r.options) as MoveOptions,
    progress: r.progress === null ? null : JSON.parse(r.progress) as ProgressView,
    phaseStartedAt,
    totals: {
      totalMs: r.total_ms, downtimeMs: r.downtime_ms, transferredBytes: r.transferred_bytes, passes: r.passes,
      diskBytes: r.disk_bytes, diskMs: r.disk_ms, encrypted: r.encrypted === null ? null : r.encrypted === 1,
    },
    createdAt: r.created_at, updatedAt: r.updated_at, endedAt: r.ended_at,
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS migration_jobs (
  id TEXT PRIMARY KEY, vm TEXT NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('source', 'destination')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  phase TEXT NOT NULL, direction TEXT, postcopy INTEGER NOT NULL DEFAULT 0, cancelled INTEGER NOT NULL DEFAULT 0,
  failed_in TEXT, error_code TEXT, error_message TEXT,
  options TEXT NOT NULL, progress TEXT,
  begin_at TEXT, prepare_at TEXT, perform_at TEXT, finish_at TEXT, confirm_at TEXT,
  total_ms INTEGER, downtime_ms INTEGER, transferred_bytes INTEGER, passes INTEGER, disk_bytes INTEGER, disk_ms INTEGER, encrypted INTEGER,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, ended_at TEXT, seq INTEGER NOT NULL);
-- One unfinished job per VM on a host: the database itself refuses a second (VM_BUSY).
CREATE UNIQUE INDEX IF NOT EXISTS migration_jobs_one_active
  ON migration_jobs (vm) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS migration_jobs_by_vm ON migration_jobs (vm, seq);`;

/** What a new record needs. The source picks the id; the destination reuses it. */
export interface NewJob {
  id?: string;
  vm: string;
  source: string;
  destination: string;
  role: JobRole;
  options: MoveOptions;
}

/** Filters for {@link JobStore.list}. */
export interface ListQuery {
  vm?: string;
  status?: JobStatus;
  /** At most this many, newest first (default 100). */
  limit?: number;
}

/** What listeners hear: every transition, every progress sample, every new job. */
export type JobChange =
  | { kind: 'created'; job: JobRecord }
  | { kind: 'transition'; job: JobRecord; from: JobState; event: JobEvent }
  | { kind: 'progress'; job: JobRecord };

/** A listener; the agent turns changes into SSE events and log lines. */
export type JobListener = (change: JobChange) => void;

/** Options of {@link JobStore}. */
export interface JobStoreOptions {
  /** The clock, for tests. */
  now?: () => Date;
  /** Told when a listener throws; the committed change stands regardless. */
  onListenerError?: (err: unknown, change: JobChange) => void;
}

/** The host's migration jobs and their history. */
export class JobStore {
  private readonly listeners: JobListener[] = [];
  private readonly now: () => Date;
  private readonly onListenerError: (err: unknown, change: JobChange) => void;

  constructor(private readonly db: Db, opts: JobStoreOptions = {}) {
    db.exec(SCHEMA);
    // Columns added after the first release: older databases get them here.
    const cols = new Set((db.prepare('PRAGMA table_info(migration_jobs)').all() as { name: string }[]).map((c) => c.name));
    for (const c of ['disk_bytes', 'disk_ms', 'encrypted']) if (!cols.has(c)) db.exec(`ALTER TABLE migration_jobs ADD COLUMN ${c} INTEGER`);
    if (!cols.has('secret')) db.exec('ALTER TABLE migration_jobs ADD COLUMN secret TEXT');
    this.now = opts.now ?? (() => new Date());
    this.onListenerError = opts.onListenerError ?? (() => undefined);
  }

  /** Adds a listener; returns the function that removes it. */
  onChange(l: JobListener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * Records a new job: queued on the source, in prepare on the destination. Throws SAME_HOST
   * when both ends are one host and VM_BUSY when the VM already has an unfinished job here.
   */
  create(j: NewJob): JobRecord {
    if (j.source === j.destination) {
      throw new FerryError('SAME_HOST', `The VM "${j.vm}" already runs on ${j.source}; choose another destination.`);
    }
    const id = j.id ?? randomUUID();
    const at = this.now().toISOString();
    const c = stateToColumns(initialState(j.role));
    const phaseAt = j.role === 'destination' ? at : null;
    try {
      this.db.prepare(`INSERT INTO migration_jobs (id, vm, source, destination, role, status, phase, direction, postcopy, cancelled,
        failed_in, error_code, error_message, options, prepare_at, created_at, updated_at, seq)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM migration_jobs))`)
        .run(id, j.vm, j.source, j.destination, j.role, c.status, c.phase, c.direction, c.postcopy, c.cancelled,
          c.failed_in, c.error_code, c.error_message, JSON.stringify(j.options), phaseAt, at, at);
    } catch (e) {
      throw this.insertError(e, j, id);
    }
    const job = this.get(id);
    this.emit({ kind: 'created', job });
    return job;
  }

  private insertError(e: unknown, j: NewJob, id: string): FerryError {
    // Only a uniqueness refusal is a duplicate or a busy VM; anything else (a full disk) is what it is.
    if (!isConstraintError(e)) return toFerryError(e);
    if (this.find(id)) return new FerryError('INVALID_INPUT', `A migration job with id ${id} already exists on this host.`, { cause: e });
    const busy = this.activeFor(j.vm);
    return new FerryError('VM_BUSY', `The VM "${j.vm}" already has a move under way (job ${busy?.id ?? 'unknown'}).`, { cause: e });
  }

  find(id: string): JobRecord | undefined {
    const r = this.db.prepare('SELECT * FROM migration_jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** The job, or MIGRATION_NOT_FOUND. */
  get(id: string): JobRecord {
    const r = this.find(id);
    if (!r) throw new FerryError('MIGRATION_NOT_FOUND', `No migration job ${id} is known to this host.`);
    return r;
  }

  /** History, newest first. */
  list(q: ListQuery = {}): JobRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.vm !== undefined) { where.push('vm = ?'); args.push(q.vm); }
    if (q.status !== undefined) { where.push('status = ?'); args.push(q.status); }
    const sql = `SELECT * FROM migration_jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit ?? 100) as Row[]).map(fromRow);
  }

  /** Unfinished jobs, oldest first: what recovery walks after a restart, and what the queue serves. */
  active(): JobRecord[] {
    return (this.db.prepare("SELECT * FROM migration_jobs WHERE status IN ('queued', 'running') ORDER BY seq").all() as Row[]).map(fromRow);
  }

  /**
   * Destination jobs of `vm` from `source` that were prepared here and never claimed (no
   * perform-ready: still in phase prepare). The source holds one job per VM, so a new move of it
   * from there supersedes them (destination.ts), and the compatibility report ignores their VM.
   */
  unclaimed(vm: string, source: string): JobRecord[] {
    return this.active().filter((j) => j.role === 'destination' && j.vm === vm && j.source === source
      && j.state.status === 'running' && j.state.phase === 'prepare');
  }

  /** Jobs running on this host now (as source or destination; queued ones are not running). */
  countRunning(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM migration_jobs WHERE status = 'running'").get() as { n: number }).n;
  }

  /** The VM's unfinished job on this host, if any. */
  activeFor(vm: string): JobRecord | undefined {
    const r = this.db.prepare("SELECT * FROM migration_jobs WHERE vm = ? AND status IN ('queued', 'running')").get(vm) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /**
   * The one setter: moves the job by `event` (JOB_BAD_PHASE if illegal), stamps a phase's
   * start the first time it is entered, and on the way out fills in `totalMs` if the executor
   * did not; commits, then tells listeners.
   */
  apply(id: string, event: JobEvent): JobRecord {
    const cur = this.get(id);
    const next = step(cur.state, event);
    const at = this.now().toISOString();
    const c = stateToColumns(next);
    const stamp = next.status === 'running' && cur.phaseStartedAt[next.phase] === undefined ? `, ${next.phase}_at = @at` : '';
    const ending = isTerminal(next) ? ', ended_at = @at, total_ms = COALESCE(total_ms, @totalMs)' : '';
    const started = cur.phaseStartedAt.begin ?? cur.phaseStartedAt.prepare ?? cur.createdAt;
    this.db.prepare(`UPDATE migration_jobs SET status = @status, phase = @phase, direction = @direction, postcopy = @postcopy,
      cancelled = @cancelled, failed_in = @failed_in, error_code = @error_code, error_message = @error_message,
      updated_at = @at${stamp}${ending} WHERE id = @id`)
      .run({ ...c, at, id, totalMs: Math.max(0, Date.parse(at) - Date.parse(started)) });
    const job = this.get(id);
    this.emit({ kind: 'transition', job, from: cur.state, event });
    return job;
  }

  /**
   * Enters the next forward (or rollback) phase and returns once that is committed: call it
   * before the phase's first side effect, so a restart finds the phase that may have acted.
   */
  enterPhase(id: string, phase: Phase): JobRecord {
    return this.apply(id, { type: 'enter', phase });
  }

  /** Saves the latest progress (not a transition) and tells listeners. */
  recordProgress(id: string, progress: ProgressView): JobRecord {
    this.mustUpdate(id, 'UPDATE migration_jobs SET progress = ?, updated_at = ? WHERE id = ?', JSON.stringify(progress), this.now().toISOString(), id);
    const job = this.get(id);
    this.emit({ kind: 'progress', job });
    return job;
  }

  /** Saves the figures the summary reports; absent fields are left as they were. */
  recordTotals(id: string, t: Partial<JobTotals>): JobRecord {
    this.mustUpdate(id, `UPDATE migration_jobs SET total_ms = COALESCE(?, total_ms), downtime_ms = COALESCE(?, downtime_ms),
      transferred_bytes = COALESCE(?, transferred_bytes), passes = COALESCE(?, passes),
      disk_bytes = COALESCE(?, disk_bytes), disk_ms = COALESCE(?, disk_ms), encrypted = COALESCE(?, encrypted), updated_at = ? WHERE id = ?`,
    t.totalMs ?? null, t.downtimeMs ?? null, t.transferredBytes ?? null, t.passes ?? null, t.diskBytes ?? null, t.diskMs ?? null,
    t.encrypted === undefined || t.encrypted === null ? null : Number(t.encrypted),
    this.now().toISOString(), id);
    return this.get(id);
  }

  /**
   * Keeps the job's one-time secret (job-secret.ts): the secret itself on the source, its SHA-256
   * on the destination. Kept apart from {@link JobRecord}, so it never reaches a view, an event or a log line.
   */
  keepSecret(id: string, value: string): void {
    this.mustUpdate(id, 'UPDATE migration_jobs SET secret = ? WHERE id = ?', value, id);
  }

  /** What {@link keepSecret} kept for the job; null when nothing was (a job of an older agent, or an unknown id). */
  secretOf(id: string): string | null {
    const r = this.db.prepare('SELECT secret FROM migration_jobs WHERE id = ?').get(id) as { secret: string | null } | undefined;
    return r?.secret ?? null;
  }

  private mustUpdate(id: string, sql: string, ...args: (string | number | null)[]): void {
    if (this.db.prepare(sql).run(...args).changes === 0) {
      throw new FerryError('MIGRATION_NOT_FOUND', `No migration job ${id} is known to this host.`);
    }
  }

  private emit(change: JobChange): void {
    // A listener's failure must neither undo nor hide a change that is already committed.
    for (const l of [...this.listeners]) {
      try { l(change); } catch (e) { this.onListenerError(e, change); }
    }
  }
}
