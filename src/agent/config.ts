import { readFileSync } from 'node:fs';
import { FerryError } from '../errors/index.js';
import type { ConvergencePolicy } from '../migration/policy.js';

/** A storage pool: a directory that holds VM disk images. */
export interface PoolConfig {
  name: string;
  path: string;
  /** Set when every host reporting the same id sees the same files (NFS, CephFS, a lab-wide folder). */
  sharedId?: string;
}

/** ferryd's configuration file (JSON). The lab writes one per host; docs/install.md documents it. */
export interface AgentConfig {
  /** The host's name, unique in its context or cluster. */
  hostName: string;
  /** Holds ferry.db, VM run folders (pidfile, QMP socket, logs) and the agent's pidfile. */
  stateDir: string;
  /** TCP address the API and peer RPC listen on. */
  listen: { host: string; port: number };
  /** Optional unix socket that also serves the API (the lab's CLI uses it from the root namespace). */
  socketPath?: string;
  /** Base URL other hosts and clients use to reach this agent. */
  url: string;
  /** The bridge VM taps attach to. */
  bridge: string;
  /** Addresses handed to VMs (given to the guest on its kernel command line). */
  vmNetwork: { prefixLength: number; gateway?: string; rangeStart: string; rangeEnd: string };
  pools: PoolConfig[];
  accel: 'auto' | 'kvm' | 'tcg';
  /** Folder with the built test guest (kernel + initrd). */
  imageDir: string;
  /** Memory available to VMs, MiB; default: 80% of the host's MemTotal. */
  memoryMiB?: number;
  /** vCPUs one VM may have at most; default: the host's CPU count. */
  cpus?: number;
  /** Other agents of the same context. */
  peers: { name: string; url: string }[];
  /** Seconds a graceful (ACPI) stop waits before it kills QEMU. */
  stopTimeoutSec?: number;
  /** Storage copies (live storage moves on this host, moves that carry disks) that may run at once; default 2. */
  maxStorageMigrations?: number;
  /** Overrides of the convergence policy for moves this host sends (src/migration/policy.ts, DEFAULT_POLICY). */
  convergence?: Partial<ConvergencePolicy>;
  /**
   * The host's identity (`ferry host cert issue`, docs/security.md): the CA's certificate, the
   * host's certificate and key, and the folder holding them in QEMU's tls-creds-x509 layout. With it
   * the TCP listener is HTTPS with mutual TLS for peer RPC, and moves are encrypted; without it the
   * listener is plain HTTP and every move must be allowed to travel unencrypted.
   */
  tls?: { caCert: string; cert: string; key: string; dir: string };
  /**
   * TLS to an etcd of https:// endpoints that has a CA of its own: the CA etcd's certificate
   * chains to, and this host's client certificate and key (PEM files). Absent: `tls` above.
   */
  etcdTls?: { caCert: string; cert: string; key: string };
}

/** Reads and checks an agent config file; throws CONFIG_INVALID with the reason. */
export function loadConfig(path: string): AgentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FerryError('CONFIG_INVALID', `The agent config ${path} could not be read as JSON.`, { cause: e });
  }
  const c = raw as Partial<AgentConfig>;
  const missing = (['hostName', 'stateDir', 'listen', 'url', 'bridge', 'vmNetwork', 'pools', 'imageDir'] as const)
    .filter((k) => c[k] === undefined);
  if (missing.length > 0) {
    throw new FerryError('CONFIG_INVALID', `The agent config ${path} lacks ${missing.join(', ')}.`);
  }
  return { accel: 'auto', peers: [], stopTimeoutSec: 30, ...c } as AgentConfig;
}
