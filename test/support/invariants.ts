/**
 * DESIGN.md's invariants as test helpers, for every test that moves a VM:
 *
 * - {@link assertRunsOnce} (invariant 1): every host's agent answers, the VM is listed exactly
 *   once (state `running`) and exactly one live QEMU on the machine carries its UUID — the one
 *   the listing names.
 * - {@link assertRolledBack} (invariant 2): after a failure or cancel the VM runs on the source
 *   with the same QEMU pid and boot id; the destination has no QEMU, no run folder, no record,
 *   and its free memory is what it was.
 * - {@link assertGuestIntact} (invariant 3): `/verify` is ok, `/counter` grew, `/boot-id` is unchanged.
 *
 * Plus {@link startEchoClient}: one TCP connection to the guest's echo port from the lab's
 * client namespace, kept open across moves.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { clientNsName, labStatus } from '../../src/lab/index.js';
import { labDir } from '../../src/util/paths.js';
import type { HostView, VmView } from '../../src/agent/views.js';
import { ferry, guestGet, waitFor } from './cli.js';

/** GET on one agent over its unix socket (the lab's sockets), parsed as JSON; throws on no answer or an error status. */
export function agentGet<T>(socket: string, path: string, timeoutMs = 15_000): Promise<T> {
  return agentCall<T>(socket, 'GET', path, timeoutMs);
}

