/**
 * Machine, CPU, object and network types from QEMU 7.2's QAPI schema (qapi/run-state.json,
 * machine.json, machine-target.json, qom.json, net.json), checked against `query-qmp-schema`.
 */
import type { QapiString } from './qapi-common.js';

/** QAPI `RunState`. A VM started with `-S` is `prelaunch`; after an outgoing migration, `postmigrate`. */
export type RunState =
  | 'debug' | 'inmigrate' | 'internal-error' | 'io-error' | 'paused' | 'postmigrate'
  | 'prelaunch' | 'finish-migrate' | 'restore-vm' | 'running' | 'save-vm' | 'shutdown'
  | 'suspended' | 'watchdog' | 'guest-panicked' | 'colo';

/** QAPI `StatusInfo`, the return of query-status. */
export interface StatusInfo {
  running: boolean;
  /** Deprecated in 7.2 (always false outside the debugger). */
  singlestep: boolean;
  status: RunState;
}

/** QAPI `VersionTriple`. */
export interface VersionTriple {
  major: number;
  minor: number;
  micro: number;
}

/** QAPI `VersionInfo`: the return of query-version and the `version` of the QMP greeting. */
export interface VersionInfo {
  qemu: VersionTriple;
  /** The distribution's package version, e.g. "Debian 1:7.2+dfsg-7+deb12u18". */
  package: string;
}

/** QAPI `CpuInfoFast`, one entry of query-cpus-fast. */
export interface CpuInfoFast {
  'cpu-index': number;
  'qom-path': string;
  /** Host thread id of the vCPU thread. */
  'thread-id': number;
  props?: {
    'node-id'?: number;
    'socket-id'?: number;
    'die-id'?: number;
    'cluster-id'?: number;
    'core-id'?: number;
    'thread-id'?: number;
  };
  /** The target architecture (`x86_64` here); s390x adds `cpu-state`. */
  target: string;
  'cpu-state'?: string;
}

/** QAPI `CpuDefinitionInfo`, one entry of query-cpu-definitions. */
export interface CpuDefinitionInfo {
  name: string;
  'migration-safe'?: boolean;
  static: boolean;
  /** Features the host (accelerator) lacks for this model; empty means usable here. */
  'unavailable-features'?: string[];
  typename: string;
  'alias-of'?: string;
  deprecated: boolean;
}

/** QAPI `CpuModelInfo`: a model name and property overrides (feature → boolean, etc.). */
export interface CpuModelInfo {
  name: string;
  props?: Record<string, unknown>;
}

/** QAPI `CpuModelExpansionType`. */
export type CpuModelExpansionType = 'static' | 'full';

/** QAPI `MachineInfo`, one entry of query-machines (7.2 has no `acpi` member yet). */
export interface MachineInfo {
  name: string;
  alias?: string;
  'is-default'?: boolean;
  'cpu-max': number;
  'hotpluggable-cpus': boolean;
  'numa-mem-supported': boolean;
  deprecated: boolean;
  'default-cpu-type'?: string;
  'default-ram-id'?: string;
}

/** QAPI `KvmInfo`. `present` says KVM support is built in; `enabled` that this VM uses it. */
export interface KvmInfo {
  enabled: boolean;
  present: boolean;
}

interface TlsCredsProperties {
  'verify-peer'?: boolean;
  /** Directory holding ca-cert.pem, server-cert.pem / client-cert.pem and keys. */
  dir?: string;
  endpoint?: 'client' | 'server';
  priority?: string;
}

interface MemoryBackendProperties {
  size: number;
  dump?: boolean;
  'host-nodes'?: number[];
  merge?: boolean;
  policy?: 'default' | 'preferred' | 'bind' | 'interleave';
  prealloc?: boolean;
  'prealloc-threads'?: number;
  'prealloc-context'?: string;
  share?: boolean;
  reserve?: boolean;
  'x-use-canonical-path-for-ramblock-id'?: boolean;
}

