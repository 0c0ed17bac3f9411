import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import { FerryError } from '../../errors/index.js';
import { answerCompare, checkProtocol, compareMove, COMPARE_ROUTE, type CompareRequest } from '../../migration/index.js';
import { errorResponses, vmNameParams } from '../schemas.js';

interface CompareBody { destination: string; includeStorage?: boolean; storagePath?: string }

const reportSchema = {
  type: 'object', required: ['compatible', 'incompatibilities'],
  properties: {
    compatible: { type: 'boolean' },
    incompatibilities: { type: 'array', items: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
  },
} as const;

/** POST /v1/vms/:name/compare (users, on the VM's host) and POST /v1/peer/compare (the destination's half). */
export function compareRoutes(app: FastifyInstance, agent: Agent): void {
  app.post<{ Params: { name: string }; Body: CompareBody }>('/v1/vms/:name/compare', {
    schema: {
      tags: ['vms'], summary: 'Compatibility report: why a move of this VM to a host would fail (nothing is changed)',
      params: vmNameParams,
      body: {
        type: 'object', required: ['destination'], additionalProperties: false,
        properties: { destination: { type: 'string', maxLength: 63 }, includeStorage: { type: 'boolean' }, storagePath: { type: 'string', maxLength: 4096 } },
      },
      response: { 200: reportSchema, ...errorResponses, 503: { $ref: 'Error#' } },
    },
  }, async (req) => {
    const b = req.body;
    if (b.storagePath !== undefined && b.includeStorage !== true) {
      throw new FerryError('INVALID_INPUT', 'storagePath only applies to a comparison with includeStorage.');
    }
    return compareMove(agent.migrationHost(), {
      vm: req.params.name, destination: b.destination,
      options: { includeStorage: b.includeStorage ?? false, ...(b.storagePath !== undefined ? { storagePath: b.storagePath } : {}) },
    });
  });

  app.route({
    ...COMPARE_ROUTE, schema: { ...COMPARE_ROUTE.schema, tags: ['peer'], summary: 'Peer RPC: this host\'s problems with taking a VM (protocol.ts CompareRequest)' },
    handler: async (req) => { checkProtocol(req.body); return answerCompare(agent.migrationHost(), req.body as CompareRequest); },
  });
}
