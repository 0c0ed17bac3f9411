/**
 * The errors the QMP client raises, all FerryErrors from the catalogue. An error reply from
 * QEMU becomes a {@link QmpError} so callers can branch on QEMU's error class.
 */
import { FerryError } from '../errors/index.js';

/** QAPI `QapiErrorClass` values QEMU 7.2 sends (most errors are GenericError). */
export type QmpErrorClass =
  | 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound'
  | 'KVMMissingCap' | (string & {});

/** The `error` member of a QMP error reply. */
export interface QmpErrorBody {
  class: QmpErrorClass;
  desc: string;
}

/**
 * QEMU answered a command with an error: code QMP_ERROR, plus QEMU's class and
 * description (also kept as `cause`).
 */
export class QmpError extends FerryError {
  /** QEMU's error class, e.g. "GenericError" or "CommandNotFound". */
  readonly errorClass: QmpErrorClass;
  /** QEMU's own description, unchanged. */
  readonly desc: string;
  /** The command QEMU refused. */
  readonly command: string;

  constructor(command: string, body: QmpErrorBody) {
    super('QMP_ERROR', `QEMU refused ${command}: ${body.class}: ${sentence(body.desc)}`, { cause: body });
    this.name = 'QmpError';
    this.errorClass = body.class;
    this.desc = body.desc;
    this.command = command;
  }
}

/** True for a QMP error reply, optionally of the given QEMU class. */
export function isQmpError(e: unknown, errorClass?: QmpErrorClass): e is QmpError {
  return e instanceof QmpError && (errorClass === undefined || e.errorClass === errorClass);
}

/** Ends QEMU's text with a full stop unless it has one (QEMU's descriptions mostly lack it). */
function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/**
 * Constructors for every other error the client raises, so the client and FakeQmp word
 * them alike. `cmd` is a command name, `event` an event name.
 */
export const qmpErrors = {
  timeout: (cmd: string, ms: number): FerryError =>
    new FerryError('QMP_TIMEOUT', `QEMU did not answer ${cmd} within ${ms} ms.`),
  aborted: (cmd: string, reason: unknown): FerryError =>
    new FerryError('ABORTED', `The ${cmd} command was cancelled before QEMU answered.`, { cause: reason }),
  closed: (cmd: string, reason?: unknown): FerryError =>
    new FerryError('QMP_CLOSED', `The QMP connection closed before QEMU answered ${cmd}.`, { cause: reason }),
  notOpen: (cmd: string, reason?: unknown): FerryError =>
    new FerryError('QMP_CLOSED', `The QMP connection is closed, so ${cmd} was not sent.`, { cause: reason }),
  eventTimeout: (event: string, ms: number): FerryError =>
    new FerryError('QMP_TIMEOUT', `No ${event} event arrived within ${ms} ms.`),
  eventAborted: (event: string, reason: unknown): FerryError =>
    new FerryError('ABORTED', `The wait for a ${event} event was cancelled.`, { cause: reason }),
  eventClosed: (event: string, reason?: unknown): FerryError =>
    new FerryError('QMP_CLOSED', `The QMP connection closed while waiting for a ${event} event.`, { cause: reason }),
  protocol: (detail: string, cause?: unknown): FerryError =>
    new FerryError('QMP_PROTOCOL', `QEMU's QMP socket sent something that is not QMP: ${sentence(detail)}`, { cause }),
};
