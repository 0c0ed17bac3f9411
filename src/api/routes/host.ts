import type { FastifyInstance } from 'fastify';
import { AGENT_VERSION, type Agent } from '../../agent/agent.js';
import { metricsText } from '../metrics.js';
import { errorResponses, hostSettingsPatchBody } from '../schemas.js';
import type { HostSettingsPatch } from '../../agent/settings-store.js';
import { ADDRESSES_ROUTE, noQuery } from '../../migration/index.js';

/** /v1/host, /v1/host/settings, /v1/peer/ping, /v1/peer/addresses, /v1/events (SSE) and /metrics. */
export function hostRoutes(app: FastifyInstance, agent: Agent): void {
  app.get('/v1/host', { schema: { tags: ['host'], summary: 'This host: capacity, accelerator, pools', response: { 200: { $ref: 'Host#' } } } },
    async () => agent.hostView());

  app.get('/v1/host/settings', { schema: { tags: ['host'], summary: 'This host\'s migration settings', response: { 200: { $ref: 'HostSettings#' } } } },
    async () => agent.settings.get());
  app.put<{ Body: HostSettingsPatch }>('/v1/host/settings', {
    schema: {
      tags: ['host'], summary: 'Change some of this host\'s migration settings; answers all of them. The next move or disk copy uses them',
      body: hostSettingsPatchBody, response: { 200: { $ref: 'HostSettings#' }, ...errorResponses },
    },
  }, async (req) => agent.settings.update(req.body));

  app.get('/v1/peer/ping', {
    schema: {
      tags: ['peer'], summary: 'Peer liveness, and how many more live migrations this host takes now', querystring: noQuery,
      response: { 200: { type: 'object', properties: { host: { type: 'string' }, version: { type: 'string' }, protocol: { type: 'integer' }, migrationSlotsFree: { type: 'integer' } } } },
    },
  }, async () => ({ host: agent.config.hostName, version: AGENT_VERSION, protocol: 1, migrationSlotsFree: agent.migrations.freeSlots() }));

  app.route({
    ...ADDRESSES_ROUTE,
    schema: { ...ADDRESSES_ROUTE.schema, tags: ['peer'], summary: 'Peer RPC: the addresses this host\'s VMs hold and those it reserves for VMs that moved away, so a peer creating a VM hands out none of them (protocol.ts AddressesReply)' },
    handler: async () => agent.ipam.book(),
  });

  app.get('/v1/events', { schema: { tags: ['events'], summary: 'Server-sent events: VM state changes and job progress' } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': ferry events\n\n');
    const unsubscribe = agent.bus.subscribe((e) => { res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`); });
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => { clearInterval(ping); unsubscribe(); });
  });

  app.get('/metrics', { schema: { tags: ['host'], summary: 'Prometheus metrics', hide: false } }, async (_req, reply) => {
    const { body, contentType } = await metricsText(agent);
    return reply.type(contentType).send(body);
  });
}