/** One call to one agent over its unix socket (`body` sent as JSON), parsed as JSON; throws on no answer or an error status (its text in the message). */
export function agentCall<T>(socket: string, method: string, path: string, timeoutMs = 15_000, body?: unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const headers = { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
    const r = request({ socketPath: socket, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${path} on ${socket}: ${res.statusCode} ${text}`));
        else {
          try { resolve((text ? JSON.parse(text) : undefined) as T); } catch (e) { reject(e as Error); }
        }
      });
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`${method} ${path} on ${socket} timed out`)));
    r.on('error', reject);
    r.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}

/** True when /proc/PID/stat says the process is a zombie or dead (exited, not yet reaped). */
function zombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Pids of the live (non-zombie) processes on this machine whose command line has `-uuid UUID`: the VM's QEMUs. */
export function qemuPids(uuid: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(`-uuid\0${uuid}\0`) && !zombie(pid)) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}

/** Every host's own list of VMs, asked directly over its socket; throws when a host does not answer. */
export async function vmsByHost(lab: string): Promise<Map<string, VmView[]>> {
  const st = await labStatus(lab);
  const out = new Map<string, VmView[]>();
  await Promise.all(st.hosts.map(async (h) => { out.set(h.name, await agentGet<VmView[]>(h.socket, '/v1/vms')); }));
  return out;
}

/** The VM as exactly one host lists it: where it is, its view, its QEMU pid. */
export interface Placement { host: string; vm: VmView; pid: number }

/**
 * Invariant 1: every host answers; exactly one host lists the VM, in state `running` (on
 * `expectHost` when given); `ferry vm list --json` shows it once; exactly one live QEMU on the
 * machine has its UUID, and it is the pid the agent reports.
 */
export async function assertRunsOnce(lab: string, name: string, expectHost?: string): Promise<Placement> {
  const byHost = await vmsByHost(lab);
  const seen = [...byHost].flatMap(([host, vms]) => vms.filter((v) => v.name === name).map((v) => ({ host, v })));
  assert.equal(seen.length, 1, `${name} is listed by exactly one host, not by [${seen.map((s) => `${s.host}:${s.v.state}`).join(', ')}]`);
  const { host, v } = seen[0] as { host: string; v: VmView };
  assert.equal(v.state, 'running', `${name} on ${host} should be running but is ${v.state}${v.reason ? ` (${v.reason})` : ''}`);
  if (expectHost) assert.equal(host, expectHost, `${name} runs on ${expectHost}`);
  const cli = await ferry<VmView[]>(['vm', 'list', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const listed = cli.json.filter((x) => x.name === name);
  assert.equal(listed.length, 1, `ferry vm list shows ${name} once, not ${listed.length} times`);
  assert.equal(listed[0]?.host, host);
  const pids = qemuPids(v.uuid);
  assert.equal(pids.length, 1, `exactly one live QEMU carries ${name}'s uuid ${v.uuid}, not [${pids.join(', ')}]`);
  assert.ok(v.pid !== null, `${name} has a pid`);
  assert.equal(pids[0], v.pid, `the QEMU on the machine is the one ${host} reports`);
  return { host, vm: v, pid: v.pid };
}

/** What the guest says about itself. */
export interface GuestState { bootId: string; counter: number }

/** Reads /boot-id and /counter from the lab's client namespace. */
export async function guestState(lab: string, ip: string): Promise<GuestState> {
  const bootId = (await guestGet(lab, ip, '/boot-id')).trim();
  const counter = Number((await guestGet(lab, ip, '/counter')).trim());
  assert.ok(bootId.length > 0, `the guest at ${ip} answers /boot-id`);
  assert.ok(Number.isFinite(counter), `the guest at ${ip} answers /counter with a number`);
  return { bootId, counter };
}

/** Waits until the guest answers /health (after boot). */
export async function waitGuest(lab: string, ip: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(`guest ${ip} healthy`, async () => (await guestGet(lab, ip, '/health')).trim() === 'ok', timeoutMs);
}

/** Invariant 3: /verify is ok, /counter grew since `before`, /boot-id is the same. Returns the new state. */
export async function assertGuestIntact(lab: string, ip: string, before: GuestState): Promise<GuestState> {
  const verify = (await guestGet(lab, ip, '/verify', 30)).trim();
  assert.equal(verify, 'ok', `guest memory is intact (/verify said: ${verify.slice(0, 300)})`);
  const now = await guestState(lab, ip);
  assert.equal(now.bootId, before.bootId, 'the guest did not reboot (/boot-id unchanged)');
  assert.ok(now.counter > before.counter, `the counter kept growing (${before.counter} → ${now.counter})`);
  return now;
}

/** `ferry host show H --json`'s freeMemoryMiB. */
export async function freeMemoryMiB(host: string): Promise<number> {
  const r = await ferry<HostView>(['host', 'show', host, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json.freeMemoryMiB;
}

/** The run folder an agent keeps for a VM: `<FERRY_HOME>/labs/<lab>/<host>/vms/<vm>`. */
export const runFolder = (lab: string, host: string, vm: string): string => join(labDir(lab), host, 'vms', vm);

/** The VM before a move that is expected to fail: where it ran, its QEMU, the guest, the destination's free memory. */
export interface BeforeMove { host: string; pid: number; ip: string; guest: GuestState; destination: string; destFreeMiB: number }

/** Records what {@link assertRolledBack} compares against. */
export async function beforeMove(lab: string, name: string, destination: string): Promise<BeforeMove> {
  const p = await assertRunsOnce(lab, name);
  return {
    host: p.host, pid: p.pid, ip: p.vm.ip, guest: await guestState(lab, p.vm.ip), destination,
    destFreeMiB: await freeMemoryMiB(destination),
  };
}

/**
 * Invariant 2, after a failed or cancelled move: the VM runs on the source only, with the same
 * QEMU pid; the destination has no QEMU (checked by {@link assertRunsOnce}), no record, no run
 * folder, and its free memory is back; the guest is intact (same boot id, counter grew).
 */
export async function assertRolledBack(lab: string, name: string, b: BeforeMove): Promise<GuestState> {
  const p = await assertRunsOnce(lab, name, b.host);
  assert.equal(p.pid, b.pid, 'the VM runs in the same QEMU process as before the move');
  const folder = runFolder(lab, b.destination, name);
  assert.equal(existsSync(folder), false, `the destination's run folder ${folder} is gone`);
  assert.equal(await freeMemoryMiB(b.destination), b.destFreeMiB, `${b.destination}'s free memory is back to ${b.destFreeMiB} MiB`);
  return assertGuestIntact(lab, b.ip, b.guest);
}

/** Makes host `host`'s agent SIGKILL itself on reaching `point` (src/migration/faults.ts). */
export function armFault(lab: string, host: string, point: string): void {
  writeFileSync(join(labDir(lab), host, 'faults.json'), `${JSON.stringify({ [point]: 'kill' })}\n`);
}

/** What one persistent TCP echo connection saw. */
export interface EchoStats {
  connected: boolean;
  sent: number;
  received: number;
  /** Replies that were not the next line expected (lost, reordered or corrupted data). */
  mismatches: number;
  /** The longest time between two consecutive replies, in ms (the client sends every 100 ms). */
  maxGapMs: number;
  lastReplyAt: number;
  /** Set when the connection closed or failed: `closed` or `error CODE`. */
  ended: string | null;
}

/** A TCP connection to the guest's echo port from the client namespace, sending a line every 100 ms. */
export interface EchoClient {
  stats(): EchoStats;
  /** Resolves once `n` more replies than now arrived. */
  waitMore(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

// Runs in the client namespace: connects once, sends "SEQ\n" every 100 ms, prints each reply
// with the time it arrived, and says so when the connection ends. Never reconnects.
const ECHO_SCRIPT = `
const net = require('node:net');
const [host, port] = process.argv.slice(-2);
let seq = 0, buf = '';
const s = net.connect({ host, port: Number(port) });
s.setNoDelay(true);
s.on('connect', () => {
  process.stdout.write('connected ' + Date.now() + '\\n');
  setInterval(() => { seq += 1; s.write(seq + '\\n'); process.stdout.write('sent ' + seq + '\\n'); }, 100);
});
s.on('data', (d) => {
  buf += d.toString('utf8');
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    process.stdout.write('echo ' + buf.slice(0, i) + ' ' + Date.now() + '\\n');
    buf = buf.slice(i + 1);
  }
});
s.on('error', (e) => { process.stdout.write('error ' + (e.code || e.message) + '\\n'); process.exit(2); });
s.on('close', () => { process.stdout.write('closed\\n'); process.exit(3); });
`;

/** Opens one TCP connection to `ip:7` from lab `lab`'s client namespace; resolves once it is connected. */
export async function startEchoClient(lab: string, ip: string): Promise<EchoClient> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', clientNsName(lab), process.execPath, '-e', ECHO_SCRIPT, '--', ip, '7'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const st: EchoStats = { connected: false, sent: 0, received: 0, mismatches: 0, maxGapMs: 0, lastReplyAt: 0, ended: null };
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const [kind, a, b] = line.split(' ');
    if (kind === 'connected') { st.connected = true; st.lastReplyAt = Number(a); }
    else if (kind === 'sent') st.sent = Number(a);
    else if (kind === 'echo') {
      const at = Number(b);
      if (Number(a) !== st.received + 1) st.mismatches += 1;
      st.received += 1;
      st.maxGapMs = Math.max(st.maxGapMs, at - st.lastReplyAt);
      st.lastReplyAt = at;
    } else if (kind === 'closed' || kind === 'error') st.ended ??= line;
  });
  child.on('exit', (code, sig) => { st.ended ??= `exited ${code ?? sig}`; });
  const client: EchoClient = {
    stats: () => ({ ...st }),
    async waitMore(n, timeoutMs = 10_000) {
      const target = st.received + n;
      await waitFor(`${n} more echo replies (have ${st.received}, ended: ${st.ended})`, async () => {
        if (st.ended) throw new Error(`the echo connection ended: ${st.ended}`);
        return st.received >= target;
      }, timeoutMs);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
    },
  };
  try {
    await waitFor('the echo connection', async () => {
      if (st.ended) throw new Error(`echo client ended: ${st.ended} ${stderr}`);
      return st.connected && st.received > 0;
    }, 15_000);
  } catch (e) {
    await client.stop();
    throw e;
  }
  return client;
}
