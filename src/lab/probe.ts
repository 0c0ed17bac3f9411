/**
 * The guest-perceived downtime probe: what a VM's clients see while it moves. The probe itself
 * (probe-main.ts) runs in the lab's client namespace; this file starts and stops it, and holds
 * the pure parts it is built from (ping output parsing, gap measurement, the echo stream check)
 * so that they are tested without a lab.
 */
import { spawn } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { repoRoot } from '../util/paths.js';
import { clientNsName } from './plan.js';

/** A gap longer than the stall threshold: when it began (ms after probe start) and how long it lasted. */
export interface Stall { atMs: number; gapMs: number }

/** What the probe printed when it stopped: the JSON object documented in probe-main.ts. */
export interface ProbeResult {
  /** Longest gap between consecutive ICMP echo replies, in ms (an outage still running at stop counts up to stop). */
  blackoutMs: number;
  /** Longest time between two consecutive echoes on the one persistent TCP connection to port 7, in ms. */
  tcpGapMs: number;
  /** The TCP connection never errored or closed, and every byte sent came back, in order, by the end. */
  tcpAlive: boolean;
  /**
   * `lost`: requests without a reply although a later one got one; `unanswered`: requests after
   * the last reply; `maxRttMs`: the longest round trip ping itself measured, which tells a guest
   * that answered late (packets held, then answered) from replies this probe saw late.
   */
  ping: { sent: number; received: number; lost: number; unanswered: number; maxRttMs: number; stalls: Stall[] };
  tcp: { sent: number; echoed: number; stalls: Stall[] };
  /** From probe start to the end of measuring, in ms. */
  durationMs: number;
  /** Probe start, ms since the epoch, to line stalls up with other logs. */
  startedAt: number;
}

/** A running probe. */
export interface Probe {
  /** The probe process (`ip netns exec` execs node, so this is the probe itself). */
  readonly pid: number;
  /**
   * Stops the probe (SIGTERM) and resolves with what it measured. It lets the TCP stream drain
   * for up to 2 s and keeps pinging meanwhile, so an outage still going on at stop is measured;
   * still, stop a little after the event of interest, not at the same instant. Calling it again
   * returns the same promise.
   */
  stop(): Promise<ProbeResult>;
}

/** Gaps longer than this are listed as stalls: well above the 5 ms cadence and its TCG jitter. */
export const STALL_THRESHOLD_MS = 50;

/** One line of busybox ping output, as far as the probe cares. */
export type PingLine =
  | { kind: 'reply'; seq: number; dup: boolean; rttMs: number }
  | { kind: 'summary'; transmitted: number; received: number };

const REPLY = /^\d+ bytes from [^:]+: (?:icmp_)?seq=(\d+) .*?time=([\d.]+) ms( \(DUP!\))?$/;
const SUMMARY = /^(\d+) packets transmitted, (\d+) (?:packets )?received/;

/**
 * Parses one line of busybox `ping` output (iputils' reply lines parse too); undefined for
 * lines that carry nothing the probe uses. The lines carry no time: the probe stamps them as
 * they arrive, since busybox ping writes each reply at once.
 */
export function parsePingLine(line: string): PingLine | undefined {
  const s = line.trim();
  let m = REPLY.exec(s);
  if (m) return { kind: 'reply', seq: Number(m[1]), dup: m[3] !== undefined, rttMs: Number(m[2]) };
  m = SUMMARY.exec(s);
  if (m) return { kind: 'summary', transmitted: Number(m[1]), received: Number(m[2]) };
  return undefined;
}

/**
 * Turns ping's 16-bit `icmp_seq` (it wraps after 65535, about 5.5 minutes at 5 ms) into a count
 * that keeps growing, given the previous unwrapped value; a reply may arrive a little out of order.
 */
export function unwrapSeq(prev: number, raw: number): number {
  const base = prev - (((prev % 65536) + 65536) % 65536);
  let candidate = base + raw;
  if (candidate < prev - 32768) candidate += 65536;
  else if (candidate > prev + 32768 && candidate >= 65536) candidate -= 65536;
  return candidate;
}

/**
 * The longest gap between consecutive times (ms, ascending) and the gaps over `thresholdMs`,
 * with start times relative to `origin`. With `endMs`, the silence from the last time to
 * `endMs` counts as a gap too, and no times at all make one gap from `origin` to `endMs`.
 */
