import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

/**
 * Opens the agent's SQLite file in WAL mode. WAL lets readers (API) run beside the writer, and
 * synchronous=NORMAL in WAL still survives a process crash, which is what an agent SIGKILL is.
 */
export function openDb(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}

/** True for SQLite's refusal of a write that breaks a UNIQUE or PRIMARY KEY (a duplicate), not for a disk that cannot be written. */
export const isConstraintError = (e: unknown): boolean => String((e as { code?: unknown } | null)?.code ?? '').startsWith('SQLITE_CONSTRAINT');
