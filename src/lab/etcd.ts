/**
 * The lab's etcd for `ferry lab up --cluster`: three members, Debian's etcd-server, in the switch
 * namespace on addresses of their own (10.77.0.3–5 on the switch bridge). So a host that is killed
 * or isolated takes no etcd member with it, as with a cluster's separate quorum witnesses, and
 * tests make etcd lose quorum by stopping two members (their pids are in `lab status --json`).
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';
import { readPidFile } from '../util/files.js';
import { hostCertCurrent, hostTlsPaths, issueHostCert } from '../security/index.js';
import { logTail } from './agents.js';
import { ip, sleep } from './netns.js';
import { BRIDGE, LAB_PREFIX_LENGTH, type HostPlan, type LabPlan } from './plan.js';

const run = promisify(execFile);

/** One etcd member of the lab; `tlsDir` holds its certificate from the lab's CA (the hosts' CA). */
export interface EtcdMember { name: string; address: string; clientUrl: string; peerUrl: string; dataDir: string; pidPath: string; logPath: string; tlsDir: string }

/** The lab's cluster name in etcd. */
export const LAB_CLUSTER = 'lab';

export function etcdMembers(p: LabPlan): EtcdMember[] {
  return [1, 2, 3].map((i) => {
    const address = `10.77.0.${2 + i}`;
    const dir = join(p.dir, 'etcd', `e${i}`);
    return {
      name: `e${i}`, address, clientUrl: `https://${address}:2379`, peerUrl: `https://${address}:2380`,
      dataDir: join(dir, 'data'), pidPath: join(dir, 'etcd.pid'), logPath: join(dir, 'etcd.log'), tlsDir: join(dir, 'tls'),
    };
  });
}

/** The member's pid and arguments when it runs (its command line names its data folder), else null. */
function etcdProcess(m: EtcdMember): { pid: number; args: string[] } | null {
  const pid = readPidFile(m.pidPath);
  if (pid === undefined) return null;
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes(m.dataDir) ? { pid, args } : null;
  } catch {
    return null;
  }
}

/** The member's pid when it runs, else null. */
export const etcdPid = (m: EtcdMember): number | null => etcdProcess(m)?.pid ?? null;

/**
 * Starts the members that are not running and waits until etcd has a leader. Idempotent. etcd
 * speaks TLS only, to clients and between members, and admits only certificates of the lab's CA
 * (`--client-cert-auth`): the agents present their host certificates. The CA must exist.
 */
export async function ensureEtcd(p: LabPlan): Promise<EtcdMember[]> {
  const members = etcdMembers(p);
  for (const m of members) await ip(['addr', 'replace', `${m.address}/${LAB_PREFIX_LENGTH}`, 'dev', BRIDGE], p.switchNs);
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of members) {
    const running = etcdProcess(m);
    if (running && !running.args.includes('--client-cert-auth')) {
      throw new FerryError('LAB_FAILED', `The lab's etcd member ${m.name} was started by an older Ferry without TLS; run \`ferry lab down --name ${p.name}\` and bring the lab up again.`);
    }
    if (running) continue;
    // Every member's address in each certificate: the members share the switch namespace, so a
    // member's peer connections leave from whichever of them the kernel picks, and etcd checks the
    // client certificate of a peer against the address it connects from.
    const addresses = members.map((x) => x.address);
    const tls = hostCertCurrent(p.caDir, `etcd-${m.name}`, addresses, m.tlsDir)
      ? hostTlsPaths(m.tlsDir) : await issueHostCert({ caDir: p.caDir, name: `etcd-${m.name}`, addresses, outDir: m.tlsDir });
    mkdirSync(join(m.dataDir, '..'), { recursive: true });
    const log = openSync(m.logPath, 'a');
    try {
      const child = spawn('ip', ['netns', 'exec', p.switchNs, 'setsid', 'etcd',
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `ferry-${p.name}`,
        '--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.caCert, '--client-cert-auth',
        '--peer-cert-file', tls.cert, '--peer-key-file', tls.key, '--peer-trusted-ca-file', tls.caCert, '--peer-client-cert-auth',
      ], { stdio: ['ignore', log, log], detached: false });
      child.unref();
      if (child.pid === undefined) throw new FerryError('LAB_FAILED', `etcd member ${m.name} did not start: is etcd-server installed?`);
      // ip and setsid exec, so the spawned pid is etcd's.
      writeFileSync(m.pidPath, `${child.pid}\n`);
    } finally {
      closeSync(log);
    }
  }
  await waitHealthy(p, members, 30_000);
  return members;
}

/** Polls `etcdctl endpoint health` in the switch namespace until a majority answers healthy. */
async function waitHealthy(p: LabPlan, members: EtcdMember[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const tls = hostTlsPaths(members[0]?.tlsDir ?? '');
      const r = await run('ip', ['netns', 'exec', p.switchNs, 'etcdctl', '--endpoints', members.map((m) => m.clientUrl).join(','),
        '--cacert', tls.caCert, '--cert', tls.cert, '--key', tls.key, 'endpoint', 'health', '-w', 'json'],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 });
      last = r.stdout;
    } catch (e) {
      last = (e as { stdout?: string }).stdout ?? String(e);
    }
    const healthy = (() => { try { return (JSON.parse(last) as { health: boolean }[]).filter((x) => x.health).length; } catch { return 0; } })();
    if (healthy >= 2) return;
    await sleep(500);
  }
  const tails = members.map((m) => `${m.name}: ${logTail(m.logPath, 5)}`).join('\n');
  throw new FerryError('LAB_FAILED', `The lab's etcd did not become healthy within ${timeoutMs / 1000} s:\n${tails}`);
}

/** Removes the lab's etcd data (after `down` killed the members with the switch namespace). */
export function removeEtcd(p: LabPlan): void {
  const dir = join(p.dir, 'etcd');
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/** POSTs JSON to an agent over its unix socket (trusted as admin); resolves with status and body. */
function postLocal(h: HostPlan, path: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request({ socketPath: h.socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 500, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Puts every host of the lab in the cluster `lab` (creating it on the first). A host already in
 * it answers as before, so this is idempotent. `opts` set the lease TTL and fence margin at creation.
 */
export async function joinLabCluster(p: LabPlan, members: EtcdMember[], opts: { leaseTtlSec?: number; fenceMarginSec?: number } = {}): Promise<void> {
  const endpoints = members.map((m) => m.clientUrl);
  for (const [i, h] of p.hosts.entries()) {
    let r = await postLocal(h, '/v1/cluster', { name: LAB_CLUSTER, endpoints, ...(i === 0 ? { create: true, ...opts } : {}) });
    if (i === 0 && r.status === 409 && r.text.includes('CLUSTER_EXISTS')) r = await postLocal(h, '/v1/cluster', { name: LAB_CLUSTER, endpoints });
    if (r.status !== 200) throw new FerryError('LAB_FAILED', `Host ${h.name} could not join the lab's cluster: ${r.text}`);
  }
}
