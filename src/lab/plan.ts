/**
 * The lab's plan: names, addresses and agent configs, all derived from the lab's name and
 * host count. Pure, so that `up`, `status`, `down` and the tests agree without asking the
 * kernel, and so that a lab left behind by a stopped session can be found again by name.
 */
import { join } from 'node:path';
import type { AgentConfig } from '../agent/config.js';
import { FerryError } from '../errors/index.js';

export const DEFAULT_LAB = 'ferry';
export const DEFAULT_HOSTS = 2;
/** Host hK gets 10.77.0.(10+K) and the VM range 10.77.K.0/24, so K stays well under 245. */
export const MAX_HOSTS = 64;
export const AGENT_PORT = 7700;
export const LAB_PREFIX_LENGTH = 16;
export const CLIENT_ADDRESS = '10.77.0.2';

/** The bridge in the switch namespace and in each host namespace (where the agent attaches taps). */
export const BRIDGE = 'br0';
/** Interface name of a host's or the client's end of its link to the switch. */
export const UPLINK = 'eth0';
/** Switch-side port of the client's link; a host's switch-side port is named after the host. */
export const CLIENT_PORT = 'client';
/**
 * The lab's second network, for migration traffic only (Hyper-V's migration networks): a bridge
 * of its own in the switch namespace, one link per host (`mig0`), addresses 10.78.0.(10+K)/16.
 * Nothing uses it until a host's settings name it (`ferry host settings H --migration-network 10.78.0.0/16`).
 */
export const MIGRATION_NETWORK = '10.78.0.0/16';
export const MIGRATION_BRIDGE = 'br1';
export const MIGRATION_UPLINK = 'mig0';

export type Accel = AgentConfig['accel'];
export const ACCELS: readonly Accel[] = ['auto', 'kvm', 'tcg'];

/** One host of the lab: its namespace, addresses and the files its agent uses. */
export interface HostPlan {
  name: string;
  index: number;
  namespace: string;
  address: string;
  url: string;
  /** The host's port on the switch bridge (in the switch namespace). */
  switchPort: string;
  /** The host's address on the lab's migration network, and its port on that network's bridge. */
  migrationAddress: string;
  migrationPort: string;
  vmRange: { start: string; end: string };
  stateDir: string;
  configPath: string;
  socketPath: string;
  logPath: string;
  pidPath: string;
  /** The host's TLS folder: its certificate and key from the lab's CA, in QEMU's tls-creds-x509 layout. */
  tlsDir: string;
}

/** Everything a lab of a given name and size consists of. */
export interface LabPlan {
  name: string;
  dir: string;
  switchNs: string;
  client: { namespace: string; address: string };
  sharedDir: string;
  /** The lab's CA (`ferry ca init`), which signs every host's certificate. */
  caDir: string;
  hosts: HostPlan[];
}

const LAB_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** Throws INVALID_INPUT unless `name` can prefix namespace names and folder names. */
export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name) || name.endsWith('-')) {
    throw new FerryError('INVALID_INPUT',
      `The lab name "${name}" is not 1–31 characters of a-z, 0-9 and dashes, starting with a letter.`);
  }
  return name;
}

/** Throws INVALID_INPUT unless `n` is a whole number of hosts from 1 to MAX_HOSTS. */
export function checkHostCount(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) {
    throw new FerryError('INVALID_INPUT', `The host count ${n} is not a whole number from 1 to ${MAX_HOSTS}.`);
  }
  return n;
}

/** The name of the lab's K-th host (1-based). */
export const hostName = (k: number): string => `h${k}`;

