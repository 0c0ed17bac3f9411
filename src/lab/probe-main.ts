#!/usr/bin/env node
/**
 * The guest-perceived downtime probe, run in the lab's client namespace:
 *
 *   ip netns exec LAB-client node dist/src/lab/probe-main.js --ip IP [--interval-ms 5]
 *       [--duration-ms N] [--ready-timeout-ms 10000] [--stop-on-stdin-eof]
 *
 * It pings IP every interval (busybox ping; see below why not iputils) and keeps one TCP
 * connection to the guest's echo port 7, sending a numbered 9-byte message every interval, and
 * stamps each reply and each echo as it arrives. It writes `READY` on stderr once the first echo and the first ping reply came back
 * (or an error and exits 1 after the ready timeout), then runs until SIGTERM, SIGINT, the
 * duration, or (with --stop-on-stdin-eof, so a probe outlives no parent) EOF on stdin. Then it
 * lets the TCP stream drain for up to 2 s while still pinging, and prints one JSON object
 * (ProbeResult in probe.ts) on stdout and exits 0.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { EchoStream, gapStats, parsePingLine, round, STALL_THRESHOLD_MS, unwrapSeq, type ProbeResult } from './probe.js';

const { values } = parseArgs({
  options: {
    ip: { type: 'string' },
    'interval-ms': { type: 'string', default: '5' },
    'duration-ms': { type: 'string' },
    'ready-timeout-ms': { type: 'string', default: '10000' },
    'stop-on-stdin-eof': { type: 'boolean', default: false },
  },
});

/** The ping child, once started: fail() takes it along rather than leave it orphaned. */
const children: { ping?: ChildProcessWithoutNullStreams } = {};

/** Prints a sentence on stderr and exits 1 (the probe has no result to give). */
function fail(sentence: string): never {
  children.ping?.kill('SIGKILL');
  process.stderr.write(`error: ${sentence}\n`);
  process.exit(1);
}

const ip = values.ip ?? fail('--ip is required.');
const intervalMs = Number(values['interval-ms']);
if (!Number.isFinite(intervalMs) || intervalMs < 1 || intervalMs > 1000) fail('--interval-ms must be 1 to 1000.');
const readyTimeoutMs = Number(values['ready-timeout-ms']);
if (!Number.isFinite(readyTimeoutMs) || readyTimeoutMs <= 0) fail('--ready-timeout-ms must be a positive number.');
const durationMs = values['duration-ms'] === undefined ? undefined : Number(values['duration-ms']);
if (durationMs !== undefined && !(durationMs > 0)) fail('--duration-ms must be a positive number.');
/** Time to let echoes still in flight come back at stop (a 200 ms+ retransmission fits easily). */
const DRAIN_MS = 2000;
const ECHO_PORT = 7;

/** Epoch milliseconds with sub-millisecond resolution (startedAt lines stalls up with other logs). */
const now = (): number => performance.timeOrigin + performance.now();
const startedAt = now();
/** READY was printed; stopping began (signal, duration or stdin EOF). */
let ready = false;
let stopping = false;

// --- ping ---------------------------------------------------------------------------------
/** Reply arrival times (epoch ms), non-duplicate replies, the highest request number answered. */
const ping = { times: [] as number[], received: 0, seq: 0, maxReplied: -1, transmitted: -1, maxRttMs: 0 };
// Busybox ping, not iputils: iputils spins a whole core (sched_yield loop) at any interval under
// 10 ms, stealing it from the TCG guest and the migration being measured; busybox paces with
// setitimer and costs about 2 % of a core. setpriv's parent-death signal ends it should this
// process die without stopping it, and its own process group keeps a Ctrl-C at a terminal from
// stopping it before the drain below is over.
const pinger = spawn('setpriv', ['--pdeathsig', 'TERM', 'busybox', 'ping', '-i', String(intervalMs / 1000), ip], { detached: true });
children.ping = pinger;
let pingStderr = '';
pinger.stderr.setEncoding('utf8').on('data', (d: string) => { pingStderr += d; });
const pingClosed = new Promise<void>((resolve) => pinger.on('close', () => resolve()));
pinger.on('error', (e) => fail(`could not run busybox ping: ${e.message}.`));
createInterface({ input: pinger.stdout }).on('line', (line) => {
  const at = now();
  const p = parsePingLine(line);
  if (p?.kind === 'summary') ping.transmitted = p.transmitted;
  if (p?.kind !== 'reply' || p.dup) return;
  ping.seq = unwrapSeq(ping.seq, p.seq);
  ping.received++;
  ping.maxRttMs = Math.max(ping.maxRttMs, p.rttMs);
  ping.maxReplied = Math.max(ping.maxReplied, ping.seq);
  ping.times.push(at);
  checkReady();
});