/** QOM types typed in full for object-add. */
export type ObjectOptionsTyped =
  | ({ 'qom-type': 'tls-creds-x509'; id: string; 'sanity-check'?: boolean; passwordid?: string } & TlsCredsProperties)
  | ({ 'qom-type': 'tls-creds-psk'; id: string; username?: string } & TlsCredsProperties)
  | ({ 'qom-type': 'tls-creds-anon'; id: string } & TlsCredsProperties)
  | {
      'qom-type': 'secret';
      id: string;
      format?: 'raw' | 'base64';
      keyid?: string;
      iv?: string;
      data?: string;
      file?: string;
    }
  | { 'qom-type': 'authz-simple'; id: string; identity: string }
  | {
      'qom-type': 'iothread';
      id: string;
      'aio-max-batch'?: number;
      'thread-pool-min'?: number;
      'thread-pool-max'?: number;
      'poll-max-ns'?: number;
      'poll-grow'?: number;
      'poll-shrink'?: number;
    }
  | ({ 'qom-type': 'memory-backend-ram'; id: string } & MemoryBackendProperties)
  | ({
      'qom-type': 'memory-backend-file';
      id: string;
      'mem-path': string;
      align?: number;
      'discard-data'?: boolean;
      pmem?: boolean;
      readonly?: boolean;
    } & MemoryBackendProperties)
  | ({
      'qom-type': 'memory-backend-memfd';
      id: string;
      hugetlb?: boolean;
      hugetlbsize?: number;
      seal?: boolean;
    } & MemoryBackendProperties);

/** The other QAPI `ObjectType`s of QEMU 7.2, accepted without checking their members. */
export type ObjectTypeUntyped =
  | 'authz-list' | 'authz-listfile' | 'authz-pam' | 'can-bus' | 'can-host-socketcan'
  | 'colo-compare' | 'cryptodev-backend' | 'cryptodev-backend-builtin' | 'cryptodev-backend-lkcf'
  | 'cryptodev-vhost-user' | 'dbus-vmstate' | 'filter-buffer' | 'filter-dump' | 'filter-mirror'
  | 'filter-redirector' | 'filter-replay' | 'filter-rewriter' | 'input-barrier' | 'input-linux'
  | 'main-loop' | 'memory-backend-epc' | 'pef-guest' | 'pr-manager-helper' | 'qtest'
  | 'rng-builtin' | 'rng-egd' | 'rng-random' | 'secret_keyring' | 'sev-guest' | 'thread-context'
  | 's390-pv-guest' | 'throttle-group' | 'tls-cipher-suites' | 'x-remote-object'
  | 'x-vfio-user-server';

/** QAPI `ObjectOptions`, the argument of object-add. */
export type ObjectOptions =
  | ObjectOptionsTyped
  | { 'qom-type': ObjectTypeUntyped; id: string; [property: string]: unknown };

/** Netdev backends typed in full for netdev_add. */
export type NetdevTyped =
  | {
      type: 'tap';
      id: string;
      ifname?: string;
      fd?: string;
      fds?: string;
      script?: string;
      downscript?: string;
      br?: string;
      helper?: string;
      sndbuf?: number;
      vnet_hdr?: boolean;
      vhost?: boolean;
      vhostfd?: string;
      vhostfds?: string;
      vhostforce?: boolean;
      queues?: number;
      'poll-us'?: number;
    }
  | {
      type: 'user';
      id: string;
      hostname?: string;
      restrict?: boolean;
      ipv4?: boolean;
      ipv6?: boolean;
      ip?: string;
      net?: string;
      host?: string;
      dhcpstart?: string;
      dns?: string;
      dnssearch?: QapiString[];
      hostfwd?: QapiString[];
      guestfwd?: QapiString[];
      [option: string]: unknown;
    };

/** QAPI `Netdev`, the argument of netdev_add (strongly typed since QEMU 6.0). */
export type Netdev =
  | NetdevTyped
  | {
      type: 'none' | 'nic' | 'l2tpv3' | 'socket' | 'stream' | 'dgram' | 'vde' | 'bridge'
        | 'hubport' | 'netmap' | 'vhost-user' | 'vhost-vdpa';
      id: string;
      [option: string]: unknown;
    };
