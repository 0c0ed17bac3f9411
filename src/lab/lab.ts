/**
 * The lab's operations: up, status, down, exec, and the faults tests inject (kill a host,
 * isolate it, heal it). Every one needs root, for namespaces, links and qdiscs.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { CA_FILES, hostCertCurrent, initCa, issueHostCert } from '../security/index.js';
import { imageDir, labDir } from '../util/paths.js';
import { agentPid, defaultAgentEntry, startAgent, stopAgent, waitAgent, writeAgentConfig } from './agents.js';
import { killNamespace, listNetns } from './netns.js';
import {
  agentConfig, checkAccel, clientNsName, checkHostCount, checkLabName, DEFAULT_HOSTS, DEFAULT_LAB, hostIndex, isLabNamespace,
  labPlan, planNamespaces, vmMemoryMiB, type Accel, type HostPlan, type LabPlan,
} from './plan.js';
import type { AgentConfig } from '../agent/config.js';
import { parseRate } from './rate.js';
import { ensureEtcd, etcdMembers, etcdPid, joinLabCluster } from './etcd.js';
import { dropLabContext, readRecord, requireRecord, useLabContext, writeRecord, type LabRecord } from './record.js';
import { ensureTopology, hostLinkState, removeNamespaces, setHostLink, shapeHostLink } from './topology.js';

/** Options of {@link labUp}; anything left out keeps what the lab already has, else the default. */
export interface LabUpOptions {
  /** Lab name (default `ferry`). */
  name?: string;
  /** Number of hosts (default 2). An existing lab grows to it but never shrinks: `down` first. */
  hosts?: number;
  /** Shape every host link to this rate (`1gbit`); `none` removes shaping. */
  bandwidth?: string;
  accel?: Accel;
  /** Start the agents (default true); false builds only the network. */
  agents?: boolean;
  /** The agent's entry script (default: dist/src/agent/main.js of this tree). */
  agentEntry?: string;
  /** How long to wait for each agent to answer (default 20 s). */
  readyTimeoutMs?: number;
  /** Run a 3-member etcd and join the hosts to the cluster `lab` (kept once set). */
  cluster?: boolean;
  /** With a new cluster: its lease TTL and fence margin in seconds (defaults 10 and 5). */
  clusterTiming?: { leaseTtlSec?: number; fenceMarginSec?: number };
  /** Extra agent config for every host (tests set a short convergence timeout this way). */
  agentConfig?: Pick<AgentConfig, 'convergence'>;
}

/** One host as `lab up` and `lab status` report it (CLI.md's JSON plus a few extras). */
export interface LabHostStatus {
  name: string;
  address: string;
  url: string;
  /** The running agent's pid, or null when it is not running. */
  agentPid: number | null;
  namespace: string;
  socket: string;
  /** `down` while isolated; `missing` when the link (or the namespace) is gone. */
  link: 'up' | 'down' | 'missing';
  vmRange: { start: string; end: string };
}

/** What `lab up` and `lab status` report. */
export interface LabStatus {
  name: string;
  hosts: LabHostStatus[];
  client: { namespace: string; address: string };
  bandwidth: string | null;
  accel: Accel;
  dir: string;
  /** With `--cluster`: the etcd members, their client URLs and pids (null: not running). */
  etcd: { name: string; url: string; pid: number | null }[] | null;
}

/** Throws NOT_ROOT unless the process runs as root. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new FerryError('NOT_ROOT', 'The lab needs root to manage network namespaces: run it with sudo.');
  }
}

/** The highest host index among lab `name`'s existing namespaces (0 when none). */
function existingHostCount(name: string, namespaces: string[]): number {
  return namespaces.filter((ns) => isLabNamespace(name, ns))
    .map((ns) => hostIndex(ns.slice(name.length + 1)) ?? 0)
    .reduce((a, b) => Math.max(a, b), 0);
}

