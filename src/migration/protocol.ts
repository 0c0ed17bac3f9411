/**
 * Peer RPC between the agents of a move, protocol version 1. The source drives: every message
 * is a request from the source agent to the destination agent over HTTPS with mutual TLS (each
 * presents its host certificate from the hosts' CA; docs/security.md), answered with a reply or with Ferry's error body
 * `{"error":{"code","message"}}`. The sequence diagrams, what each side persists, and what a
 * restart does are in docs/design/0001-migration-protocol.md.
 *
 * Versioning: each body carries `protocol`; the path carries `/v1/`. A receiver ignores fields
 * it does not know, so adding an optional field keeps version 1; removing or changing the
 * meaning of one makes version 2, served beside version 1 at `/peer/v2/`.
 */
import { FerryError, type ErrorCode } from '../errors/index.js';
import type { DiskFacts } from './storage.js';
import { PERFORMANCE_OPTIONS } from './host-settings.js';
import type { MigrationStatus } from '../qmp/index.js';
import type { VmSpec } from '../vm/index.js';
import { JOB_STATUSES, PHASES, type JobError, type JobStatus, type JobTotals, type MoveOptions, type Phase } from './job.js';

/** The protocol version this agent speaks. */
export const PROTOCOL_VERSION = 1;

/** Fields every message carries. */
export interface Envelope {
  protocol: typeof PROTOCOL_VERSION;
  /** The job id the source chose; the destination's record uses the same id. */
  jobId: string;
}

/** source → destination: get ready to receive the VM (destination phase prepare). */
export interface PrepareRequest extends Envelope {
  vm: VmSpec;
  /** Host names as each agent knows itself; a request that reached the wrong host is refused. */
  source: string;
  destination: string;
  options: MoveOptions;
  /** The network hand-over tunnel the source asks for (see docs/design/0001): its VXLAN id and the source's address. */
  handover?: { vni: number; sourceAddress: string };
  /** Per disk of `vm`, in order: its allocation and shared pool id on the source (optional in v1: older sources send none). */
  disks?: DiskFacts[];
  /** The source's IPv4 addresses: the destination listens in the best migration network both have (networks.ts). */
  sourceAddresses?: string[];
  /**
   * The source host allows unencrypted moves (its allowInsecureMigration). The destination decides:
   * plain only when it allows them too; absent means no.
   */
  allowInsecure?: boolean;
}

/** An NBD export the source mirrors one disk into, for a storage move. */
export interface NbdTarget {
  /** The disk's path on the source, which names the disk in both specs. */
  sourcePath: string;
  /** Where the copy lives on the destination. */
  destinationPath: string;
  /** `nbd://ADDR:PORT/EXPORT`; NBD over TLS when the reply says `encrypted`. */
  uri: string;
}

/** The destination listens: QEMU runs with `-incoming defer` and `migrate-incoming` was sent. */
export interface PrepareReply extends Envelope {
  /** Where the source's QEMU sends the stream, e.g. `tcp:10.0.0.2:49152`. */
  migrationUri: string;
  /** One target per disk for a storage move; empty when storage is shared. */
  nbd: NbdTarget[];
  /** Memory reserved for the incoming VM, released by cancel or a failed finish. */
  reservedMemoryMiB: number;
  /** Present when the destination opened its end of the hand-over tunnel. */
  handover?: { destinationAddress: string };
  /**
   * Whether the destination's QEMU expects TLS on the migration and NBD ports (verifying the source
   * host's certificate). Absent (an older agent) means plain TCP, which a source that does not allow
   * unencrypted moves refuses.
   */
  encrypted?: boolean;
}

/** source → destination: the source entered perform and is about to `migrate`. */
export type PerformReadyRequest = Envelope;

/** The destination checked that its incoming QEMU still waits for the stream. */
export interface PerformReadyReply extends Envelope {
  /** The incoming query-migrate status (`setup` while it listens). */
  incomingStatus: MigrationStatus;
}

/** source → destination: point the VM's MAC at the destination's tap, or back. */
export interface CutoverRequest extends Envelope {
  action: 'redirect' | 'restore';
  mac: string;
}

