import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerFactory } from 'fastify';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import type { Agent } from '../agent/agent.js';
import { FerryError, toFerryError } from '../errors/index.js';
import { errorSchema, hostSchema, hostSettingsSchema, maintenanceSchema, vmSchema } from './schemas.js';
import { vmRoutes } from './routes/vms.js';
import { hostRoutes } from './routes/host.js';
import { migrationRoutes } from './routes/migrations.js';
import { compareRoutes } from './routes/compare.js';
import { addPeerAuth } from './peer-auth.js';
import { clusterRoutes } from './routes/cluster.js';
import { tokenRoutes } from './routes/tokens.js';
import { addAuth } from './auth.js';
import { maintenanceRoutes } from './routes/maintenance.js';
import { dashboardRoutes } from './routes/dashboard.js';

/**
 * An HTTPS server for fastify, typed as its plain-HTTP one: routes, hooks and `listen` are the same
 * over either, and the API keeps one instance type.
 */
function httpsServer(tls: HttpsServerOptions): FastifyServerFactory {
  return ((handler: (req: IncomingMessage, res: ServerResponse) => void) => createHttpsServer(tls, handler)) as unknown as FastifyServerFactory;
}

/**
 * Builds ferryd's HTTP API. Every error leaves as `{"error":{"code","message"}}` with the code's
 * status: FerryErrors as they are, schema failures as INVALID_INPUT, anything else as INTERNAL.
 */
export async function buildApi(agent: Agent, opts: { logger?: boolean; maxInFlightPerToken?: number; https?: HttpsServerOptions } = {}): Promise<FastifyInstance> {
  // With `https` (the agent config's tls) the TCP listener is HTTPS and asks callers for a certificate (peer-auth.ts).
  const app = Fastify({
    logger: opts.logger ?? false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false } },
    // A URL the router cannot take (bad percent-encoding, a parameter over 100 characters) is
    // answered before any route or hook runs; give it the API's error shape too.
    frameworkErrors: (err, _req, reply) => {
      const fe = new FerryError('INVALID_INPUT', `The request URL is invalid: ${err.message.replace(/'.*'/, 'the path').replace(/\.$/, '')}.`);
      void (reply as FastifyReply).code(fe.httpStatus).send({ error: fe.toJSON() });
    },
    ...(opts.https ? { serverFactory: httpsServer(opts.https) } : {}),
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
  app.addSchema(maintenanceSchema);
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
  addPeerAuth(app, () => agent.config.peers.map((p) => p.name));
  vmRoutes(app, agent);
  hostRoutes(app, agent);
  migrationRoutes(app, agent);
  compareRoutes(app, agent);
  tokenRoutes(app, agent);
  maintenanceRoutes(app, agent);
  dashboardRoutes(app, agent);
  clusterRoutes(app, agent);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
