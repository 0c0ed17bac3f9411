/** JSON schemas shared by routes; they also feed /openapi.json. */
export const errorSchema = {
  $id: 'Error', type: 'object', required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', additionalProperties: true } } } },
} as const;

export const vmSchema = {
  $id: 'Vm', type: 'object',
  required: ['name', 'uuid', 'host', 'state', 'pid', 'memoryMiB', 'cpus', 'ip', 'disks'],
  properties: {
    name: { type: 'string' }, uuid: { type: 'string' }, host: { type: 'string' },
    state: { type: 'string', enum: ['running', 'stopped', 'migrating', 'paused', 'failed'] },
    pid: { type: ['integer', 'null'] }, memoryMiB: { type: 'integer' }, cpus: { type: 'integer' },
    ip: { type: 'string' }, mac: { type: 'string' }, cpuModel: { type: 'string' }, machine: { type: 'string' },
    ha: { type: 'boolean' }, reason: { type: ['string', 'null'] }, group: { type: ['string', 'null'], description: 'Anti-affinity group: a drain keeps VMs of one group on different hosts when it can.' },
    disks: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, sizeBytes: { type: 'integer' }, pool: { type: 'string' } } } },
    createdAt: { type: 'string' }, updatedAt: { type: 'string' }, incoming: { type: 'boolean' },
  },
} as const;

export const hostSchema = {
  $id: 'Host', type: 'object',
  properties: {
    name: { type: 'string' }, url: { type: 'string' }, version: { type: 'string' }, qemuVersion: { type: 'string' },
    machine: { type: 'string' }, accel: { type: ['string', 'null'] }, accelReason: { type: ['string', 'null'] },
    state: { type: 'string' }, memoryMiB: { type: 'integer' }, freeMemoryMiB: { type: 'integer' }, cpus: { type: 'integer' },
    vmCount: { type: 'integer' }, runningVmCount: { type: 'integer' },
    pools: { type: 'array', items: { type: 'object', properties: {
      name: { type: 'string' }, path: { type: 'string' }, sharedId: { type: ['string', 'null'] },
      freeBytes: { type: 'integer' }, totalBytes: { type: 'integer' },
      error: { type: ['string', 'null'], description: 'Why the pool cannot be read now (a folder gone, a stale NFS mount); its sizes are 0 then' },
    } } },
    settings: { $ref: 'HostSettings#' },
    maintenance: { $ref: 'Maintenance#' },
    addresses: {
      type: 'object', description: 'The range new VMs get addresses from, and the addresses this host keeps for VMs that moved away (what NO_FREE_IP counts)',
      properties: {
        rangeStart: { type: 'string' }, rangeEnd: { type: 'string' }, prefixLength: { type: 'integer' },
        reservations: { type: 'array', items: { type: 'object', properties: {
          vm: { type: 'string' }, uuid: { type: 'string' }, ip: { type: 'string' },
          host: { type: 'string', description: 'the host the VM went to' }, since: { type: 'string' },
        } } },
      },
    },
  },
} as const;

const errorBodySchema = { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;
const maintenanceRun = {
  type: ['object', 'null'], description: 'A drain or resume run; error is null while it runs and when it went well (DRAIN_INCOMPLETE, FAILBACK_INCOMPLETE…).',
  properties: {
    operation: { type: 'string', enum: ['drain', 'resume'] }, force: { type: 'boolean' }, failback: { type: 'boolean' },
    startedAt: { type: 'string' }, endedAt: { type: ['string', 'null'] }, error: errorBodySchema,
  },
} as const;

/** A host's maintenance (`maintenance` in GET /v1/host; the answer of POST /v1/host/drain and /v1/host/resume). */
export const maintenanceSchema = {
  $id: 'Maintenance', type: 'object', required: ['state', 'since', 'force', 'running', 'lastRun', 'vms'],
  properties: {
    state: { type: 'string', enum: ['active', 'draining', 'drained'], description: 'active: in service; draining: being emptied, or a VM could not leave; drained: no VM runs here. Draining and drained refuse new VMs and incoming moves.' },
    since: { type: ['string', 'null'] }, force: { type: 'boolean' },
    running: maintenanceRun, lastRun: maintenanceRun,
    vms: {
      type: 'array', description: 'The drain ledger: what became of each VM of the drain.',
      items: { type: 'object', properties: {
        vm: { type: 'string' }, destination: { type: ['string', 'null'] },
        status: { type: 'string', enum: ['moving', 'moved', 'blocked', 'stopped', 'returned'] },
        jobId: { type: ['string', 'null'] }, error: errorBodySchema, updatedAt: { type: 'string' },
      } },
    },
  },
} as const;

export const createVmBody = {
  type: 'object', required: ['name', 'memoryMiB'], additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 63 },
    memoryMiB: { type: 'integer', minimum: 1 },
    cpus: { type: 'integer', minimum: 1, maximum: 1024 },
    cpuModel: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    diskSizeBytes: { type: 'integer', minimum: 1 },
    diskPool: { type: 'string', maxLength: 63 },
    ha: { type: 'boolean' },
    group: { type: 'string', maxLength: 63, description: 'Anti-affinity group (a name like a VM\'s).' },
    haPriority: { type: 'integer', minimum: -1000, maximum: 1000, description: 'With ha: restart order after a host failure, higher first.' },
    haRestart: { type: 'string', enum: ['always', 'never'], description: 'With ha: restart elsewhere when the host fails (default always).' },
    haFailback: { type: 'string', enum: ['none', 'immediate'], description: 'With ha: move back live when the home host returns (default none).' },
  },
} as const;

