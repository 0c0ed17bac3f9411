import { CATALOGUE, type ErrorCode } from './catalogue.js';

export { CATALOGUE, type ErrorCode, type ErrorSpec } from './catalogue.js';

/** A typed error from the catalogue: a stable `code`, its HTTP status, and one clear sentence. */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly retryable: boolean;
  /** Structured facts behind the sentence, for callers that act on them (INCOMPATIBLE lists its problems here). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options);
    if (options?.details) this.details = options.details;
    this.name = 'FerryError';
    this.code = code;
    this.httpStatus = CATALOGUE[code].httpStatus;
    this.retryable = CATALOGUE[code].retryable;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export const isFerryError = (e: unknown): e is FerryError => e instanceof FerryError;

/** SQLite's codes (better-sqlite3's SqliteError.code) for a state database that cannot be written. */
const STATE_STORE_CODES = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|CORRUPT|NOTADB)/;

/**
 * Wraps anything thrown into a FerryError, keeping a FerryError as it is. Without a fallback of
 * the caller's, a SQLite failure of the state database is STATE_STORE_FAILED (a caller with its
 * own, such as a move's MIGRATION_FAILED, keeps it: what it does next depends on that code).
 */
export function toFerryError(e: unknown, fallback: ErrorCode = 'INTERNAL'): FerryError {
  if (e instanceof FerryError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  if (fallback === 'INTERNAL' && typeof code === 'string' && STATE_STORE_CODES.test(code)) {
    return new FerryError('STATE_STORE_FAILED', `The agent's state database failed (${code}: ${msg.replace(/\.$/, '')}).`, { cause: e });
  }
  return new FerryError(fallback, msg.endsWith('.') ? msg : `${msg}.`, { cause: e });
}

/** True when the code names a known catalogue entry (for errors decoded off the wire). */
export const isErrorCode = (c: unknown): c is ErrorCode => typeof c === 'string' && c in CATALOGUE;
