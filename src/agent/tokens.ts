import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../util/index.js';
import { FerryError } from '../errors/index.js';

/**
 * What a token may do, each role including the ones before it: `viewer` reads; `operator` also
 * runs VM lifecycle, moves, cancels and drains; `admin` also changes host settings, tokens and
 * certificates.
 */
export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** True when `have` allows what `need` allows. */
export const roleAllows = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

/** A token as the API shows it: never its secret, never its hash. */
export interface TokenView {
  id: string; name: string; role: Role; createdAt: string; lastUsedAt: string | null; revoked: boolean;
}

interface Row { id: string; name: string; role: Role; created_at: string; last_used_at: string | null; revoked: number }

const view = (r: Row): TokenView => ({
  id: r.id, name: r.name, role: r.role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revoked: r.revoked !== 0,
});

/** Token names: what the audit log shows for its requests ("ci-deploy", "alice@example.org"). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const PREFIX = 'ferry_';
/** last_used_at is written at most this often per token, so reads do not each cost a write. */
const TOUCH_EVERY_MS = 10_000;

/**
 * The host's API tokens in the agent's SQLite file. A token is 32 random bytes (base64url, with a
 * `ferry_` prefix that secret scanners can match), shown once when it is created; the file keeps
 * only its SHA-256. A slow password hash (scrypt, argon2) protects guessable secrets; a 256-bit
 * random token cannot be guessed, so one SHA-256 is enough to make a stolen file useless and keeps
 * the check on every request cheap. Revoking keeps the row, so the audit log still names it.
 */
export class TokenStore {
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS tokens (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL, last_used_at TEXT, revoked INTEGER NOT NULL DEFAULT 0)`);
  }

  /** Makes a token; the answer holds its secret, which nothing can show again. */
  create(name: string, role: Role): TokenView & { token: string } {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new FerryError('INVALID_INPUT', `A token name is 1–64 letters, digits and . _ @ - starting with a letter or digit, not ${JSON.stringify(name)}.`);
    }
    if (!ROLES.includes(role)) throw new FerryError('INVALID_INPUT', `A token's role is one of ${ROLES.join(', ')}, not ${JSON.stringify(role)}.`);
    const token = PREFIX + randomBytes(32).toString('base64url');
    const id = randomBytes(6).toString('hex');
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)').run(id, name, role, hashToken(token), createdAt);
    return { id, name, role, createdAt, lastUsedAt: null, revoked: false, token };
  }

  /** Every token, newest first, revoked ones included. */
  list(): TokenView[] {
    return (this.db.prepare('SELECT * FROM tokens ORDER BY created_at DESC, id').all() as Row[]).map(view);
  }

  /** Revokes token `id` (TOKEN_NOT_FOUND when there is none); revoking twice is no error. */
  revoke(id: string): TokenView {
    const r = this.db.prepare('UPDATE tokens SET revoked = 1 WHERE id = ?').run(id);
    if (r.changes === 0) throw new FerryError('TOKEN_NOT_FOUND', `No API token with id ${JSON.stringify(id)} is known to this host.`);
    this.touched.delete(id);
    return view(this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as Row);
  }

  /** The live token whose secret is `secret`, noting its use; undefined for an unknown or revoked one. */
  verify(secret: string): TokenView | undefined {
    if (!secret.startsWith(PREFIX) || secret.length > 128) return undefined;
    const row = this.db.prepare('SELECT * FROM tokens WHERE hash = ? AND revoked = 0').get(hashToken(secret)) as Row | undefined;
    if (!row) return undefined;
    const now = Date.now();
    if (now - (this.touched.get(row.id) ?? 0) >= TOUCH_EVERY_MS) {
      this.touched.set(row.id, now);
      row.last_used_at = new Date(now).toISOString();
      // Best effort: a full or read-only state disk must not refuse every request (the audit write is caught the same way).
      try { this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(row.last_used_at, row.id); } catch { /* tried again a touch interval later */ }
    }
    return view(row);
  }
}

/** SHA-256 of a token, hex: what the tokens table stores. */
export const hashToken = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');