/** Decides lab `name`'s next record from the options, its old record and what exists. */
function nextRecord(name: string, opts: LabUpOptions, prev: LabRecord | undefined, namespaces: string[]): LabRecord {
  const found = existingHostCount(name, namespaces);
  const wanted = checkHostCount(opts.hosts ?? prev?.hosts ?? (found || DEFAULT_HOSTS));
  const hosts = Math.max(wanted, prev?.hosts ?? 0, found);
  const bandwidth = opts.bandwidth === undefined ? prev?.bandwidth ?? null : parseRate(opts.bandwidth)?.text ?? null;
  const now = new Date().toISOString();
  return {
    version: 1,
    name,
    hosts,
    bandwidth,
    accel: checkAccel(opts.accel ?? prev?.accel ?? 'auto'),
    ...(opts.cluster || prev?.cluster ? { cluster: true } : {}),
    namespaces: planNamespaces(labPlan(name, hosts, labDir(name))),
    createdAt: prev?.createdAt ?? now,
    updatedAt: now,
  };
}

/** MemTotal of this machine in KiB. */
function memTotalKiB(): number {
  const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 2 * 1024 * 1024;
}

/** Writes each host's agent config and (re)starts the agents that are dead or whose config changed. */
async function ensureAgents(p: LabPlan, rec: LabRecord, opts: LabUpOptions): Promise<void> {
  const inputs = { accel: rec.accel, imageDir: imageDir(), memoryMiB: vmMemoryMiB(memTotalKiB(), p.hosts.length) };
  const entry = opts.agentEntry ?? defaultAgentEntry();
  await ensureCertificates(p);
  await Promise.all(p.hosts.map(async (h) => {
    const changed = writeAgentConfig(h, { ...agentConfig(p, h, inputs), ...opts.agentConfig });
    const pid = agentPid(h);
    const timeoutMs = opts.readyTimeoutMs ?? 20_000;
    if (pid !== null && !changed) {
      await waitAgent(h, pid, timeoutMs);
      return;
    }
    if (pid !== null) await stopAgent(h, 10_000);
    await startAgent(h, { entry, timeoutMs });
  }));
}

/** The lab's CA, made once: it signs the hosts' and the etcd members' certificates. */
async function ensureCa(p: LabPlan): Promise<void> {
  if (!existsSync(join(p.caDir, CA_FILES.cert)) || !existsSync(join(p.caDir, CA_FILES.key))) {
    await initCa(p.caDir, { commonName: `Ferry lab ${p.name} CA`, force: true });
  }
}

/**
 * The lab's PKI: a CA in the lab folder (made once) and a certificate per host naming the host and
 * its two addresses, reissued when missing, for other addresses, from another CA or near expiry.
 * A reissued certificate changes no config, so a running agent is restarted to read it.
 */
async function ensureCertificates(p: LabPlan): Promise<void> {
  await ensureCa(p);
  for (const h of p.hosts) {
    const addresses = [h.address, h.migrationAddress];
    if (hostCertCurrent(p.caDir, h.name, addresses, h.tlsDir)) continue;
    await issueHostCert({ caDir: p.caDir, name: h.name, addresses, outDir: h.tlsDir });
    if (agentPid(h) !== null) await stopAgent(h, 10_000);
  }
}

/**
 * Builds lab `opts.name` or brings it back to health: creates only the missing namespaces,
 * links and addresses, brings every link up, applies the shaping, (re)starts dead agents,
 * records the lab in lab.json and makes it the CLI's current context. Never fails because
 * the lab exists; adopts one left over from a stopped session.
 */
export async function labUp(opts: LabUpOptions = {}): Promise<LabStatus> {
  requireRoot();
  const name = checkLabName(opts.name ?? DEFAULT_LAB);
  const rec = nextRecord(name, opts, readRecord(name), await listNetns());
  writeRecord(rec);
  const p = labPlan(name, rec.hosts, labDir(name));
  await ensureTopology(p);
  const rate = rec.bandwidth === null ? null : parseRate(rec.bandwidth);
  for (const h of p.hosts) await shapeHostLink(p, h, rate);
  if (rec.cluster) await ensureCa(p);
  const etcd = rec.cluster ? await ensureEtcd(p) : undefined;
  if (opts.agents !== false) await ensureAgents(p, rec, opts);
  if (etcd && opts.agents !== false) await joinLabCluster(p, etcd, opts.clusterTiming);
  useLabContext(p);
  return labStatus(name);
}

