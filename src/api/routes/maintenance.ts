import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import { FerryError } from '../../errors/index.js';
import { checkProtocol, noQuery } from '../../migration/index.js';
import { errorResponses } from '../schemas.js';
import type { DrainStepRequest } from '../../agent/cluster-drain.js';

const accepted = { 202: { $ref: 'Maintenance#' }, ...errorResponses };

const peerSummary = {
  type: 'object', required: ['protocol', 'host', 'maintenance', 'memoryMiB', 'freeMemoryMiB', 'cpus', 'vms'],
  properties: {
    protocol: { type: 'integer' }, host: { type: 'string' }, maintenance: { type: 'string', enum: ['active', 'draining', 'drained'] },
    memoryMiB: { type: 'integer' }, freeMemoryMiB: { type: 'integer' }, cpus: { type: 'integer' },
    vms: { type: 'array', items: { type: 'object', properties: {
      name: { type: 'string' }, state: { type: 'string' }, memoryMiB: { type: 'integer' }, cpus: { type: 'integer' }, group: { type: ['string', 'null'] },
      moving: { type: 'boolean' },
    } } },
  },
} as const;

/**
 * POST /v1/host/drain and /v1/host/resume (users; the run goes on in the background, GET /v1/host
 * shows it under `maintenance`), and the peer routes a drain and a failback use.
 */
export function maintenanceRoutes(app: FastifyInstance, agent: Agent): void {
  app.post<{ Body: { force?: boolean } | undefined }>('/v1/host/drain', {
    schema: {
      tags: ['host'], response: accepted,
      summary: 'Drain this host for maintenance: it refuses new VMs and incoming moves at once, and moves every running VM to other hosts in the background (by free memory, CPU, anti-affinity and the compatibility report, within the migration limits). With force, VMs that cannot move are stopped and marked for resume. Draining again continues a drain',
      body: { type: ['object', 'null'], additionalProperties: false, properties: { force: { type: 'boolean', description: 'Stop the VMs that cannot move (resume starts them again).' } } },
    },
  }, async (req, reply) => reply.code(202).send(await agent.maintenance.drain({ force: req.body?.force ?? false })));

  app.post<{ Body: { failback?: boolean } | undefined }>('/v1/host/resume', {
    schema: {
      tags: ['host'], response: accepted,
      summary: 'Leave maintenance: a drain still running is stopped first (its moves not yet switching over are cancelled, its VMs stay here; at most a minute, else DRAIN_IN_PROGRESS); the host takes VMs again at once; in the background, the VMs a forced drain stopped start again and, with failback, the VMs the drain moved away come back',
      body: { type: ['object', 'null'], additionalProperties: false, properties: { failback: { type: 'boolean', description: 'Move the drained VMs back here.' } } },
    },
  }, async (req, reply) => reply.code(202).send(await agent.maintenance.resume({ failback: req.body?.failback ?? false })));

  app.get('/v1/peer/host', {
    schema: { tags: ['peer'], summary: 'Peer RPC: this host\'s capacity, maintenance state and VMs, for another host\'s drain placement', querystring: noQuery, response: { 200: peerSummary } },
  }, async () => agent.maintenance.summary());

  app.post<{ Body: { protocol: number; vm: string; destination: string } }>('/v1/peer/failback', {
    schema: {
      tags: ['peer'], summary: 'Peer RPC: the caller leaves maintenance and asks for a VM it drained to be moved back to it',
      body: {
        type: 'object', additionalProperties: false, required: ['protocol', 'vm', 'destination'],
        properties: { protocol: { type: 'integer', minimum: 1, maximum: 1000 }, vm: { type: 'string', maxLength: 63 }, destination: { type: 'string', maxLength: 63 } },
      },
      response: { 200: { type: 'object', properties: { protocol: { type: 'integer' }, jobId: { type: 'string' } } }, ...errorResponses },
    },
  }, async (req) => {
    checkProtocol(req.body);
    // A host may only pull VMs to itself.
    if (req.peerHost !== null && req.peerHost !== req.body.destination) {
      throw new FerryError('PEER_UNTRUSTED', `Host ${req.peerHost} cannot ask for a move to ${req.body.destination}.`);
    }
    return agent.maintenance.failbackFrom(req.body.vm, req.body.destination);
  });

  app.post<{ Body: DrainStepRequest }>('/v1/peer/drain-step', {
    schema: {
      tags: ['peer'], summary: 'Peer RPC: the cluster manager, running a drain of this host, asks for the compatibility report of a move, a move, or a clean stop of one VM (only the manager etcd names may ask)',
      body: {
        type: 'object', additionalProperties: false, required: ['protocol', 'action', 'vm'],
        properties: {
          protocol: { type: 'integer', minimum: 1, maximum: 1000 }, action: { type: 'string', enum: ['compare', 'move', 'stop'] },
          vm: { type: 'string', maxLength: 63 }, destination: { type: 'string', maxLength: 63 },
        },
      },
      response: {
        200: { type: 'object', properties: {
          protocol: { type: 'integer' }, jobId: { type: 'string' },
          incompatibilities: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
        } },
        ...errorResponses,
      },
    },
  }, async (req) => {
    checkProtocol(req.body);
    return agent.drains.step(req.body, req.peerHost);
  });
}
