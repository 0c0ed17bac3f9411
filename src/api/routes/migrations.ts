import { FerryError } from '../../errors/index.js';
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import {
  checkProtocol, PEER_ROUTES, type CancelRequest, type ConfirmRequest, type CutoverRequest, type FinishRequest, type PrepareRequest,
} from '../../migration/index.js';
import { errorResponses } from '../schemas.js';
import { jobView } from '../../agent/overview.js';

interface MoveBody {
  vm: string; destination: string; includeStorage?: boolean; storagePath?: string; retainSourceDisks?: boolean;
  allowPostcopy?: boolean; allowAutoConverge?: boolean; maxBandwidthBytesPerSec?: number;
}
interface IdParams { id: string }

const migrationSchema = {
  type: 'object', additionalProperties: true,
  properties: {
    id: { type: 'string' }, vm: { type: 'string' }, source: { type: 'string' }, destination: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] }, phase: { type: 'string' },
    totalMs: { type: ['integer', 'null'] }, downtimeMs: { type: ['integer', 'null'] }, transferredBytes: { type: ['integer', 'null'] },
    passes: { type: ['integer', 'null'] }, postcopy: { type: 'boolean' }, encrypted: { type: ['boolean', 'null'] },
    diskBytes: { type: ['integer', 'null'] }, diskMs: { type: ['integer', 'null'] },
    performance: { type: 'string', enum: ['tcp', 'compression', 'multichannel'] }, maxBandwidthBytesPerSec: { type: ['integer', 'null'] },
  },
} as const;

/** /v1/migrations (users) and /v1/peer/migrations (agents). */
export function migrationRoutes(app: FastifyInstance, agent: Agent): void {
  const m = agent.migrations;
  const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;

  app.post<{ Body: MoveBody }>('/v1/migrations', {
    schema: {
      tags: ['migrations'], summary: 'Start a live migration of a VM of this host',
      body: {
        type: 'object', required: ['vm', 'destination'], additionalProperties: false,
        properties: {
          vm: { type: 'string', maxLength: 63 }, destination: { type: 'string', maxLength: 63 }, includeStorage: { type: 'boolean' },
          storagePath: { type: 'string', maxLength: 4096 }, retainSourceDisks: { type: 'boolean' },
          allowPostcopy: { type: 'boolean' }, allowAutoConverge: { type: 'boolean' },
          maxBandwidthBytesPerSec: { type: 'integer', minimum: 1, description: 'Cap on this move\'s memory stream, bytes per second; the host\'s cap applies when smaller.' },
        },
      },
      response: { 202: migrationSchema, ...errorResponses, 503: { $ref: 'Error#' } },
    },
  }, async (req, reply) => {
    const b = req.body;
    if ((b.storagePath !== undefined || b.retainSourceDisks !== undefined) && b.includeStorage !== true) {
      throw new FerryError('INVALID_INPUT', 'storagePath and retainSourceDisks only apply to a move with includeStorage.');
    }
    const job = await m.start({
      vm: b.vm, destination: b.destination,
      options: {
        includeStorage: b.includeStorage ?? false, ...(b.storagePath ? { storagePath: b.storagePath } : {}),
        ...(b.retainSourceDisks !== undefined ? { retainSourceDisks: b.retainSourceDisks } : {}),
        ...(b.allowPostcopy !== undefined ? { allowPostcopy: b.allowPostcopy } : {}),
        ...(b.allowAutoConverge !== undefined ? { allowAutoConverge: b.allowAutoConverge } : {}),
        ...(b.maxBandwidthBytesPerSec !== undefined ? { maxBandwidthBytesPerSec: b.maxBandwidthBytesPerSec } : {}),
      },
    });
    return reply.code(202).send(jobView(job, m.queuePosition(job.id)));
  });

  app.get<{ Querystring: { vm?: string; limit?: number } }>('/v1/migrations', {
    schema: {
      tags: ['migrations'], summary: 'Migration jobs of this host, newest first',
      querystring: { type: 'object', additionalProperties: false, properties: { vm: { type: 'string', maxLength: 63 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: { 200: { type: 'array', items: migrationSchema } },
    },
  }, async (req) => agent.jobs.list({ ...(req.query.vm ? { vm: req.query.vm } : {}), limit: req.query.limit ?? 100 }).map((j) => jobView(j, m.queuePosition(j.id))));

  app.get<{ Params: IdParams }>('/v1/migrations/:id', {
    schema: { tags: ['migrations'], summary: 'One migration job with its last progress', params: idParams, response: { 200: migrationSchema, ...errorResponses } },
  }, async (req) => jobView(m.get(req.params.id), m.queuePosition(req.params.id)));

  app.post<{ Params: IdParams }>('/v1/migrations/:id/cancel', {
    schema: { tags: ['migrations'], summary: 'Cancel a move before switch-over; the VM keeps running on the source', params: idParams, response: { 200: migrationSchema, ...errorResponses } },
  }, async (req) => jobView(m.cancel(req.params.id)));

  peerRoutes(app, agent);
}

/** Peer RPC, protocol version 1 (src/migration/protocol.ts, docs/design/0001-migration-protocol.md). */
function peerRoutes(app: FastifyInstance, agent: Agent): void {
  const d = agent.migrations.destination;
  const body = <T>(b: unknown): T => { checkProtocol(b); return b as T; };
  app.route({
    ...PEER_ROUTES.prepare,
    handler: async (req) => {
      const b = body<PrepareRequest>(req.body);
      // A peer may only send its own VMs: the source it names must be the host its certificate names.
      if (req.peerHost !== null && req.peerHost !== b.source) {
        throw new FerryError('PEER_UNTRUSTED', `Host ${req.peerHost} cannot prepare a move on behalf of ${b.source}.`);
      }
      return d.prepare(b);
    },
  });
  app.route({ ...PEER_ROUTES['perform-ready'], handler: async (req) => { const b = body<{ jobId: string; secret?: string }>(req.body); return d.performReady(b.jobId, b.secret); } });
  app.route({ ...PEER_ROUTES.cutover, handler: async (req) => d.cutover(body<CutoverRequest>(req.body)) });
  app.route({ ...PEER_ROUTES.finish, handler: async (req) => d.finish(body<FinishRequest>(req.body)) });
  app.route({ ...PEER_ROUTES.confirm, handler: async (req) => d.confirm(body<ConfirmRequest>(req.body)) });
  app.route({ ...PEER_ROUTES.cancel, handler: async (req) => { const b = body<CancelRequest>(req.body); return d.cancel(b.jobId, b.reason, b.secret); } });
  app.route({ ...PEER_ROUTES.status, handler: async (req) => d.status((req.params as IdParams).id) });
}