/** The body of PATCH /v1/vms/{name} (`ferry vm set`). */
export const vmSettingsBody = {
  type: 'object', additionalProperties: false, minProperties: 1,
  properties: {
    group: { type: ['string', 'null'], maxLength: 63, description: 'Anti-affinity group (a name like a VM\'s); null removes it.' },
    haPriority: { type: 'integer', minimum: -1000, maximum: 1000, description: 'HA VMs: restart order after a host failure, higher first.' },
    haRestart: { type: 'string', enum: ['always', 'never'], description: 'HA VMs: restart elsewhere when the host fails.' },
    haFailback: { type: 'string', enum: ['none', 'immediate'], description: 'HA VMs: move back live when the home host returns.' },
  },
} as const;

/** The answer of PATCH /v1/vms/{name}: the VM, and an HA VM's policies as the cluster holds them now (null for other VMs). */
export const vmSettingsResult = {
  type: 'object', required: ['vm', 'ha'],
  properties: {
    vm: { $ref: 'Vm#' },
    ha: {
      type: ['object', 'null'],
      properties: { priority: { type: 'integer' }, restart: { type: 'string', enum: ['always', 'never'] }, failback: { type: 'string', enum: ['none', 'immediate'] } },
    },
  },
} as const;

export const vmNameParams = {
  type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 63 } },
} as const;

export const errorResponses = {
  400: { $ref: 'Error#' }, 404: { $ref: 'Error#' }, 409: { $ref: 'Error#' }, 500: { $ref: 'Error#' },
} as const;

/** POST /v1/vms/:name/move-storage: the folder the disks go to. */
export const moveStorageBody = {
  type: 'object', required: ['toPath'], additionalProperties: false,
  properties: { toPath: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

/** The answer of a storage move: the VM as it is now, and what moved where. */
export const moveStorageResult = {
  type: 'object', required: ['vm', 'live', 'totalMs', 'disks'],
  properties: {
    vm: { $ref: 'Vm#' }, live: { type: 'boolean' }, totalMs: { type: 'integer' },
    disks: { type: 'array', items: { type: 'object', properties: {
      index: { type: 'integer' }, from: { type: 'string' }, to: { type: 'string' }, pool: { type: 'string' },
      sizeBytes: { type: 'integer' }, allocatedBytes: { type: 'integer' },
    } } },
  },
} as const;

const settingsFields = {
  incomingEnabled: { type: 'boolean', description: 'May moves come to this host?' },
  outgoingEnabled: { type: 'boolean', description: 'May moves leave this host?' },
  maxMigrations: { type: 'integer', description: 'Live moves at once (as source or destination), 1–64; more wait in a queue.' },
  maxStorageMigrations: { type: 'integer', description: 'Disk copies at once, 1–64.' },
  networks: {
    type: 'array', maxItems: 32, description: 'Migration networks (IPv4 prefixes); the lowest priority both hosts share wins; empty: any network.',
    items: { type: 'object', required: ['cidr', 'priority'], additionalProperties: false, properties: { cidr: { type: 'string', maxLength: 18 }, priority: { type: 'integer' } } },
  },
  performance: { type: 'string', enum: ['tcp', 'compression', 'multichannel'], description: 'tcp: one stream; compression: multifd with zstd; multichannel: multifd over 4 channels.' },
  maxBandwidthBytesPerSec: { type: ['integer', 'null'], description: 'Cap on one move\'s memory stream, bytes per second; null: no cap.' },
  downtimeTargetMs: { type: 'integer', description: 'The downtime limit a move starts with, 1–10000 ms.' },
  allowPostcopy: { type: 'boolean', description: 'May moves from this host switch to post-copy? Not with a multifd option.' },
  allowInsecureMigration: { type: 'boolean', description: 'May moves to or from this host travel unencrypted? Only when both hosts allow it; default false (TLS).' },
} as const;

/** A host's migration settings (GET /v1/host/settings, and `settings` in GET /v1/host). */
export const hostSettingsSchema = {
  $id: 'HostSettings', type: 'object', required: Object.keys(settingsFields), properties: settingsFields,
} as const;

/** PUT /v1/host/settings: any subset of the fields; ranges are checked by the agent (INVALID_INPUT with a sentence). */
export const hostSettingsPatchBody = {
  type: 'object', additionalProperties: false, minProperties: 1, properties: settingsFields,
} as const;
