/**
 * QmpClient: the real QMP client over a unix socket.
 *
 * ```
 * client                                QEMU
 *   │ connect(path)  ───────────────────▶ │
 *   │ ◀── {"QMP": {version, capabilities}}│  greeting
 *   │ {"execute":"qmp_capabilities","id":1}▶│
 *   │ ◀──────────────── {"return":{},"id":1}│  negotiated: connect() resolves
 *   │ {"execute":"cont","id":2} ──────────▶ │
 *   │ ◀──── {"event":"RESUME","timestamp":…}│  events interleave with replies
 *   │ ◀──────────────── {"return":{},"id":2}│  replies are matched by id
 * ```
 *
 * Commands are pipelined; QEMU answers them in order, but matching by id keeps us correct
 * whatever the order. A reply that comes after its call timed out or was aborted is dropped.
 */
import type { Socket } from 'node:net';
import type { FerryError } from '../errors/index.js';
import { QmpBase } from './base.js';
import type { QmpArgs, QmpCommandName, QmpReturn } from './commands.js';
import { guard, type Guarded } from './deadline.js';
import { QmpError, qmpErrors } from './errors.js';
import type { VersionInfo } from './qapi-machine.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type ExecuteOptions } from './qmp.js';
import { openSocket } from './socket.js';
import { QmpTransport, readGreeting } from './transport.js';
import { encodeCommand, type QmpGreeting, type QmpMessage } from './wire.js';

/** Options for {@link QmpClient.connect}. */
export interface ConnectOptions {
  /** Milliseconds for the connect, greeting and negotiation of one attempt; default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Keep retrying for this many milliseconds while the socket is missing or refuses (QEMU starting); default 0. */
  retryUntilMs?: number;
}

interface PendingCall {
  command: string;
  call: Guarded<unknown>;
}

/** A QMP session over QEMU's unix socket. Create it with {@link QmpClient.connect}. */
export class QmpClient extends QmpBase {
  /** QEMU's version, from the greeting. */
  readonly version: VersionInfo;
  /** Capabilities QEMU offered in the greeting (none is enabled). */
  readonly capabilities: readonly string[];
  private readonly pending = new Map<number, PendingCall>();
  private nextId = 1;

  private constructor(private readonly transport: QmpTransport, greeting: QmpGreeting) {
    super();
    this.version = greeting.version;
    this.capabilities = greeting.capabilities;
    transport.setSink((m) => this.onMessage(m));
    transport.onClose((reason) => this.onTransportClosed(reason));
  }

  /**
   * Connects to QEMU's QMP socket at `path`, reads the greeting and negotiates
   * capabilities. Fails with QEMU_GONE when nothing listens (after `retryUntilMs`),
   * QMP_TIMEOUT, ABORTED, QMP_PROTOCOL or QMP_CLOSED.
   */
  static async connect(path: string, opts: ConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const socket: Socket = await openSocket(path, { timeoutMs, signal: opts.signal, retryUntilMs: opts.retryUntilMs });
    const transport = new QmpTransport(socket);
    const started = Date.now();
    try {
      const greeting = await readGreeting(transport, path, { timeoutMs, signal: opts.signal });
      const client = new QmpClient(transport, greeting);
      const left = Math.max(0, timeoutMs - (Date.now() - started));
      await client.execute('qmp_capabilities', {}, { timeoutMs: left, signal: opts.signal });
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  execute<K extends QmpCommandName>(cmd: K, args?: QmpArgs<K>, opts: ExecuteOptions = {}): Promise<QmpReturn<K>> {
    if (this.closed) return Promise.reject(qmpErrors.notOpen(cmd, this.hub.closeReason));
    const id = this.nextId++;
    const call = guard<unknown>({ timeoutMs: opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, signal: opts.signal }, {
      onTimeout: (ms) => qmpErrors.timeout(cmd, ms),
      onAbort: (reason) => qmpErrors.aborted(cmd, reason),
      onSettle: () => this.pending.delete(id),
    });
    if (!call.settled) {
      this.pending.set(id, { command: cmd, call });
      this.transport.send(encodeCommand(id, cmd, args));
    }
    return call.promise as Promise<QmpReturn<K>>;
  }

  /** Ends the connection. Pending calls reject with QMP_CLOSED at once. */
  async close(): Promise<void> {
    this.shutDown(undefined);
    await this.transport.end();
  }

  private onMessage(m: QmpMessage): void {
    if (this.closed) return;
    switch (m.kind) {
      case 'event':
        this.deliver(m.event);
        return;
      case 'return':
      case 'error':
        this.onReply(m);
        return;
      case 'greeting':
        this.transport.fail(qmpErrors.protocol('QEMU sent a second greeting'));
        return;
    }
  }

  private onReply(m: Extract<QmpMessage, { kind: 'return' | 'error' }>): void {
    const { id } = m;
    const entry = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (entry === undefined) {
      // An id we issued but no longer wait for: the call timed out or was aborted.
      if (typeof id === 'number' && Number.isInteger(id) && id > 0 && id < this.nextId) return;
      this.transport.fail(qmpErrors.protocol(`a reply carries an id that was never sent (${JSON.stringify(id) ?? 'none'})`));
      return;
    }
    if (m.kind === 'return') entry.call.resolve(m.value);
    else entry.call.reject(new QmpError(entry.command, m.error));
  }

  private onTransportClosed(reason: FerryError | undefined): void {
    this.shutDown(reason);
  }

  /** Rejects every pending call and closes the event side, once. */
  private shutDown(reason: FerryError | undefined): void {
    if (this.closed) return;
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const { command, call } of calls) {
      // A protocol failure keeps its own code; otherwise the call simply lost its connection.
      call.reject(reason?.code === 'QMP_PROTOCOL' ? reason : qmpErrors.closed(command, reason));
    }
    this.markClosed(reason);
  }
}
