/**
 * The event half of {@link Qmp}, shared by QmpClient and FakeQmp: listeners, waits,
 * iterators and the close notification all go through one EventHub.
 */
import type { FerryError } from '../errors/index.js';
import type { QmpArgs, QmpCommandName, QmpReturn } from './commands.js';
import {
  EventHub, type QmpAnyEventListener, type QmpCloseListener, type QmpEventListener, type QmpEventOf,
} from './event-hub.js';
import type { QmpEvent, QmpEventName, QmpRawEvent } from './events.js';
import type { VersionInfo } from './qapi-machine.js';
import type { ExecuteOptions, Qmp, QmpEventPredicate, WaitOptions } from './qmp.js';

type AnyListener = QmpEventListener<QmpEventName> | QmpAnyEventListener | QmpCloseListener;

export abstract class QmpBase implements Qmp {
  protected readonly hub = new EventHub();

  abstract readonly version: VersionInfo;
  abstract execute<K extends QmpCommandName>(cmd: K, args?: QmpArgs<K>, opts?: ExecuteOptions): Promise<QmpReturn<K>>;
  abstract close(): Promise<void>;

  get closed(): boolean { return this.hub.closed; }

  on<E extends QmpEventName>(event: E, listener: QmpEventListener<E>): this;
  on(event: '*', listener: QmpAnyEventListener): this;
  on(event: 'close', listener: QmpCloseListener): this;
  on(event: string, listener: AnyListener): this {
    this.hub.add(event, listener as (...args: never[]) => void);
    return this;
  }

  off<E extends QmpEventName>(event: E, listener: QmpEventListener<E>): this;
  off(event: '*', listener: QmpAnyEventListener): this;
  off(event: 'close', listener: QmpCloseListener): this;
  off(event: string, listener: AnyListener): this {
    this.hub.remove(event, listener as (...args: never[]) => void);
    return this;
  }

  waitForEvent<E extends QmpEventName>(
    event: E, predicate?: QmpEventPredicate<E>, opts: WaitOptions = {},
  ): Promise<QmpEvent<E>> {
    return this.hub.waitFor(event, predicate, opts);
  }

  events<E extends QmpEventName = QmpEventName>(
    names?: readonly E[], opts: { signal?: AbortSignal } = {},
  ): AsyncIterableIterator<QmpEventOf<E>> {
    return this.hub.iterate(names, opts.signal);
  }

  /** Delivers an event to everyone listening. */
  protected deliver(ev: QmpRawEvent): void {
    this.hub.dispatch(ev);
  }

  /** Marks the session closed and notifies listeners and waits once. */
  protected markClosed(reason: FerryError | undefined): void {
    this.hub.close(reason);
  }
}