// --- TCP echo stream ----------------------------------------------------------------------
const stream = new EchoStream();
/** Arrival times (epoch ms) of echoed data. */
const echoTimes: number[] = [];
let tcpBroken: string | undefined;
let sendTimer: NodeJS.Timeout | undefined;
const socket: Socket = connect({ host: ip, port: ECHO_PORT, noDelay: true });
socket.on('connect', () => {
  sendTimer = setInterval(() => { if (!socket.destroyed) socket.write(stream.next()); }, intervalMs);
  socket.write(stream.next());
});
socket.on('data', (chunk: Buffer) => {
  echoTimes.push(now());
  if (!stream.accept(chunk)) tcpBroken ??= 'an echoed byte differed from what was sent';
  checkReady();
});
socket.on('error', (e) => { tcpBroken ??= e.message; });
socket.on('close', () => {
  tcpBroken ??= 'the connection closed';
  if (!ready && !stopping) fail(`TCP to ${ip}:${ECHO_PORT}: ${tcpBroken}.`);
});

// --- life cycle ---------------------------------------------------------------------------
const readyTimer = setTimeout(() => {
  const missing = [ping.times.length === 0 ? 'no ping reply' : '', echoTimes.length === 0 ? `no echo from ${ip}:${ECHO_PORT}` : '']
    .filter(Boolean).join(' and ');
  fail(`not ready after ${readyTimeoutMs} ms: ${missing}${pingStderr ? ` (ping: ${pingStderr.trim()})` : ''}.`);
}, readyTimeoutMs);

function checkReady(): void {
  if (ready || ping.times.length === 0 || echoTimes.length === 0) return;
  ready = true;
  clearTimeout(readyTimer);
  process.stderr.write('READY\n');
  // The duration counts from READY, as a caller's move would.
  if (durationMs !== undefined) setTimeout(() => void stop(), durationMs);
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(sendTimer);
  // Pinging goes on while echoes drain, so an outage still going on now is measured to its end.
  const drainEnd = now() + DRAIN_MS;
  while (!tcpBroken && !stream.complete && now() < drainEnd) await new Promise((r) => setTimeout(r, 5));
  const endedAt = now();
  pinger.kill('SIGINT');
  const killer = setTimeout(() => pinger.kill('SIGKILL'), 1000);
  await pingClosed;
  clearTimeout(killer);
  socket.destroy();
  process.stdout.write(`${JSON.stringify(result(endedAt))}\n`, () => process.exit(0));
}

function result(endedAt: number): ProbeResult {
  const tcpAlive = tcpBroken === undefined && stream.complete;
  const blackout = gapStats(ping.times, startedAt, STALL_THRESHOLD_MS, endedAt);
  // A stream that did not come back whole stalled from its last echo to the end.
  const tcp = gapStats(echoTimes, startedAt, STALL_THRESHOLD_MS, tcpAlive ? undefined : endedAt);
  // Busybox numbers requests from 0; the summary line is missing only if ping had to be killed.
  const answeredUpTo = ping.maxReplied + 1;
  const sent = ping.transmitted >= 0 ? ping.transmitted : answeredUpTo;
  return {
    blackoutMs: blackout.maxMs,
    tcpGapMs: tcp.maxMs,
    tcpAlive,
    ping: {
      sent, received: ping.received, lost: Math.max(0, answeredUpTo - ping.received),
      unanswered: Math.max(0, sent - answeredUpTo), maxRttMs: round(ping.maxRttMs), stalls: blackout.stalls,
    },
    tcp: { sent: stream.sent, echoed: stream.echoed, stalls: tcp.stalls },
    durationMs: round(endedAt - startedAt),
    startedAt: Math.round(startedAt),
  };
}

process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
if (values['stop-on-stdin-eof']) process.stdin.on('end', () => void stop()).resume();
pinger.on('exit', () => { if (!ready && !stopping) fail(`ping ${ip} ended: ${pingStderr.trim() || 'no reason given'}.`); });