/** The forwarding entries are in place (or removed). */
export interface CutoverReply extends Envelope {
  action: 'redirect' | 'restore';
  /** When the destination applied it (ISO 8601), for the timeline in the summary. */
  appliedAt: string;
}

/**
 * source → destination: `success` once the source's QEMU reported `completed`: resume the VM,
 * announce it, take it over. `failure`: kill the incoming QEMU and delete what prepare made.
 */
export interface FinishRequest extends Envelope {
  outcome: 'success' | 'failure';
  error?: JobError;
}

/**
 * `resumed: true` only after QEMU emitted RESUME on the destination: from then on the
 * destination owns the VM. `resumed: false` means the destination rolled back.
 */
export interface FinishReply extends Envelope {
  resumed: boolean;
  error?: JobError;
}

/** source → destination: the source stopped its QEMU (success) or resumed the VM (failure). */
export interface ConfirmRequest extends Envelope {
  outcome: 'success' | 'failure';
  totals: JobTotals;
}

/** The destination's record has ended with this status. */
export interface ConfirmReply extends Envelope {
  status: JobStatus;
}

/**
 * source → destination: abandon the move and clean up. Idempotent (a job the destination
 * never saw or already cleaned answers `failed`/`cancelled`); refused with JOB_BAD_PHASE once
 * the destination has resumed the VM, because then it owns it.
 */
export interface CancelRequest extends Envelope {
  reason: string;
}

/** The destination's record after the cancel. */
export interface CancelReply extends Envelope {
  status: JobStatus;
}

/** What the peer's record says about a job; null fields when it never heard of it. */
export interface PeerJobView {
  status: JobStatus;
  phase: Phase;
  direction: 'forward' | 'rollback' | null;
  postcopy: boolean;
}

/** What a peer observes of the VM's QEMU on its side: the facts recovery needs. */
export interface PeerQemuView {
  alive: boolean;
  running: boolean;
  migrationStatus?: MigrationStatus;
}

/** Either side → peer (GET, no body): the peer's record of the job and its QEMU. */
export interface StatusReply extends Envelope {
  job: PeerJobView | null;
  qemu: PeerQemuView;
}

/**
 * source → destination, outside any job (`POST /v1/peer/compare`): would a move of this VM with
 * these options work there? The destination judges its own facts (settings, free memory and CPUs,
 * machine types, CPU model, bridge, a VM of that name, the storage dry run) and answers its
 * problems; the source adds its own. Read-only on both sides.
 */
export interface CompareRequest {
  protocol: typeof PROTOCOL_VERSION;
  vm: VmSpec;
  source: string;
  destination: string;
  options: MoveOptions;
  /** As in prepare: per disk of `vm`, its allocation and shared pool id on the source. */
  disks?: DiskFacts[];
  /** The features the VM's CPU model enables on the source (full expansion); absent when the source could not tell. */
  cpuFeatures?: string[];
}

/** The destination's problems with the move; empty when it would take the VM. */
export interface CompareReply {
  protocol: typeof PROTOCOL_VERSION;
  host: string;
  incompatibilities: { code: ErrorCode; message: string }[];
}

/**
 * Refuses a message of another protocol version with PROTOCOL_VERSION (before schema
 * details, so the peer learns the real reason).
 */
export function checkProtocol(body: unknown): void {
  const v = typeof body === 'object' && body !== null ? (body as { protocol?: unknown }).protocol : undefined;
  if (v !== PROTOCOL_VERSION) {
    throw new FerryError('PROTOCOL_VERSION',
      `The peer sent migration protocol version ${String(v)}; this agent speaks version ${PROTOCOL_VERSION}.`);
  }
}

// ─── JSON schemas (plain objects for fastify: route `schema.body` / `schema.response`) ───

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const migrationStatus = { type: 'string' } as const;

const envelope = { protocol: { type: 'integer', minimum: 1 }, jobId: { type: 'string', minLength: 1, maxLength: 64 } } as const;
const envelopeRequired = ['protocol', 'jobId'] as const;

const jobErrorSchema = {
  type: 'object', required: ['code', 'message'], properties: { code: str, message: str },
} as const;

