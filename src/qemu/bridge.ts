import { spawn, type ChildProcess } from 'node:child_process';
import { deleteLinkSoon } from './links.js';
import { runTool, tryTool } from './run.js';

const cmd = (bin: string, args: string[]): Promise<void> => runTool(bin, args, 'MIGRATION_FAILED');

/** The name of the hand-over tunnel of a move (≤ 15 characters, derived from the job id). */
export const tunnelName = (jobId: string): string => `fyx${jobId.replace(/-/g, '').slice(0, 10)}`;

/** A VXLAN network id for a move, from its job id (24 bits, never 0). */
export const tunnelVni = (jobId: string): number => (parseInt(jobId.replace(/-/g, '').slice(0, 6), 16) % 0xfffffe) + 1;

/**
 * Opens this host's end of a move's hand-over tunnel: a VXLAN port on the VM bridge that carries
 * frames for the moving VM from the source host to the destination host. Flooding and learning
 * are off on it, so it forwards only what a pinned entry sends into it and can never make a loop
 * with the hosts' normal uplinks.
 */
export async function openTunnel(name: string, vni: number, local: string, remote: string, bridge: string): Promise<void> {
  await deleteLinkSoon(name);
  await cmd('ip', ['link', 'add', name, 'type', 'vxlan', 'id', String(vni), 'local', local, 'remote', remote, 'dstport', '4789', 'nolearning']);
  await cmd('ip', ['link', 'set', name, 'master', bridge]);
  await cmd('bridge', ['link', 'set', 'dev', name, 'learning', 'off', 'flood', 'off', 'mcast_flood', 'off', 'bcast_flood', 'off']);
  await cmd('ip', ['link', 'set', name, 'up']);
}

/** Removes a tunnel (its pinned entries go with it); missing is fine. The promise may be left running (links.ts). */
export const closeTunnel = (name: string): Promise<void> => deleteLinkSoon(name);

/**
 * Pins the MAC to a bridge port: `static` so it does not age, `sticky` so frames that still come
 * with that source MAC from elsewhere (the VM running on the other host) cannot teach the bridge
 * back. That is what keeps the redirect in place while the source VM still sends.
 */
export async function pinMac(mac: string, dev: string): Promise<void> {
  await cmd('bridge', ['fdb', 'replace', mac, 'dev', dev, 'master', 'static', 'sticky']);
}

/** Drops a pinned entry so normal learning takes over again; missing is fine. */
export async function unpinMac(mac: string, dev: string): Promise<void> {
  await tryTool('bridge', ['fdb', 'del', mac, 'dev', dev, 'master']);
}

/**
 * A `bridge -batch` process kept open for one move, so that a forwarding change at switch-over
 * is a write to a pipe (microseconds) rather than a process start (milliseconds, far more on a
 * busy host) while the guest is paused. `-force` keeps it going past a failed line.
 */
export class BridgeBatch {
  private readonly child: ChildProcess;
  private errors = '';

  constructor() {
    this.child = spawn('bridge', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stderr?.on('data', (d: Buffer) => { this.errors += d.toString(); });
    this.child.on('error', (e) => { this.errors += String(e); });
  }

  /** Pins `mac` to `dev` (static, sticky), without waiting. */
  pin(mac: string, dev: string): void { this.child.stdin?.write(`fdb replace ${mac} dev ${dev} master static sticky\n`); }

  /** Ends the process; resolves with what it reported on stderr (empty when all went well). */
  close(): Promise<string> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) { resolve(this.errors.trim()); return; }
      this.child.once('exit', () => resolve(this.errors.trim()));
      this.child.stdin?.end();
    });
  }
}
