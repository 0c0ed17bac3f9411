/**
 * The QMP wire format: one JSON object per line, lines ending in "\r\n" from QEMU (we send
 * "\n", which QEMU's streaming JSON parser accepts). A chunk from the socket may hold part
 * of a line or several lines, so bytes are split into lines before any UTF-8 decoding
 * (a multi-byte character may straddle two chunks).
 */
import { qmpErrors, type QmpErrorBody } from './errors.js';
import type { QmpRawEvent } from './events.js';
import type { VersionInfo } from './qapi-machine.js';

/** query-qmp-schema is ~200 KB; anything near this is not QMP but a runaway stream. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Splits a byte stream into lines without their "\r\n" or "\n" ending. */
export class LineDecoder {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** Adds a chunk and returns the lines it completed, in order. Throws QMP_PROTOCOL on an overlong line. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      this.append(chunk.subarray(start, nl));
      const line = Buffer.concat(this.parts, this.size).toString('utf8');
      this.parts = [];
      this.size = 0;
      lines.push(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
    return lines;
  }

  /** Bytes of an unfinished line held back. */
  get pending(): number { return this.size; }

  private append(bytes: Buffer): void {
    this.size += bytes.length;
    if (this.size > this.maxLineBytes) {
      throw qmpErrors.protocol(`a line is longer than ${this.maxLineBytes} bytes`);
    }
    if (bytes.length > 0) this.parts.push(bytes);
  }
}

/** The greeting QEMU sends first: `{"QMP": {"version": …, "capabilities": […]}}`. */
export interface QmpGreeting {
  version: VersionInfo;
  /** Capabilities QEMU offers (7.2: "oob"); Ferry enables none. */
  capabilities: string[];
}

/** One message from QEMU, classified. `id` is whatever we sent, echoed back. */
export type QmpMessage =
  | { kind: 'greeting'; greeting: QmpGreeting }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; error: QmpErrorBody }
  | { kind: 'event'; event: QmpRawEvent };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function parseGreeting(body: unknown): QmpGreeting {
  const version = isObject(body) ? body['version'] : undefined;
  const qemu = isObject(version) ? version['qemu'] : undefined;
  const caps = isObject(body) ? body['capabilities'] : undefined;
  if (!isObject(version) || !isObject(qemu) || !isNum(qemu['major']) || !isNum(qemu['minor'])
    || !isNum(qemu['micro']) || !Array.isArray(caps)) {
    throw qmpErrors.protocol('the greeting lacks a version or capabilities');
  }
  return {
    version: {
      qemu: { major: qemu['major'], minor: qemu['minor'], micro: qemu['micro'] },
      package: typeof version['package'] === 'string' ? version['package'] : '',
    },
    capabilities: caps.filter((c): c is string => typeof c === 'string'),
  };
}

function parseEvent(msg: Record<string, unknown>): QmpRawEvent {
  const { event, data, timestamp } = msg;
  if (typeof event !== 'string' || (data !== undefined && !isObject(data))) {
    throw qmpErrors.protocol('an event has no name or its data is not an object');
  }
  // QEMU always stamps events; a missing stamp is tolerated rather than fatal.
  const ts = isObject(timestamp) && isNum(timestamp['seconds']) && isNum(timestamp['microseconds'])
    ? { seconds: timestamp['seconds'], microseconds: timestamp['microseconds'] }
    : { seconds: Math.floor(Date.now() / 1000), microseconds: (Date.now() % 1000) * 1000 };
  return { event, data: data ?? {}, timestamp: ts };
}

/** Parses and classifies one line. Throws QMP_PROTOCOL for anything that is not QMP. */
export function parseMessage(line: string): QmpMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    throw qmpErrors.protocol(`a line is not JSON: ${JSON.stringify(line.slice(0, 80))}`, e);
  }
  if (!isObject(msg)) throw qmpErrors.protocol(`a line is not a JSON object: ${JSON.stringify(line.slice(0, 80))}`);
  if ('QMP' in msg) return { kind: 'greeting', greeting: parseGreeting(msg['QMP']) };
  if ('return' in msg) return { kind: 'return', id: msg['id'], value: msg['return'] };
  if ('error' in msg) {
    const err = msg['error'];
    if (!isObject(err) || typeof err['class'] !== 'string' || typeof err['desc'] !== 'string') {
      throw qmpErrors.protocol('an error reply lacks its class or description');
    }
    return { kind: 'error', id: msg['id'], error: { class: err['class'], desc: err['desc'] } };
  }
  if ('event' in msg) return { kind: 'event', event: parseEvent(msg) };
  throw qmpErrors.protocol(`a message is neither a reply nor an event: ${JSON.stringify(line.slice(0, 80))}`);
}

/** Encodes one command for the wire. */
export function encodeCommand(id: number, execute: string, args: unknown): string {
  const msg: Record<string, unknown> = { execute, id };
  // QEMU treats an absent `arguments` as empty; sending none keeps the line minimal.
  if (args !== undefined) msg['arguments'] = args;
  return `${JSON.stringify(msg)}\n`;
}
