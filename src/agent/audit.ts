import type { Db } from '../util/index.js';

/** One mutating API request: who, what, when, and how it ended. */
export interface AuditEntry {
  id: number;
  at: string;
  /** The token's id, or null for the local unix socket or a request without a valid token. */
  tokenId: string | null;
  /** The token's name, `local-socket`, or `anonymous`. */
  who: string;
  method: string;
  /** The route's pattern (`/v1/vms/:name`), or the path when no route matched. */
  route: string;
  vm: string | null;
  job: string | null;
  /** The HTTP status of the answer. */
  status: number;
}

export type AuditRecord = Omit<AuditEntry, 'id' | 'at'>;

interface Row { id: number; at: string; token_id: string | null; who: string; method: string; route: string; vm: string | null; job: string | null; status: number }

/** Rows kept; older ones go as new ones come (the pino log line of each request stays in the journal). */
const KEEP = 100_000;

/** The agent's audit log: an append-only SQLite table of mutating API requests, newest kept. */
export class AuditLog {
  private appended = 0;

  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, token_id TEXT, who TEXT NOT NULL, method TEXT NOT NULL,
      route TEXT NOT NULL, vm TEXT, job TEXT, status INTEGER NOT NULL)`);
  }

  append(e: AuditRecord): AuditEntry {
    const at = new Date().toISOString();
    const r = this.db.prepare('INSERT INTO audit (at, token_id, who, method, route, vm, job, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(at, e.tokenId, e.who, e.method, e.route.slice(0, 512), e.vm?.slice(0, 128) ?? null, e.job?.slice(0, 128) ?? null, e.status);
    if (++this.appended % 1000 === 0) this.db.prepare('DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?').run(KEEP);
    return { id: Number(r.lastInsertRowid), at, ...e };
  }

  /** The newest `limit` entries, newest first. */
  list(limit = 100): AuditEntry[] {
    const rows = this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as Row[];
    return rows.map((r) => ({ id: r.id, at: r.at, tokenId: r.token_id, who: r.who, method: r.method, route: r.route, vm: r.vm, job: r.job, status: r.status }));
  }
}