/** Reports lab `name`; throws LAB_NOT_FOUND when it was never brought up (or was taken down). */
export async function labStatus(name: string = DEFAULT_LAB): Promise<LabStatus> {
  requireRoot();
  const rec = requireRecord(checkLabName(name));
  const p = labPlan(name, rec.hosts, labDir(name));
  const hosts = await Promise.all(p.hosts.map(async (h): Promise<LabHostStatus> => ({
    name: h.name,
    address: h.address,
    url: h.url,
    agentPid: agentPid(h),
    namespace: h.namespace,
    socket: h.socketPath,
    link: await hostLinkState(p, h),
    vmRange: h.vmRange,
  })));
  const etcd = rec.cluster ? etcdMembers(p).map((m) => ({ name: m.name, url: m.clientUrl, pid: etcdPid(m) })) : null;
  return { name, hosts, client: { ...p.client }, bandwidth: rec.bandwidth, accel: rec.accel, dir: p.dir, etcd };
}

/** What {@link labDown} removed. */
export interface LabDownResult { namespaces: string[]; dir: boolean; context: boolean }

/**
 * Takes lab `name` down: stops every process in its namespaces (agents and QEMUs), deletes
 * the namespaces, its folder, and the current context when it points at this lab. Removes
 * nothing else; succeeds when there is nothing left to remove.
 */
export async function labDown(name: string = DEFAULT_LAB): Promise<LabDownResult> {
  requireRoot();
  checkLabName(name);
  const rec = readRecord(name);
  // Also namespaces a lost or older record does not name: the name pattern is the lab's own.
  const found = (await listNetns()).filter((ns) => isLabNamespace(name, ns));
  const names = [...new Set([...(rec?.namespaces ?? []), ...found])];
  const namespaces = await removeNamespaces(names, 3000);
  const dir = labDir(name);
  const hadDir = existsSync(dir);
  rmSync(dir, { recursive: true, force: true });
  return { namespaces, dir: hadDir, context: dropLabContext(name) };
}

/** The plan of host `host` of lab `lab`; throws UNKNOWN_HOST when the lab has no such host. */
export function findHost(lab: string, host: string): { plan: LabPlan; host: HostPlan } {
  const rec = requireRecord(checkLabName(lab));
  const p = labPlan(lab, rec.hosts, labDir(lab));
  const h = p.hosts.find((x) => x.name === host);
  if (!h) {
    throw new FerryError('UNKNOWN_HOST', `Lab ${lab} has no host ${host}; its hosts are ${p.hosts.map((x) => x.name).join(', ')}.`);
  }
  return { plan: p, host: h };
}

/** Power loss of host `host`: SIGKILLs every process in its namespace, agent and QEMUs. Resolves with their pids. */
export async function killHost(lab: string, host: string): Promise<number[]> {
  requireRoot();
  const { host: h } = findHost(lab, host);
  return killNamespace(h.namespace, 0);
}

/** Cuts host `host`'s link (both veth ends down); its processes keep running. */
export async function isolateHost(lab: string, host: string): Promise<void> {
  requireRoot();
  const { plan, host: h } = findHost(lab, host);
  await setHostLink(plan, h, false);
}

/** Restores host `host`'s link after {@link isolateHost}. */
export async function healHost(lab: string, host: string): Promise<void> {
  requireRoot();
  const { plan, host: h } = findHost(lab, host);
  await setHostLink(plan, h, true);
}

/**
 * Runs `argv` in lab `lab`'s client namespace with this process's stdio and resolves with
 * its exit status (128 + signal number when a signal ended it, as shells report it).
 */
export async function labExec(lab: string, argv: string[]): Promise<number> {
  requireRoot();
  const ns = clientNsName(checkLabName(lab));
  if (argv.length === 0) throw new FerryError('INVALID_INPUT', 'Name the command to run after `--`.');
  if (!(await listNetns()).includes(ns)) {
    throw new FerryError('LAB_NOT_FOUND', `Lab ${lab} has no client namespace: run \`ferry lab up --name ${lab}\`.`);
  }
  // Ctrl-C reaches the command too (same process group); let it decide, and report its status.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'inherit' });
      child.on('error', (e) => reject(new FerryError('LAB_FAILED', `Could not run ${argv[0]} in the lab: ${e.message}.`, { cause: e })));
      child.on('exit', (code, signal) => {
        resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
      });
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}
