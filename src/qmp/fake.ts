/**
 * FakeQmp: an in-memory {@link Qmp} for unit tests elsewhere in Ferry. Scripted per
 * command, records every call, emits events on demand and can simulate QEMU going away.
 * It keeps the real client's semantics: replies arrive asynchronously, arguments and
 * returns are copied as JSON (as on the wire), timeouts and aborts work, unknown commands
 * fail with CommandNotFound.
 *
 * ```ts
 * const qmp = new FakeQmp();
 * qmp.handle('query-status', { status: 'running', running: true, singlestep: false });
 * qmp.handle('cont', () => { qmp.emit('RESUME', {}); return {}; });
 * qmp.handle('migrate', () => { throw FakeQmp.error('GenericError', 'There is a migration process already'); });
 * ```
 */
import { FerryError } from '../errors/index.js';
import { QmpBase } from './base.js';
import type { QmpArgs, QmpCommandName, QmpReturn } from './commands.js';
import { guard, type Guarded } from './deadline.js';
import { QmpError, qmpErrors, type QmpErrorClass } from './errors.js';
import type { QmpEventName, QmpEvents } from './events.js';
import type { VersionInfo } from './qapi-machine.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type ExecuteOptions } from './qmp.js';

/** A scripted answer: a fixed return, or a function of the arguments (sync or async) that may throw. */
export type FakeHandler<K extends QmpCommandName> =
  | QmpReturn<K>
  | ((args: QmpArgs<K>, call: FakeCall) => QmpReturn<K> | Promise<QmpReturn<K>>);

/** One command FakeQmp received. */
export interface FakeCall<K extends QmpCommandName = QmpCommandName> {
  command: K;
  /** A JSON copy of the arguments (undefined when none were given). */
  args: QmpArgs<K>;
  /** Date.now() when the call was made. */
  at: number;
}

/** Options for a FakeQmp. */
export interface FakeQmpOptions {
  /** What `version` and the default query-version return; QEMU 7.2.0 when absent. */
  version?: VersionInfo;
}

type AnyHandler = (args: unknown, call: FakeCall) => unknown;

const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export class FakeQmp extends QmpBase {
  readonly version: VersionInfo;
  /** Every call made, in order, including ones that failed. */
  readonly calls: FakeCall[] = [];
  private readonly handlers = new Map<string, AnyHandler>();
  private readonly pending = new Set<{ command: string; call: Guarded<unknown> }>();

  constructor(opts: FakeQmpOptions = {}) {
    super();
    this.version = opts.version ?? { qemu: { major: 7, minor: 2, micro: 0 }, package: 'ferry-fake' };
    // What any QEMU answers without scripting; replace them with handle() if needed.
    this.handle('qmp_capabilities', {});
    this.handle('query-version', () => copy(this.version));
  }

  /** Builds the error a handler throws to make the call fail as QEMU would (QMP_ERROR). */
  static error(errorClass: QmpErrorClass, desc: string): QmpError {
    return new QmpError('(fake)', { class: errorClass, desc });
  }

  /** Scripts a command, replacing any earlier handler for it. */
  handle<K extends QmpCommandName>(cmd: K, handler: FakeHandler<K>): this {
    const fn: AnyHandler = typeof handler === 'function'
      ? (handler as AnyHandler)
      : () => copy(handler);
    this.handlers.set(cmd, fn);
    return this;
  }

  /** Removes a command's handler: calls to it then fail with CommandNotFound. */
  unhandle(cmd: QmpCommandName): this {
    this.handlers.delete(cmd);
    return this;
  }

  /** The calls made to one command, in order. */
  callsTo<K extends QmpCommandName>(cmd: K): FakeCall<K>[] {
    return this.calls.filter((c): c is FakeCall<K> => c.command === cmd);
  }

  /** Delivers an event to listeners, waits and iterators, synchronously. */
  emit<E extends QmpEventName>(event: E, data: QmpEvents[E]): void {
    const now = Date.now();
    this.deliver({
      event,
      data: copy(data) as Record<string, unknown>,
      timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 },
    });
  }

  /**
   * Acts as if QEMU dropped the connection: pending calls and waits reject with QMP_CLOSED
   * (or with `reason` when it is a QMP_PROTOCOL error), 'close' listeners get `reason`.
   */
  simulateClose(reason: FerryError = new FerryError('QMP_CLOSED', 'QEMU closed the QMP connection.')): void {
    this.shutDown(reason);
  }

  execute<K extends QmpCommandName>(cmd: K, args?: QmpArgs<K>, opts: ExecuteOptions = {}): Promise<QmpReturn<K>> {
    if (this.closed) return Promise.reject(qmpErrors.notOpen(cmd, this.hub.closeReason));
    const entry = { command: cmd as string, call: undefined as unknown as Guarded<unknown> };
    entry.call = guard<unknown>({ timeoutMs: opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, signal: opts.signal }, {
      onTimeout: (ms) => qmpErrors.timeout(cmd, ms),
      onAbort: (reason) => qmpErrors.aborted(cmd, reason),
      onSettle: () => this.pending.delete(entry),
    });
    if (entry.call.settled) return entry.call.promise as Promise<QmpReturn<K>>;
    const call: FakeCall = { command: cmd, args: copy(args), at: Date.now() };
    this.calls.push(call);
    this.pending.add(entry);
    // Answer on a later tick, as a socket would, so callers cannot rely on synchronous replies.
    setImmediate(() => void this.answer(entry, call));
    return entry.call.promise as Promise<QmpReturn<K>>;
  }

  /** Closes the fake: pending calls reject with QMP_CLOSED, 'close' listeners get undefined. */
  close(): Promise<void> {
    this.shutDown(undefined);
    return Promise.resolve();
  }

  private async answer(entry: { command: string; call: Guarded<unknown> }, call: FakeCall): Promise<void> {
    if (entry.call.settled) return;
    const handler = this.handlers.get(call.command);
    try {
      if (handler === undefined) {
        throw new QmpError(call.command, { class: 'CommandNotFound', desc: `The command ${call.command} has not been found` });
      }
      const ret = await handler(copy(call.args), call);
      entry.call.resolve(ret === undefined ? {} : copy(ret));
    } catch (err) {
      entry.call.reject(this.asReply(call.command, err));
    }
  }

  /** Turns what a handler threw into what the real client would reject with. */
  private asReply(command: string, err: unknown): FerryError {
    if (err instanceof QmpError) return new QmpError(command, { class: err.errorClass, desc: err.desc });
    if (err instanceof FerryError) return err;
    return new QmpError(command, { class: 'GenericError', desc: err instanceof Error ? err.message : String(err) });
  }

  private shutDown(reason: FerryError | undefined): void {
    if (this.closed) return;
    const entries = [...this.pending];
    this.pending.clear();
    for (const { command, call } of entries) {
      call.reject(reason?.code === 'QMP_PROTOCOL' ? reason : qmpErrors.closed(command, reason));
    }
    this.markClosed(reason);
  }
}
