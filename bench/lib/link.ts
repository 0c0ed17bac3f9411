/**
 * The lab link's raw throughput: one TCP stream from a host namespace to another for a few
 * seconds, measured at the receiver from its first byte to its last. This is what a single
 * migration stream could get at best, so moves are judged against it.
 */
import { spawn } from 'node:child_process';
import { nsName } from '../../src/lab/index.js';
import { nsRun } from './exec.js';

/** One measurement of the link. */
export interface LinkSample {
  bytes: number;
  /** Receiver-side time from the first to the last byte, ms. */
  ms: number;
  bytesPerSec: number;
}

/** Receiver: accepts one connection, counts bytes, prints {bytes, ms} at its end, exits. */
const RECEIVER = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const srv = net.createServer((c) => {
  let bytes = 0, t0 = 0, t1 = 0;
  c.on('data', (d) => { const n = performance.now(); if (bytes === 0) t0 = n; bytes += d.length; t1 = n; });
  c.on('end', () => { process.stdout.write(JSON.stringify({ bytes, ms: t1 - t0 }) + '\\n'); c.end(); srv.close(); });
});
srv.listen(Number(port), host, () => process.stderr.write('LISTENING\\n'));
setTimeout(() => process.exit(2), 30000).unref();
`;

/** Sender: writes 1 MiB buffers of zeros for the given ms (respecting backpressure), then ends. */
const SENDER = `
const net = require('net');
const [host, port, ms] = process.argv.slice(1);
const buf = Buffer.alloc(1 << 20);
const c = net.connect(Number(port), host, () => {
  const end = Date.now() + Number(ms);
  const pump = () => { while (Date.now() < end) { if (!c.write(buf)) { c.once('drain', pump); return; } } c.end(); };
  pump();
});
c.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`;

/**
 * Sends zeros from namespace `fromNs` to `toAddress`:`port` (listening in `toNs`) for
 * `durationMs` and resolves with what the receiver counted. Rejects when either side fails.
 */
export async function measureLink(fromNs: string, toNs: string, toAddress: string, port = 5999, durationMs = 3000): Promise<LinkSample> {
  const rx = spawn('ip', ['netns', 'exec', toNs, process.execPath, '-e', RECEIVER, toAddress, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  rx.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const listening = new Promise<void>((resolve, reject) => {
    rx.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; if (err.includes('LISTENING')) resolve(); });
    rx.on('close', () => reject(new Error(`link receiver exited early: ${err.trim()}`)));
  });
  const done = new Promise<void>((resolve) => rx.on('close', () => resolve()));
  try {
    await listening;
    const tx = await nsRun(fromNs, [process.execPath, '-e', SENDER, toAddress, String(port), String(durationMs)], durationMs + 20_000);
    if (tx.code !== 0) throw new Error(`link sender failed: ${tx.stderr.trim()}`);
    await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
    const r = JSON.parse(out) as { bytes: number; ms: number };
    return { bytes: r.bytes, ms: Math.round(r.ms), bytesPerSec: Math.round(r.bytes / (r.ms / 1000)) };
  } finally {
    if (rx.exitCode === null) rx.kill('SIGKILL');
  }
}

/** Bytes interface `dev` of namespace `ns` has received so far (`ip -s -j link show`); null when unreadable. */
export async function rxBytes(ns: string, dev: string): Promise<number | null> {
  const r = await nsRun(ns, ['ip', '-s', '-j', 'link', 'show', 'dev', dev], 10_000);
  try {
    const bytes = (JSON.parse(r.stdout) as { stats64?: { rx?: { bytes?: number } } }[])[0]?.stats64?.rx?.bytes;
    return typeof bytes === 'number' ? bytes : null;
  } catch {
    return null;
  }
}

/** {@link measureLink} from h1 to h2 (at `h2Address`) of lab `lab`, with its result or failure logged; undefined when it failed. */
export async function sampleLabLink(lab: string, h2Address: string, label: string, log: (s: string) => void): Promise<LinkSample | undefined> {
  try {
    const s = await measureLink(nsName(lab, 'h1'), nsName(lab, 'h2'), h2Address);
    log(`link ${label}: ${(s.bytesPerSec / 1048576).toFixed(0)} MiB/s`);
    return s;
  } catch (e) {
    log(`link measurement failed: ${String(e)}`);
    return undefined;
  }
}