/** The VM spec as it travels in prepare. */
export const vmSpecSchema = {
  type: 'object',
  required: ['name', 'uuid', 'memoryMiB', 'cpus', 'cpuModel', 'machine', 'mac', 'ip', 'prefixLength', 'disks', 'ha'],
  properties: {
    name: str, uuid: str, memoryMiB: { type: 'integer', minimum: 1 }, cpus: { type: 'integer', minimum: 1 },
    cpuModel: str, machine: str, mac: str, ip: str, prefixLength: int, gateway: str, ha: { type: 'boolean' }, group: str,
    boot: { type: 'object', required: ['kernel', 'initrd'], properties: { kernel: str, initrd: str } },
    disks: {
      type: 'array',
      items: {
        type: 'object', required: ['path', 'sizeBytes', 'pool', 'format'],
        properties: { path: str, sizeBytes: int, pool: str, format: { type: 'string', enum: ['qcow2'] } },
      },
    },
  },
} as const;

const moveOptionsSchema = {
  type: 'object', required: ['includeStorage'],
  properties: {
    includeStorage: { type: 'boolean' }, storagePath: str, probe: { type: 'boolean' },
    allowPostcopy: { type: 'boolean' }, allowAutoConverge: { type: 'boolean' }, retainSourceDisks: { type: 'boolean' },
    maxBandwidthBytesPerSec: { type: 'integer', minimum: 1 }, performance: { type: 'string', enum: PERFORMANCE_OPTIONS },
  },
} as const;

const totalsSchema = {
  type: 'object', required: ['totalMs', 'downtimeMs', 'transferredBytes', 'passes'],
  properties: {
    totalMs: nullableInt, downtimeMs: nullableInt, transferredBytes: nullableInt, passes: nullableInt, diskBytes: nullableInt, diskMs: nullableInt,
    encrypted: { type: ['boolean', 'null'] },
  },
} as const;

const status = { type: 'string', enum: JOB_STATUSES } as const;

/** Builds an object schema with the envelope's fields first. */
function message<P extends Record<string, unknown>, R extends readonly string[]>(properties: P, required: R) {
  return {
    type: 'object',
    required: [...envelopeRequired, ...required],
    properties: { ...envelope, ...properties },
  } as const;
}

