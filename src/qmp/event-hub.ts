/**
 * Delivers QMP events to listeners, one-shot waits and async iterators, and tells them
 * all when the connection closes. Shared by QmpClient and FakeQmp so both behave alike.
 */
import type { FerryError } from '../errors/index.js';
import { guard, type Deadline } from './deadline.js';
import { qmpErrors } from './errors.js';
import {
  isKnownEvent, QMP_EVENT_NAMES, type QmpEvent, type QmpEventName, type QmpEvents, type QmpRawEvent,
} from './events.js';

/** A listener for one event name: the event's data first, the whole event second. */
export type QmpEventListener<E extends QmpEventName> = (data: QmpEvents[E], event: QmpEvent<E>) => void;

/** A listener for every event, including names the typed map does not know. */
export type QmpAnyEventListener = (event: QmpRawEvent) => void;

/** Called once when the connection closes: no reason for a close the owner asked for. */
export type QmpCloseListener = (reason: FerryError | undefined) => void;

/** The events of a set of names, as a union that narrows on `event`. */
export type QmpEventOf<E extends QmpEventName> = { [K in E]: QmpEvent<K> }[E];

/** Something that follows every event until it unsubscribes (waits, iterators). */
interface Subscriber {
  event(ev: QmpRawEvent): void;
  close(reason: FerryError | undefined): void;
}

type AnyFn = (...args: never[]) => void;

/** A listener threw: report it the way an EventEmitter would, without breaking delivery. */
function rethrowLater(err: unknown): void {
  queueMicrotask(() => { throw err; });
}

export class EventHub {
  private readonly byName = new Map<string, Set<AnyFn>>();
  private readonly any = new Set<QmpAnyEventListener>();
  private readonly closeListeners = new Set<QmpCloseListener>();
  private readonly subscribers = new Set<Subscriber>();
  private isClosed = false;
  private reason: FerryError | undefined;

  get closed(): boolean { return this.isClosed; }
  get closeReason(): FerryError | undefined { return this.reason; }

  add(name: string, fn: AnyFn): void {
    if (name === 'close') this.closeListeners.add(fn as unknown as QmpCloseListener);
    else if (name === '*') this.any.add(fn as unknown as QmpAnyEventListener);
    else {
      const set = this.byName.get(name) ?? new Set<AnyFn>();
      set.add(fn);
      this.byName.set(name, set);
    }
  }

  remove(name: string, fn: AnyFn): void {
    if (name === 'close') this.closeListeners.delete(fn as unknown as QmpCloseListener);
    else if (name === '*') this.any.delete(fn as unknown as QmpAnyEventListener);
    else this.byName.get(name)?.delete(fn);
  }

  /** Hands one event to everyone interested, synchronously, in arrival order. */
  dispatch(ev: QmpRawEvent): void {
    if (this.isClosed) return;
    // Copies: a listener may add or remove listeners while we loop.
    for (const fn of [...(this.byName.get(ev.event) ?? [])]) {
      try { (fn as (d: unknown, e: unknown) => void)(ev.data, ev); } catch (err) { rethrowLater(err); }
    }
    for (const fn of [...this.any]) {
      try { fn(ev); } catch (err) { rethrowLater(err); }
    }
    for (const sub of [...this.subscribers]) sub.event(ev);
  }

  /** Marks the hub closed: waits reject, iterators end, close listeners run once. */
  close(reason: FerryError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.reason = reason;
    for (const sub of [...this.subscribers]) sub.close(reason);
    this.subscribers.clear();
    for (const fn of [...this.closeListeners]) {
      try { fn(reason); } catch (err) { rethrowLater(err); }
    }
  }

  /** Resolves with the first matching event that arrives after the call. */
  waitFor<E extends QmpEventName>(
    name: E,
    predicate: ((data: QmpEvents[E], ev: QmpEvent<E>) => boolean) | undefined,
    deadline: Deadline,
  ): Promise<QmpEvent<E>> {
    const sub: Subscriber = {
      event: (raw) => {
        if (raw.event !== name) return;
        const ev = raw as unknown as QmpEvent<E>;
        try {
          if (predicate === undefined || predicate(ev.data, ev)) g.resolve(ev);
        } catch (err) {
          g.reject(err);
        }
      },
      close: (reason) => g.reject(qmpErrors.eventClosed(name, reason)),
    };
    // Created after `sub`: an already aborted signal settles (and unsubscribes) at once.
    const g = guard<QmpEvent<E>>(deadline, {
      onTimeout: (ms) => qmpErrors.eventTimeout(name, ms),
      onAbort: (reason) => qmpErrors.eventAborted(name, reason),
      onSettle: () => this.subscribers.delete(sub),
    });
    if (this.isClosed) g.reject(qmpErrors.eventClosed(name, this.reason));
    else if (!g.settled) this.subscribers.add(sub);
    return g.promise;
  }

  /**
   * Yields matching events (all known ones when `names` is absent) from the call on,
   * buffering those the consumer has not taken yet. Ends when the connection closes;
   * throws ABORTED when the signal fires.
   */
  iterate<E extends QmpEventName>(
    names: readonly E[] | undefined,
    signal: AbortSignal | undefined,
  ): AsyncIterableIterator<QmpEventOf<E>> {
    const stream = new EventStream<E>(new Set<string>(names ?? QMP_EVENT_NAMES), signal, (s) => this.subscribers.delete(s));
    if (this.isClosed) stream.close();
    else if (!stream.finished) this.subscribers.add(stream);
    return stream;
  }
}

/** The async iterator behind {@link EventHub.iterate}. */
class EventStream<E extends QmpEventName> implements Subscriber, AsyncIterableIterator<QmpEventOf<E>> {
  private readonly queue: QmpEventOf<E>[] = [];
  private wake: (() => void) | undefined;
  private failure: FerryError | undefined;
  private done = false;
  private readonly onAbort = (): void => {
    this.failure = qmpErrors.eventAborted([...this.wanted].join('/'), this.signal?.reason);
    this.close();
  };

  constructor(
    private readonly wanted: Set<string>,
    private readonly signal: AbortSignal | undefined,
    private readonly unsubscribe: (s: Subscriber) => void,
  ) {
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get finished(): boolean { return this.done; }

  event(ev: QmpRawEvent): void {
    if (this.done || !this.wanted.has(ev.event) || !isKnownEvent(ev)) return;
    this.queue.push(ev as QmpEventOf<E>);
    this.wake?.();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.unsubscribe(this);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.wake?.();
  }

  async next(): Promise<IteratorResult<QmpEventOf<E>>> {
    for (;;) {
      // An abort wins over buffered events: the consumer asked to stop.
      if (this.failure !== undefined) {
        const f = this.failure;
        this.failure = undefined;
        this.queue.length = 0;
        throw f;
      }
      const ev = this.queue.shift();
      if (ev !== undefined) return { value: ev, done: false };
      if (this.done) return { value: undefined, done: true };
      await new Promise<void>((res) => { this.wake = res; });
      this.wake = undefined;
    }
  }

  return(): Promise<IteratorResult<QmpEventOf<E>>> {
    this.close();
    this.queue.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<QmpEventOf<E>> {
    return this;
  }
}
