/**
 * A promise that settles once, with an optional timeout and AbortSignal. Commands, event
 * waits and the connection handshake all use it, so timers and abort listeners are always
 * removed, whichever way the promise settles.
 */
import type { FerryError } from '../errors/index.js';

/** What a caller may bound an operation with. */
export interface Deadline {
  /** Milliseconds; undefined or Infinity means no limit. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** How a guarded promise ended, for the owner's bookkeeping. */
export type SettleReason = 'resolved' | 'rejected' | 'timeout' | 'abort';

/** The handle an owner settles a guarded promise with. */
export interface Guarded<T> {
  readonly promise: Promise<T>;
  readonly settled: boolean;
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface GuardSpec {
  onTimeout: (ms: number) => FerryError;
  onAbort: (reason: unknown) => FerryError;
  /** Runs once, after the promise settled, whatever the reason. */
  onSettle?: (how: SettleReason) => void;
}

// setTimeout fires at once for delays above 2^31-1 ms; clamp instead.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Creates a guarded promise. An already aborted signal rejects it at once (on the same
 * tick, so a caller can check `settled` before doing any work).
 */
export function guard<T>(deadline: Deadline, spec: GuardSpec): Guarded<T> {
  let resolveP!: (v: T) => void;
  let rejectP!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolveP = res; rejectP = rej; });
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const { signal, timeoutMs } = deadline;

  const finish = (how: SettleReason, action: () => void): void => {
    if (settled) return;
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    action();
    spec.onSettle?.(how);
  };
  const onAbort = (): void => finish('abort', () => rejectP(spec.onAbort(signal?.reason)));

  const handle: Guarded<T> = {
    promise,
    get settled() { return settled; },
    resolve: (v) => finish('resolved', () => resolveP(v)),
    reject: (e) => finish('rejected', () => rejectP(e)),
  };
  if (signal?.aborted) {
    onAbort();
    return handle;
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
    const ms = Math.max(0, timeoutMs);
    timer = setTimeout(() => finish('timeout', () => rejectP(spec.onTimeout(ms))), Math.min(ms, MAX_TIMER_MS));
  }
  return handle;
}