/** Request and reply schemas of every message. */
export const peerSchemas = {
  prepareRequest: message({
    vm: vmSpecSchema, source: str, destination: str, options: moveOptionsSchema,
    handover: { type: 'object', required: ['vni', 'sourceAddress'], properties: { vni: { type: 'integer', minimum: 1, maximum: 16777215 }, sourceAddress: str } },
    sourceAddresses: { type: 'array', maxItems: 64, items: str },
    allowInsecure: { type: 'boolean' },
    disks: {
      type: 'array', maxItems: 64,
      items: { type: 'object', required: ['allocatedBytes'], properties: { allocatedBytes: int, sharedId: str } },
    },
  }, ['vm', 'source', 'destination', 'options']),
  prepareReply: message({
    migrationUri: str, reservedMemoryMiB: int, encrypted: { type: 'boolean' },
    handover: { type: 'object', required: ['destinationAddress'], properties: { destinationAddress: str } },
    nbd: {
      type: 'array',
      items: { type: 'object', required: ['sourcePath', 'destinationPath', 'uri'], properties: { sourcePath: str, destinationPath: str, uri: str } },
    },
  }, ['migrationUri', 'nbd', 'reservedMemoryMiB']),
  performReadyRequest: message({}, []),
  performReadyReply: message({ incomingStatus: migrationStatus }, ['incomingStatus']),
  cutoverRequest: message({ action: { type: 'string', enum: ['redirect', 'restore'] }, mac: { type: 'string', pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' } }, ['action', 'mac']),
  cutoverReply: message({ action: { type: 'string', enum: ['redirect', 'restore'] }, appliedAt: str }, ['action', 'appliedAt']),
  finishRequest: message({ outcome: { type: 'string', enum: ['success', 'failure'] }, error: jobErrorSchema }, ['outcome']),
  finishReply: message({ resumed: { type: 'boolean' }, error: jobErrorSchema }, ['resumed']),
  confirmRequest: message({ outcome: { type: 'string', enum: ['success', 'failure'] }, totals: totalsSchema }, ['outcome', 'totals']),
  confirmReply: message({ status }, ['status']),
  cancelRequest: message({ reason: str }, ['reason']),
  cancelReply: message({ status }, ['status']),
  statusReply: message({
    job: {
      type: ['object', 'null'], required: ['status', 'phase', 'direction', 'postcopy'],
      properties: { status, phase: { type: 'string', enum: PHASES }, direction: { type: ['string', 'null'] }, postcopy: { type: 'boolean' } },
    },
    qemu: { type: 'object', required: ['alive', 'running'], properties: { alive: { type: 'boolean' }, running: { type: 'boolean' }, migrationStatus } },
  }, ['job', 'qemu']),
} as const;

const diskFactsSchema = {
  type: 'array', maxItems: 64,
  items: { type: 'object', required: ['allocatedBytes'], properties: { allocatedBytes: int, sharedId: str } },
} as const;

/** The compare message's schemas: no job, so no envelope's jobId (the path carries the version). */
export const compareSchemas = {
  compareRequest: {
    type: 'object', required: ['protocol', 'vm', 'source', 'destination', 'options'],
    properties: {
      protocol: envelope.protocol, vm: vmSpecSchema, source: str, destination: str, options: moveOptionsSchema, disks: diskFactsSchema,
      cpuFeatures: { type: 'array', maxItems: 4096, items: str },
    },
  },
  compareReply: {
    type: 'object', required: ['protocol', 'host', 'incompatibilities'],
    properties: { protocol: envelope.protocol, host: str, incompatibilities: { type: 'array', items: jobErrorSchema } },
  },
} as const;

const errorBody = {
  type: 'object', required: ['error'], properties: { error: jobErrorSchema },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

/** Base path of version 1; a job's messages live under `${PEER_BASE}/:id`. */
export const PEER_BASE = '/v1/peer/migrations';

/** The names of the messages. */
export type PeerMessage = 'prepare' | 'perform-ready' | 'cutover' | 'finish' | 'confirm' | 'cancel' | 'status';

const post = <B, R>(name: string, body: B, reply: R) => ({
  method: 'POST', url: `${PEER_BASE}/:id/${name}`,
  schema: { params: idParams, body, response: { 200: reply, '4xx': errorBody, '5xx': errorBody } },
} as const);

/**
 * Every peer route: method, URL and fastify schema. The API author registers each with
 * `app.route({ ...PEER_ROUTES[m], handler })`; the handler calls {@link checkProtocol} first
 * and answers 404 MIGRATION_NOT_FOUND for a job id it does not know (except cancel, which is
 * idempotent).
 */
export const PEER_ROUTES = {
  prepare: post('prepare', peerSchemas.prepareRequest, peerSchemas.prepareReply),
  'perform-ready': post('perform-ready', peerSchemas.performReadyRequest, peerSchemas.performReadyReply),
  cutover: post('cutover', peerSchemas.cutoverRequest, peerSchemas.cutoverReply),
  finish: post('finish', peerSchemas.finishRequest, peerSchemas.finishReply),
  confirm: post('confirm', peerSchemas.confirmRequest, peerSchemas.confirmReply),
  cancel: post('cancel', peerSchemas.cancelRequest, peerSchemas.cancelReply),
  status: {
    method: 'GET', url: `${PEER_BASE}/:id`,
    schema: { params: idParams, response: { 200: peerSchemas.statusReply, '4xx': errorBody, '5xx': errorBody } },
  },
} as const satisfies Record<PeerMessage, unknown>;

/** The envelope of a message about job `jobId`. */
export const envelopeFor = (jobId: string): Envelope => ({ protocol: PROTOCOL_VERSION, jobId });

/** The compare message's route: about a VM, not a job, so beside the job routes rather than under them. */
export const COMPARE_ROUTE = {
  method: 'POST', url: '/v1/peer/compare',
  schema: { body: compareSchemas.compareRequest, response: { 200: compareSchemas.compareReply, '4xx': errorBody, '5xx': errorBody } },
} as const;
