/**
 * Opening QEMU's QMP unix socket: retries while QEMU is still starting, and a socket class
 * that keeps reading after a failed write (see {@link QmpSocket}).
 */
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors/index.js';
import { guard, type Deadline } from './deadline.js';

/** After a write failed because QEMU went away, how long reading may go on before giving up. */
const READ_AFTER_WRITE_ERROR_MS = 1000;

const PEER_GONE = new Set(['EPIPE', 'ECONNRESET']);

/**
 * A socket that survives a failed write long enough to read what QEMU sent before it left.
 * Node destroys a socket as soon as a write fails, discarding unread input: a command sent
 * in the instant QEMU exits (EPIPE) would lose the SHUTDOWN event already in the receive
 * buffer. Here such a write error is recorded instead; the read side then ends the
 * connection as usual (EOF or ECONNRESET), or a timer does.
 */
export class QmpSocket extends Socket {
  writeError: Error | undefined;

  override _write(chunk: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    super._write(chunk, encoding, (err) => this.afterWrite(err, cb));
  }

  override _writev(chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    super._writev?.(chunks, (err) => this.afterWrite(err, cb));
  }

  private afterWrite(err: Error | null | undefined, cb: (err?: Error | null) => void): void {
    const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
    if (err && code !== undefined && PEER_GONE.has(code)) {
      if (this.writeError === undefined) {
        this.writeError = err;
        setTimeout(() => this.destroy(err), READ_AFTER_WRITE_ERROR_MS).unref();
      }
      cb();
      return;
    }
    cb(err);
  }
}

/** Options for opening a QMP socket. */
export interface OpenOptions extends Deadline {
  /** Keep retrying ENOENT / ECONNREFUSED for this many milliseconds (QEMU still starting). */
  retryUntilMs?: number | undefined;
}

const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED']);

/** Opens the unix socket, retrying while nothing listens yet, within `retryUntilMs`. */
export async function openSocket(path: string, opts: OpenOptions): Promise<Socket> {
  const retryDeadline = Date.now() + (opts.retryUntilMs ?? 0);
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      return await connectOnce(path, opts);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (err instanceof FerryError) throw err;
      if (code === undefined || !RETRYABLE.has(code)) {
        throw new FerryError('QMP_CLOSED', `Could not connect to the QMP socket ${path} (${code ?? String(err)}).`, { cause: err });
      }
      if (Date.now() + delay > retryDeadline) {
        throw new FerryError('QEMU_GONE', `Nothing listens on the QMP socket ${path} (${code}).`, { cause: err });
      }
      await sleep(delay, undefined, { signal: opts.signal }).catch((e: unknown) => {
        throw new FerryError('ABORTED', `Connecting to the QMP socket ${path} was cancelled.`, { cause: e });
      });
    }
  }
}

function connectOnce(path: string, opts: Deadline): Promise<Socket> {
  const socket = new QmpSocket().connect({ path });
  const g = guard<Socket>(opts, {
    onTimeout: (ms) => new FerryError('QMP_TIMEOUT', `Connecting to the QMP socket ${path} took longer than ${ms} ms.`),
    onAbort: (reason) => new FerryError('ABORTED', `Connecting to the QMP socket ${path} was cancelled.`, { cause: reason }),
    onSettle: (how) => {
      socket.off('connect', onConnect).off('error', onError);
      if (how !== 'resolved') socket.destroy();
    },
  });
  const onConnect = (): void => g.resolve(socket);
  const onError = (err: Error): void => g.reject(err);
  socket.once('connect', onConnect).once('error', onError);
  return g.promise;
}