/** The index K of a host name `hK`, or undefined when the name is not one. */
export function hostIndex(name: string): number | undefined {
  const m = /^h([1-9]\d*)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The network namespace of a lab's host (`h1`), or of `sw` / `client`. */
export const nsName = (lab: string, host: string): string => `${lab}-${host}`;
export const switchNsName = (lab: string): string => nsName(lab, 'sw');
export const clientNsName = (lab: string): string => nsName(lab, 'client');

/**
 * True when `ns` is one of the namespaces a lab named `lab` makes. Parts after the lab name
 * have no dash, so the split at the last dash is unique: labs never claim each other's.
 */
export function isLabNamespace(lab: string, ns: string): boolean {
  if (!ns.startsWith(`${lab}-`)) return false;
  const rest = ns.slice(lab.length + 1);
  return rest === 'sw' || rest === 'client' || hostIndex(rest) !== undefined;
}

/** The plan of host K of a lab whose folder is `dir`. */
export function hostPlan(lab: string, dir: string, k: number): HostPlan {
  const name = hostName(k);
  const address = `10.77.0.${10 + k}`;
  const stateDir = join(dir, name);
  return {
    name,
    index: k,
    namespace: nsName(lab, name),
    address,
    url: `https://${address}:${AGENT_PORT}`,
    switchPort: name,
    migrationAddress: `10.78.0.${10 + k}`,
    migrationPort: `${name}-m`,
    vmRange: { start: `10.77.${k}.1`, end: `10.77.${k}.254` },
    stateDir,
    configPath: join(stateDir, 'ferryd.json'),
    socketPath: join(stateDir, 'api.sock'),
    logPath: join(stateDir, 'ferryd.log'),
    pidPath: join(stateDir, 'ferryd.pid'),
    tlsDir: join(stateDir, 'tls'),
  };
}

/** The whole plan of lab `name` with `hosts` hosts, kept in folder `dir`. */
export function labPlan(name: string, hosts: number, dir: string): LabPlan {
  checkLabName(name);
  checkHostCount(hosts);
  return {
    name,
    dir,
    switchNs: switchNsName(name),
    client: { namespace: clientNsName(name), address: CLIENT_ADDRESS },
    sharedDir: join(dir, 'shared'),
    caDir: join(dir, 'ca'),
    hosts: Array.from({ length: hosts }, (_, i) => hostPlan(name, dir, i + 1)),
  };
}

/** Every namespace of a plan, switch first (the order `up` creates them in). */
export const planNamespaces = (p: LabPlan): string[] =>
  [p.switchNs, p.client.namespace, ...p.hosts.map((h) => h.namespace)];

/** Memory each host offers VMs: 80% of the machine shared by the hosts, at most 8 GiB. */
export function vmMemoryMiB(memTotalKiB: number, hosts: number): number {
  return Math.max(1, Math.min(8192, Math.floor((memTotalKiB / 1024) * 0.8 / hosts)));
}

/** What an agent config depends on beyond the plan. */
export interface AgentConfigInputs { accel: Accel; imageDir: string; memoryMiB: number }

/** The config file the lab writes for host `h`'s agent. */
export function agentConfig(p: LabPlan, h: HostPlan, inputs: AgentConfigInputs): AgentConfig {
  return {
    hostName: h.name,
    stateDir: h.stateDir,
    listen: { host: h.address, port: AGENT_PORT },
    url: h.url,
    socketPath: h.socketPath,
    bridge: BRIDGE,
    vmNetwork: { prefixLength: LAB_PREFIX_LENGTH, rangeStart: h.vmRange.start, rangeEnd: h.vmRange.end },
    pools: [
      { name: 'default', path: join(h.stateDir, 'pools', 'default') },
      // Every host of the lab sees this folder, so moves between them need not copy disks.
      { name: 'shared', path: p.sharedDir, sharedId: `lab-${p.name}` },
    ],
    accel: inputs.accel,
    imageDir: inputs.imageDir,
    memoryMiB: inputs.memoryMiB,
    peers: p.hosts.filter((o) => o.name !== h.name).map((o) => ({ name: o.name, url: o.url })),
    tls: { caCert: join(h.tlsDir, 'ca-cert.pem'), cert: join(h.tlsDir, 'server-cert.pem'), key: join(h.tlsDir, 'server-key.pem'), dir: h.tlsDir },
  };
}

/** Throws INVALID_INPUT unless `a` is an accelerator mode the agent knows. */
export function checkAccel(a: string): Accel {
  if (!(ACCELS as readonly string[]).includes(a)) {
    throw new FerryError('INVALID_INPUT', `The accelerator "${a}" is not one of ${ACCELS.join(', ')}.`);
  }
  return a as Accel;
}
