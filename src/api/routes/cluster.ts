import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import type { ClusterJoinRequest } from '../../agent/cluster-link.js';
import { errorResponses } from '../schemas.js';
import { noQuery } from '../../migration/index.js';
import { MIN_FENCE_MARGIN_SEC } from '../../cluster/index.js';
import { HOST_NAME_PATTERN } from '../../security/index.js';

const joinBody = {
  type: 'object', required: ['name', 'endpoints'], additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$' },
    endpoints: { type: 'array', minItems: 1, maxItems: 9, items: { type: 'string', pattern: '^https?://[A-Za-z0-9.:\\[\\]-]{1,255}$' } },
    create: { type: 'boolean', description: 'Create the cluster in etcd (fails with CLUSTER_EXISTS when it exists); otherwise join it.' },
    leaseTtlSec: { type: 'integer', minimum: 2, maximum: 300 },
    fenceMarginSec: { type: 'integer', minimum: MIN_FENCE_MARGIN_SEC, maximum: 300, description: 'At least 4: the fencing watchdog must fire within the margin after an agent last saw its member key (docs/cluster.md).' },
    maxMigrations: { type: 'integer', minimum: 1, maximum: 64, description: 'Live migrations that may run at once in the whole cluster (default 4).' },
  },
} as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

const leaveParams = {
  type: 'object', required: ['host'], additionalProperties: false,
  // A host name as a certificate names it: never '/', so an etcd key built from it stays exact.
  properties: { host: { type: 'string', pattern: HOST_NAME_PATTERN } },
} as const;

const leaveReply = {
  type: 'object', required: ['cluster', 'host', 'by', 'self', 'drainRemoved', 'homes', 'handedOver'],
  properties: {
    cluster: { type: 'string' }, host: { type: 'string' },
    by: { type: 'string', description: 'The host whose agent made the change: the host itself, or a member removing a host that holds no lease.' },
    self: { type: 'boolean', description: 'The host\'s own agent left: it revoked its lease and is standalone now.' },
    drainRemoved: { type: 'boolean', description: 'etcd held a drain record of the host, now deleted.' },
    homes: {
      type: 'array', description: 'HA records that named the host as home (or failback target), with their home before and after.',
      items: { type: 'object', properties: { vm: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } } },
    },
    handedOver: {
      type: 'array', description: 'HA VMs the host, gone for good, owned and the cluster does not restart (stopped, or restart never): the member that owns them now, stopped, to be started there.',
      items: { type: 'object', properties: { vm: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } } },
    },
  },
} as const;

/** /v1/cluster (status, create or join), /v1/cluster/members/:host (leave) and /v1/peer/cluster (a peer's lease, for fencing decisions). */
export function clusterRoutes(app: FastifyInstance, agent: Agent): void {
  app.get('/v1/cluster', {
    schema: { tags: ['cluster'], summary: 'The cluster as this host sees it: members, manager, quorum, HA VMs and where they run', response: { 200: anyObject, ...errorResponses } },
  }, async () => agent.cluster.status());

  app.post<{ Body: ClusterJoinRequest }>('/v1/cluster', {
    schema: { tags: ['cluster'], summary: 'Create a cluster in etcd and join it, or join an existing one', body: joinBody, response: { 200: anyObject, ...errorResponses } },
  }, async (req) => agent.cluster.join(req.body));

  app.delete<{ Params: { host: string } }>('/v1/cluster/members/:host', {
    schema: {
      tags: ['cluster'], params: leaveParams, response: { 200: leaveReply, ...errorResponses },
      summary: 'Take a host out of the cluster for good (`ferry cluster leave`): asked of the host itself, it leaves; asked of another member, that host must hold no lease',
    },
  }, async (req) => agent.leaveCluster(req.params.host));

  app.get('/v1/peer/cluster', {
    schema: {
      tags: ['peer'], summary: 'Whether this host renews its cluster lease (asked by a peer deciding whether to fence)', querystring: noQuery,
      response: { 200: { type: 'object', properties: { host: { type: 'string' }, renewing: { type: 'boolean' }, sinceRenewMs: { type: 'integer', description: 'How long ago this host last renewed its lease, ms' }, cluster: { type: ['string', 'null'] } } } },
    },
  }, async () => agent.cluster.peerView());
}
