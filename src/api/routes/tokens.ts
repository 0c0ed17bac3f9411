import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import { ROLES, type Role } from '../../agent/tokens.js';
import { errorResponses } from '../schemas.js';

const tokenSchema = {
  type: 'object', required: ['id', 'name', 'role', 'createdAt', 'lastUsedAt', 'revoked'],
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', enum: ROLES },
    createdAt: { type: 'string' }, lastUsedAt: { type: ['string', 'null'] }, revoked: { type: 'boolean' },
  },
} as const;

const auditSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, at: { type: 'string' }, tokenId: { type: ['string', 'null'] }, who: { type: 'string' },
    method: { type: 'string' }, route: { type: 'string' }, vm: { type: ['string', 'null'] }, job: { type: ['string', 'null'] }, status: { type: 'integer' },
  },
} as const;

const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9a-f]{1,32}$' } } } as const;

/** /v1/tokens (API tokens and roles) and /v1/audit (who changed what): admin only (src/api/roles.ts). */
export function tokenRoutes(app: FastifyInstance, agent: Agent): void {
  app.post<{ Body: { name: string; role: Role } }>('/v1/tokens', {
    schema: {
      tags: ['security'], summary: 'Make an API token; the answer carries its secret, shown this once',
      body: {
        type: 'object', required: ['name', 'role'], additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, role: { type: 'string', enum: ROLES } },
      },
      response: { 201: { ...tokenSchema, required: [...tokenSchema.required, 'token'], properties: { ...tokenSchema.properties, token: { type: 'string' } } }, ...errorResponses },
    },
  }, async (req, reply) => reply.code(201).send(agent.tokens.create(req.body.name, req.body.role)));

  app.get('/v1/tokens', {
    schema: { tags: ['security'], summary: 'This host\'s API tokens, revoked ones included (never their secrets)', response: { 200: { type: 'array', items: tokenSchema } } },
  }, async () => agent.tokens.list());

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', {
    schema: { tags: ['security'], summary: 'Revoke an API token: its next request gets 401', params: idParams, response: { 200: tokenSchema, ...errorResponses } },
  }, async (req) => agent.tokens.revoke(req.params.id));

  app.get<{ Querystring: { limit?: number } }>('/v1/audit', {
    schema: {
      tags: ['security'], summary: 'The audit log: mutating requests with who, what, when and their status, newest first',
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 10_000 } } },
      response: { 200: { type: 'array', items: auditSchema } },
    },
  }, async (req) => agent.audit.list(req.query.limit ?? 100));
}
