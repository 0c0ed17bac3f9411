import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import type { Agent } from '../agent/agent.js';
import { FerryError, toFerryError } from '../errors/index.js';
import { errorSchema, hostSchema, hostSettingsSchema, vmSchema } from './schemas.js';
import { vmRoutes } from './routes/vms.js';
import { hostRoutes } from './routes/host.js';
import { migrationRoutes } from './routes/migrations.js';
import { compareRoutes } from './routes/compare.js';
import { tokenRoutes } from './routes/tokens.js';
import { addAuth } from './auth.js';

/**
 * Builds ferryd's HTTP API. Every error leaves as `{"error":{"code","message"}}` with the code's
 * status: FerryErrors as they are, schema failures as INVALID_INPUT, anything else as INTERNAL.
 */
export async function buildApi(agent: Agent, opts: { logger?: boolean; maxInFlightPerToken?: number } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false } },
    // A URL the router cannot take (bad percent-encoding, a parameter over 100 characters) is
    // answered before any route or hook runs; give it the API's error shape too.
    frameworkErrors: (err, _req, reply) => {
      const fe = new FerryError('INVALID_INPUT', `The request URL is invalid: ${err.message.replace(/'.*'/, 'the path').replace(/\.$/, '')}.`);
      void (reply as FastifyReply).code(fe.httpStatus).send({ error: fe.toJSON() });
    },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Ferry host agent API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.addSchema(errorSchema);
  app.addSchema(vmSchema);
  app.addSchema(hostSettingsSchema);
  app.addSchema(hostSchema);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let fe: FerryError;
    if (err.validation) fe = new FerryError('INVALID_INPUT', `The request is invalid: ${err.message}.`);
    else if (err instanceof FerryError) fe = err;
    else if (err.statusCode === 413) fe = new FerryError('PAYLOAD_TOO_LARGE', 'The request body is larger than the API accepts.');
    else if (err.statusCode === 415) fe = new FerryError('UNSUPPORTED_MEDIA_TYPE', 'The request body must be JSON with content-type application/json.');
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) fe = new FerryError('INVALID_INPUT', `The request is invalid: ${err.message.replace(/\.$/, '')}.`);
    else fe = toFerryError(err);
    if (fe.httpStatus >= 500) req.log.error({ err }, 'request failed');
    return reply.code(fe.httpStatus).send({ error: fe.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: `There is no route ${req.method} ${req.url}.` } });
  });

  // Before the routes: its onRoute hook checks each has a role (src/api/roles.ts).
  addAuth(app, agent, opts.maxInFlightPerToken !== undefined ? { maxInFlight: opts.maxInFlightPerToken } : {});
  vmRoutes(app, agent);
  hostRoutes(app, agent);
  migrationRoutes(app, agent);
  compareRoutes(app, agent);
  tokenRoutes(app, agent);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
