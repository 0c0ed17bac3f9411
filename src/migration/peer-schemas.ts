/**
 * JSON schemas of the peer messages (protocol.ts), plain objects for fastify's `schema.body` and
 * `schema.response`. Every object is closed (`additionalProperties: false`: the API's ajv does not
 * strip unknown fields, so a message with one is refused as INVALID_INPUT) and every string and
 * array is bounded: a peer is trusted to be a host of the set, not to be bug-free or uncompromised,
 * and what it sends reaches QEMU's argv, the disk and the database (docs/security.md, "Hostile input").
 *
 * Closed schemas change what "a receiver ignores fields it does not know" meant in protocol
 * version 1: a sender adds an optional field only where the receiver learnt it first (a reply
 * field, which the source's client reads without a schema), or with a new protocol version.
 */
import { PERFORMANCE_OPTIONS } from './host-settings.js';
import { JOB_STATUSES, PHASES } from './job.js';

/** A job's one-time secret: 32 random bytes in base64url (job-secret.ts). */
export const SECRET_PATTERN = '^[A-Za-z0-9_-]{43}$';

const bounded = (maxLength: number) => ({ type: 'string', maxLength } as const);
/** Host, VM, pool and group names (validateName allows 63). */
const name = bounded(63);
const path = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const text = bounded(4096);
const address = bounded(64);
const uri = bounded(4200);
const code = { type: 'string', pattern: '^[A-Z][A-Z0-9_]{0,63}$' } as const;
const int = { type: 'integer' } as const;
const nat = { type: 'integer', minimum: 0 } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const bool = { type: 'boolean' } as const;
const migrationStatus = bounded(32);
const mac = { type: 'string', pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' } as const;
const secret = { type: 'string', pattern: SECRET_PATTERN } as const;
const uuid = { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' } as const;

/** A closed object schema. */
function obj<P extends Record<string, unknown>, R extends readonly string[]>(properties: P, required: R) {
  return { type: 'object', additionalProperties: false, required: [...required], properties } as const;
}

const list = <I>(items: I, maxItems = 64) => ({ type: 'array', maxItems, items } as const);

const envelope = { protocol: { type: 'integer', minimum: 1, maximum: 1000 }, jobId: { type: 'string', minLength: 1, maxLength: 64 } } as const;

/** A closed message schema with the envelope's fields first. */
function message<P extends Record<string, unknown>, R extends readonly string[]>(properties: P, required: R) {
  return obj({ ...envelope, ...properties }, ['protocol', 'jobId', ...required]);
}

/**
 * A request about a prepared job: the envelope and `secret`, the job's one-time secret from the
 * prepare reply. Optional in the schema so that a message without it reaches the handler, which
 * answers JOB_SECRET_INVALID (a stable code, not a schema error).
 */
function jobRequest<P extends Record<string, unknown>, R extends readonly string[]>(properties: P, required: R) {
  return message({ ...properties, secret }, required);
}

const jobErrorSchema = obj({ code, message: text }, ['code', 'message']);

/** The VM spec as it travels in prepare and compare (VmSpec; peer-schemas.test.ts keeps the two in step). */
export const vmSpecSchema = obj({
  name, uuid,
  memoryMiB: { type: 'integer', minimum: 1, maximum: 16 * 1024 * 1024 }, ramTrimKiB: { type: 'integer', minimum: 0, maximum: 1024 }, cpus: { type: 'integer', minimum: 1, maximum: 1024 },
  cpuModel: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, machine: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
  mac, ip: address, prefixLength: { type: 'integer', minimum: 0, maximum: 128 }, gateway: address, ha: bool, group: name,
  boot: obj({ kernel: path, initrd: path }, ['kernel', 'initrd']),
  disks: list(obj({ path, sizeBytes: { type: 'integer', minimum: 1 }, pool: name, format: { type: 'string', enum: ['qcow2'] } }, ['path', 'sizeBytes', 'pool', 'format'])),
}, ['name', 'uuid', 'memoryMiB', 'cpus', 'cpuModel', 'machine', 'mac', 'ip', 'prefixLength', 'disks', 'ha']);

/** MoveOptions (peer-schemas.test.ts keeps the two in step). */
export const moveOptionsSchema = obj({
  includeStorage: bool, storagePath: path, probe: bool, allowPostcopy: bool, allowAutoConverge: bool, retainSourceDisks: bool,
  maxBandwidthBytesPerSec: { type: 'integer', minimum: 1 }, performance: { type: 'string', enum: PERFORMANCE_OPTIONS },
}, ['includeStorage']);

const diskFactsSchema = list(obj({ allocatedBytes: nat, sharedId: bounded(256) }, ['allocatedBytes']));

const totalsSchema = obj({
  totalMs: nullableInt, downtimeMs: nullableInt, transferredBytes: nullableInt, passes: nullableInt, diskBytes: nullableInt, diskMs: nullableInt,
  encrypted: { type: ['boolean', 'null'] },
}, ['totalMs', 'downtimeMs', 'transferredBytes', 'passes']);

const status = { type: 'string', enum: JOB_STATUSES } as const;
const outcome = { type: 'string', enum: ['success', 'failure'] } as const;
const action = { type: 'string', enum: ['redirect', 'restore'] } as const;

/** Request and reply schemas of every job message. */
export const peerSchemas = {
  prepareRequest: message({
    vm: vmSpecSchema, source: name, destination: name, options: moveOptionsSchema,
    handover: obj({ vni: { type: 'integer', minimum: 1, maximum: 16777215 }, sourceAddress: address }, ['vni', 'sourceAddress']),
    sourceAddresses: list(address), allowInsecure: bool, disks: diskFactsSchema,
  }, ['vm', 'source', 'destination', 'options']),
  prepareReply: message({
    migrationUri: uri, reservedMemoryMiB: int, encrypted: bool, secret,
    handover: obj({ destinationAddress: address }, ['destinationAddress']),
    nbd: list(obj({ sourcePath: path, destinationPath: path, uri }, ['sourcePath', 'destinationPath', 'uri'])),
  }, ['migrationUri', 'nbd', 'reservedMemoryMiB']),
  performReadyRequest: jobRequest({}, []),
  performReadyReply: message({ incomingStatus: migrationStatus }, ['incomingStatus']),
  cutoverRequest: jobRequest({ action, mac }, ['action', 'mac']),
  cutoverReply: message({ action, appliedAt: bounded(64) }, ['action', 'appliedAt']),
  finishRequest: jobRequest({ outcome, error: jobErrorSchema }, ['outcome']),
  finishReply: message({ resumed: bool, error: jobErrorSchema }, ['resumed']),
  confirmRequest: jobRequest({ outcome, totals: totalsSchema }, ['outcome', 'totals']),
  confirmReply: message({ status }, ['status']),
  cancelRequest: jobRequest({ reason: text }, ['reason']),
  cancelReply: message({ status }, ['status']),
  statusReply: message({
    job: {
      type: ['object', 'null'], additionalProperties: false, required: ['status', 'phase', 'direction', 'postcopy'],
      properties: { status, phase: { type: 'string', enum: PHASES }, direction: { type: ['string', 'null'], maxLength: 16 }, postcopy: bool, error: jobErrorSchema, ranHere: bool },
    },
    qemu: obj({ alive: bool, running: bool, migrationStatus }, ['alive', 'running']),
  }, ['job', 'qemu']),
} as const;

/** The compare message's schemas: no job, so no envelope's jobId (the path carries the version). */
export const compareSchemas = {
  compareRequest: obj({
    protocol: envelope.protocol, vm: vmSpecSchema, source: name, destination: name, options: moveOptionsSchema, disks: diskFactsSchema,
    cpuFeatures: list(bounded(64), 4096),
  }, ['protocol', 'vm', 'source', 'destination', 'options']),
  compareReply: obj({ protocol: envelope.protocol, host: name, incompatibilities: list(jobErrorSchema, 1024) }, ['protocol', 'host', 'incompatibilities']),
} as const;

/** An error answer: `{"error":{"code","message"}}`. */
export const errorBody = obj({ error: jobErrorSchema }, ['error']);

/** A GET peer route takes no query string. */
export const noQuery = obj({}, []);

/** The `:id` of a job route. */
export const idParams = obj({ id: { type: 'string', minLength: 1, maxLength: 64 } }, ['id']);

/**
 * GET /v1/peer/addresses (protocol.ts AddressesReply): the addresses a host's VMs hold and the
 * ones it reserves for VMs that left it by a move. A GET with no body, so the reply alone carries
 * the version (`protocol`); the caller reads it without a schema and checks each entry
 * (src/agent/ipam.ts parseAddresses). A new field is added to the reply only as an optional one.
 */
export const addressesSchemas = {
  addressesReply: obj({
    protocol: envelope.protocol, host: name,
    vms: list(obj({ uuid, name, ip: address }, ['uuid', 'name', 'ip']), 65_536),
    reservations: list(obj({ uuid, vm: name, ip: address, host: name, since: bounded(64) }, ['uuid', 'vm', 'ip', 'host', 'since']), 65_536),
  }, ['protocol', 'host', 'vms', 'reservations']),
} as const;