export function gapStats(
  times: readonly number[], origin: number, thresholdMs: number, endMs?: number,
): { maxMs: number; stalls: Stall[] } {
  const points = [...times];
  if (endMs !== undefined) {
    if (points.length === 0) points.push(origin);
    points.push(Math.max(endMs, points[points.length - 1] ?? endMs));
  }
  let maxMs = 0;
  const stalls: Stall[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] ?? 0;
    const gap = (points[i] ?? a) - a;
    if (gap > maxMs) maxMs = gap;
    if (gap > thresholdMs) stalls.push({ atMs: round(a - origin), gapMs: round(gap) });
  }
  return { maxMs: round(maxMs), stalls };
}

/** Rounds to 0.1 ms: finer than the 5 ms cadence, coarser than the noise. */
export const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Bytes of one TCP message: 8 decimal digits of its number and a newline. */
export const MESSAGE_BYTES = 9;

/** Message `n` of the TCP stream; numbers wrap after 10^8 (almost six days at 5 ms). */
export const message = (n: number): Buffer => Buffer.from(`${String(n % 1e8).padStart(8, '0')}\n`, 'latin1');

/**
 * The TCP stream's bookkeeping: hands out numbered messages and checks that what comes back is
 * exactly the bytes sent, in order (the stream is deterministic, so byte k is recomputed).
 */
export class EchoStream {
  sent = 0;
  echoed = 0;
  inOrder = true;
  private count = 0;

  /** The next message to send; counts its bytes as sent. */
  next(): Buffer {
    const m = message(this.count++);
    this.sent += m.length;
    return m;
  }

  /** Checks a chunk that came back; false once any byte differed from what was sent or more came back. */
  accept(chunk: Uint8Array): boolean {
    for (const byte of chunk) {
      const k = this.echoed++;
      const expected = message(Math.floor(k / MESSAGE_BYTES))[k % MESSAGE_BYTES];
      if (k >= this.sent || byte !== expected) this.inOrder = false;
    }
    return this.inOrder;
  }

  /** Everything sent came back, in order. */
  get complete(): boolean {
    return this.inOrder && this.echoed === this.sent;
  }
}

/** How long to wait beyond the probe's own ready timeout (node start-up, ip netns exec). */
const SPAWN_SLACK_MS = 5_000;
/** The probe drains TCP for up to 2 s and stops ping in up to 1 s after SIGTERM. */
const STOP_TIMEOUT_MS = 10_000;

/** The probe program in the built tree. */
const probeEntry = (): string => join(repoRoot(), 'dist', 'src', 'lab', 'probe-main.js');

/**
 * Starts the downtime probe against `ip` from the client namespace of lab `lab`, and resolves
 * once it is ready (TCP connection to port 7 echoing and a first ping reply), so a move started
 * afterwards is measured whole. Rejects with LAB_FAILED when it does not get ready in time.
 *
 * @example
 * const probe = await startProbe('ferry', vm.ip);
 * await move();
 * const { blackoutMs, tcpGapMs, tcpAlive } = await probe.stop();
 */
export async function startProbe(
  lab: string, ip: string, opts: { intervalMs?: number; readyTimeoutMs?: number } = {},
): Promise<Probe> {
  if (!isIPv4(ip)) throw new FerryError('INVALID_INPUT', `The probe needs an IPv4 address, not "${ip}".`);
  const intervalMs = opts.intervalMs ?? 5;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const child = spawn('ip', [
    'netns', 'exec', clientNsName(lab), process.execPath, probeEntry(), '--ip', ip,
    '--interval-ms', String(intervalMs), '--ready-timeout-ms', String(readyTimeoutMs), '--stop-on-stdin-eof',
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const ready = new Promise<boolean>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (/^READY$/m.test(stderr)) resolve(true);
    });
    void exited.then(() => resolve(false));
    setTimeout(() => resolve(false), readyTimeoutMs + SPAWN_SLACK_MS).unref();
  });
  child.on('error', (e) => { stderr += `${e.message}\n`; });
  const pid = child.pid;
  if (!(await ready) || pid === undefined) {
    child.kill('SIGKILL');
    // The probe's own last words ("error: not ready after … ms: no ping reply."), as a clause.
    const why = (stderr.trim().split('\n').pop() ?? '').replace(/^error: /, '').replace(/\.$/, '');
    throw new FerryError('LAB_FAILED', `The downtime probe to ${ip} in lab ${lab} did not get ready: ${why || 'it gave no reason'}.`);
  }
  let stopping: Promise<ProbeResult> | undefined;
  const stop = (): Promise<ProbeResult> => (stopping ??= (async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    try {
      if (code !== 0) throw new FerryError('LAB_FAILED', `exit status ${String(code)}`);
      return JSON.parse(stdout) as ProbeResult;
    } catch (e) {
      throw new FerryError('LAB_FAILED', `The downtime probe to ${ip} gave no result (${String(e)}; ${stderr.trim()}).`, { cause: e });
    }
  })());
  return { pid, stop };
}
