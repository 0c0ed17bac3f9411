/** JSON schemas shared by routes; they also feed /openapi.json. */
export const errorSchema = {
  $id: 'Error', type: 'object', required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

export const vmSchema = {
  $id: 'Vm', type: 'object',
  required: ['name', 'uuid', 'host', 'state', 'pid', 'memoryMiB', 'cpus', 'ip', 'disks'],
  properties: {
    name: { type: 'string' }, uuid: { type: 'string' }, host: { type: 'string' },
    state: { type: 'string', enum: ['running', 'stopped', 'migrating', 'paused', 'failed'] },
    pid: { type: ['integer', 'null'] }, memoryMiB: { type: 'integer' }, cpus: { type: 'integer' },
    ip: { type: 'string' }, mac: { type: 'string' }, cpuModel: { type: 'string' }, machine: { type: 'string' },
    ha: { type: 'boolean' }, reason: { type: ['string', 'null'] },
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
    } } },
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
