// A one-member etcd (Debian's etcd-server) on loopback, for tests of the cluster's store without a lab.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quorum } from '../../src/cluster/index.js';
import { freePort } from '../../src/util/net.js';
import { waitFor } from './cli.js';

/**
 * A running etcd: its client URL; `freeze(true)` stops the process (SIGSTOP: connections stay open
 * and nothing answers, as with an etcd that lost quorum), `freeze(false)` lets it go on; `stop()`
 * kills it and removes its data.
 */
export interface LoopbackEtcd { url: string; freeze(on: boolean): void; stop(): void }

/** Starts an etcd on 127.0.0.1 (free ports, a data folder of its own) and waits until it is healthy. */
export async function loopbackEtcd(): Promise<LoopbackEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-etcd-it-'));
  const [client, peer] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const url = `http://127.0.0.1:${client}`;
  const etcd = spawn('etcd', ['--name', 'solo', '--data-dir', join(dir, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `solo=http://127.0.0.1:${peer}`], { stdio: 'ignore' });
  const stop = (): void => {
    if (etcd.pid !== undefined && etcd.exitCode === null) process.kill(etcd.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('etcd healthy', async () => (await quorum([url])).healthy, 30_000);
  } catch (e) {
    stop();
    throw e;
  }
  const freeze = (on: boolean): void => { if (etcd.pid !== undefined && etcd.exitCode === null) process.kill(etcd.pid, on ? 'SIGSTOP' : 'SIGCONT'); };
  return { url, freeze, stop };
}
