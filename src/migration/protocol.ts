/**
 * Peer RPC between the agents of a move, protocol version 1. The source drives: every message
 * is a request from the source agent to the destination agent over HTTPS with mutual TLS (each
 * presents its host certificate from the hosts' CA; docs/security.md), answered with a reply or with Ferry's error body
 * `{"error":{"code","message"}}`. The sequence diagrams, what each side persists, and what a
 * restart does are in docs/design/0001-migration-protocol.md.
 *
 * Versioning: each body carries `protocol`; the path carries `/v1/`. A receiver refuses request
 * fields it does not know (closed schemas, peer-schemas.ts), so an optional request field is
 * added only where the receiver has learnt it (as `secret`, which the destination itself hands
 * out in the prepare reply); removing or changing the meaning of a field makes version 2, served
 * beside version 1 at `/peer/v2/`.
 *
 * The one-time secret: the destination draws 32 random bytes for each job it prepares, keeps
 * their SHA-256 and returns them once, in the prepare reply. Every later request about the job
 * (perform-ready, cutover, finish, confirm, cancel) carries them as `secret`; a request without
 * them, or with others, is refused with JOB_SECRET_INVALID and changes nothing. Only a cancel or a
 * failed finish of a job that has already ended there (nothing left to clean) needs none.
 */
import { FerryError, type ErrorCode } from '../errors/index.js';
import type { DiskFacts } from './storage.js';
import type { MigrationStatus } from '../qmp/index.js';
import type { VmSpec } from '../vm/index.js';
import { addressesSchemas, compareSchemas, errorBody, idParams, noQuery, peerSchemas } from './peer-schemas.js';

export { addressesSchemas, compareSchemas, peerSchemas, vmSpecSchema, moveOptionsSchema, noQuery, SECRET_PATTERN } from './peer-schemas.js';
import { type JobError, type JobStatus, type JobTotals, type MoveOptions, type Phase } from './job.js';

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
  /** The job's one-time secret (43 characters, base64url): every later request about the job carries it. Absent from an older agent. */
  secret?: string;
}

/** What every request about a prepared job carries besides the envelope. */
export interface JobAuth {
  /** The one-time secret of the job's prepare reply; the source keeps it with its record of the job. */
  secret?: string;
}

/** source → destination: the source entered perform and is about to `migrate`. */
export type PerformReadyRequest = Envelope & JobAuth;

/** The destination checked that its incoming QEMU still waits for the stream. */
export interface PerformReadyReply extends Envelope {
  /** The incoming query-migrate status (`setup` while it listens). */
  incomingStatus: MigrationStatus;
}

/** source → destination: point the VM's MAC at the destination's tap, or back. */
export interface CutoverRequest extends Envelope, JobAuth {
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
export interface FinishRequest extends Envelope, JobAuth {
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

/** source → destination: the source lets go, stopping its QEMU as it sends this (success), or resumed the VM (failure). */
export interface ConfirmRequest extends Envelope, JobAuth {
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
export interface CancelRequest extends Envelope, JobAuth {
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
  /** Why the job failed or is rolling back there (a reply field: absent from an older agent). */
  error?: JobError;
  /**
   * A destination's record: true once the VM ran there (it reached forward `confirm`), also after the
   * record ended (its QEMU was lost since). Absent from a source's record and from an older agent,
   * which is then read as before (from status, phase and direction alone).
   */
  ranHere?: boolean;
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
 * any host → peer, outside any job (`GET /v1/peer/addresses`, no body): the IPv4 addresses of the
 * peer's VMs, and those it reserves for VMs that left it by a completed move (their last known
 * host in `host`), so that a host allocating a new VM's address hands out none of them
 * (src/agent/ip-allocator.ts). Read-only.
 *
 * Compatibility: added in protocol version 1 after its first release. A peer of a release that
 * lacks the route answers 404 NOT_FOUND; the caller then reads the addresses of the peer's VMs from
 * `GET /v1/peer/overview` and treats the peer as keeping no reservations (`reservations: null` in
 * the caller's view). Changing the meaning of a field makes a new route, served beside this one.
 */
export interface AddressesReply {
  protocol: typeof PROTOCOL_VERSION;
  host: string;
  /** Every VM in the peer's inventory, whatever its state, also the two ends of a move under way. */
  vms: { uuid: string; name: string; ip: string }[];
  /** VMs that left the peer by a completed move and have not come back: where they went. */
  reservations: { uuid: string; vm: string; ip: string; host: string; since: string }[];
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
    schema: { params: idParams, querystring: noQuery, response: { 200: peerSchemas.statusReply, '4xx': errorBody, '5xx': errorBody } },
  },
} as const satisfies Record<PeerMessage, unknown>;

/** The envelope of a message about job `jobId`. */
export const envelopeFor = (jobId: string): Envelope => ({ protocol: PROTOCOL_VERSION, jobId });

/** The compare message's route: about a VM, not a job, so beside the job routes rather than under them. */
export const COMPARE_ROUTE = {
  method: 'POST', url: '/v1/peer/compare',
  schema: { body: compareSchemas.compareRequest, response: { 200: compareSchemas.compareReply, '4xx': errorBody, '5xx': errorBody } },
} as const;

/** The addresses route (GET, no job): beside the job routes, like compare. */
export const ADDRESSES_ROUTE = {
  method: 'GET', url: '/v1/peer/addresses',
  schema: { querystring: noQuery, response: { 200: addressesSchemas.addressesReply, '4xx': errorBody, '5xx': errorBody } },
} as const;
