/**
 * The `Qmp` interface: what the rest of Ferry depends on. QmpClient implements it over a
 * real socket and FakeQmp in memory, so code above src/qmp never needs a live QEMU in unit tests.
 */
import type { QmpArgs, QmpCommandName, QmpReturn } from './commands.js';
import type { QmpAnyEventListener, QmpCloseListener, QmpEventListener, QmpEventOf } from './event-hub.js';
import type { QmpEvent, QmpEventName, QmpEvents } from './events.js';
import type { VersionInfo } from './qapi-machine.js';

/** Default time a command may take before it fails with QMP_TIMEOUT. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** Per-call bounds for {@link Qmp.execute}. */
export interface ExecuteOptions {
  /** Milliseconds before QMP_TIMEOUT; default {@link DEFAULT_COMMAND_TIMEOUT_MS}, Infinity for none. */
  timeoutMs?: number;
  /** Rejects the call with ABORTED. QEMU still runs a command that was already sent. */
  signal?: AbortSignal;
}

/** Bounds for {@link Qmp.waitForEvent}: no timeout unless given. */
export interface WaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A matcher for {@link Qmp.waitForEvent}. */
export type QmpEventPredicate<E extends QmpEventName> = (data: QmpEvents[E], event: QmpEvent<E>) => boolean;

/** A QMP session with one QEMU. */
export interface Qmp {
  /** QEMU's version, from the greeting. */
  readonly version: VersionInfo;
  /** True once the connection closed (by either side); every later call fails with QMP_CLOSED. */
  readonly closed: boolean;

  /**
   * Sends a command and resolves with its `return`. Rejects with a {@link QmpError}
   * (QMP_ERROR) when QEMU refuses it, QMP_TIMEOUT, ABORTED, QMP_CLOSED or QMP_PROTOCOL.
   */
  execute<K extends QmpCommandName>(cmd: K, args?: QmpArgs<K>, opts?: ExecuteOptions): Promise<QmpReturn<K>>;

  /** Calls `listener` for every event of that name, synchronously, in arrival order. */
  on<E extends QmpEventName>(event: E, listener: QmpEventListener<E>): this;
  /** Calls `listener` for every event, known to the typed map or not. */
  on(event: '*', listener: QmpAnyEventListener): this;
  /** Calls `listener` once when the connection closes (reason undefined when close() was called). */
  on(event: 'close', listener: QmpCloseListener): this;

  /** Removes a listener added with on(). */
  off<E extends QmpEventName>(event: E, listener: QmpEventListener<E>): this;
  off(event: '*', listener: QmpAnyEventListener): this;
  off(event: 'close', listener: QmpCloseListener): this;

  /**
   * Resolves with the first event of that name (and matching `predicate`) that arrives
   * after the call. QEMU often emits an event before the reply of the command that caused it
   * (RESUME before cont's return), so start the wait before executing the command.
   * Rejects with QMP_TIMEOUT, ABORTED, or QMP_CLOSED when the connection closes.
   */
  waitForEvent<E extends QmpEventName>(
    event: E, predicate?: QmpEventPredicate<E>, opts?: WaitOptions,
  ): Promise<QmpEvent<E>>;

  /**
   * Iterates over events of the given names (all names of the typed map when absent) from
   * now on; unread events are buffered. Ends when the connection closes; break out of the
   * loop or abort `signal` (which throws ABORTED) to stop early.
   */
  events<E extends QmpEventName = QmpEventName>(
    names?: readonly E[], opts?: { signal?: AbortSignal },
  ): AsyncIterableIterator<QmpEventOf<E>>;

  /** Closes the connection; pending calls reject with QMP_CLOSED. Safe to call twice. */
  close(): Promise<void>;
}
