import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../agent/agent.js';
import type { CreateVmInput } from '../../vm/index.js';
import type { VmSettingsInput } from '../../agent/vm-settings.js';
import { createVmBody, errorResponses, moveStorageBody, moveStorageResult, vmNameParams, vmSettingsBody, vmSettingsResult } from '../schemas.js';

interface NameParams { name: string }

/** /v1/vms: VM lifecycle. */
export function vmRoutes(app: FastifyInstance, agent: Agent): void {
  const one = { 200: { $ref: 'Vm#' }, ...errorResponses };
  app.get('/v1/vms', { schema: { tags: ['vms'], summary: 'List the VMs of this host', response: { 200: { type: 'array', items: { $ref: 'Vm#' } } } } },
    async () => agent.inv.list().map((r) => agent.vmView(r)));

  app.get<{ Params: NameParams }>('/v1/vms/:name', { schema: { tags: ['vms'], summary: 'Show one VM', params: vmNameParams, response: one } },
    async (req) => agent.vmView(agent.inv.get(req.params.name)));

  app.post<{ Body: CreateVmInput }>('/v1/vms', {
    schema: { tags: ['vms'], summary: 'Create a VM and start it', body: createVmBody, response: { 201: { $ref: 'Vm#' }, ...errorResponses, 507: { $ref: 'Error#' } } },
  }, async (req, reply) => {
    const rec = await agent.vms.create(req.body);
    return reply.code(201).send(agent.vmView(rec));
  });

  app.post<{ Params: NameParams; Body: { register?: boolean } | undefined }>('/v1/vms/:name/start', {
    schema: {
      tags: ['vms'], summary: 'Start a stopped VM', params: vmNameParams, response: one,
      body: {
        type: ['object', 'null'], additionalProperties: false,
        properties: { register: { type: 'boolean', description: 'An HA VM the cluster has no record of (its data was lost): register it again here, then start it.' } },
      },
    },
  }, async (req) => agent.vmView(await agent.vms.start(req.params.name, req.body?.register === true)));

  app.post<{ Params: NameParams; Body: { force?: boolean; timeoutSec?: number } | undefined }>('/v1/vms/:name/stop', {
    schema: {
      tags: ['vms'], summary: 'Stop a VM: ACPI power-off, then hard after a timeout', params: vmNameParams, response: one,
      body: { type: ['object', 'null'], additionalProperties: false, properties: { force: { type: 'boolean' }, timeoutSec: { type: 'integer', minimum: 0, maximum: 3600 } } },
    },
  }, async (req) => agent.vmView(await agent.vms.stop(req.params.name, req.body ?? {})));

  app.post<{ Params: NameParams; Body: { toPath: string } }>('/v1/vms/:name/move-storage', {
    schema: {
      tags: ['vms'], params: vmNameParams, body: moveStorageBody,
      summary: 'Move the VM\'s disks to another folder of this host\'s pools (live when it runs); answers when done',
      response: { 200: moveStorageResult, ...errorResponses, 507: { $ref: 'Error#' } },
    },
  }, async (req) => {
    const r = await agent.storage.move(req.params.name, req.body.toPath);
    return { vm: agent.vmView(agent.inv.get(r.vm)), live: r.live, totalMs: r.totalMs, disks: r.disks };
  });

  app.patch<{ Params: NameParams; Body: VmSettingsInput }>('/v1/vms/:name', {
    schema: {
      tags: ['vms'], params: vmNameParams, body: vmSettingsBody, response: { 200: vmSettingsResult, ...errorResponses },
      summary: 'Change a VM\'s anti-affinity group and, for an HA VM, its restart priority, restart and failback policies (not during a move)',
    },
  }, async (req) => {
    const r = await agent.setVm(req.params.name, req.body);
    return { vm: agent.vmView(r.vm), ha: r.ha };
  });

  app.delete<{ Params: NameParams }>('/v1/vms/:name', {
    schema: { tags: ['vms'], summary: 'Delete a VM and its disks', params: vmNameParams, response: { 200: { type: 'object', properties: { deleted: { type: 'string' } } }, ...errorResponses } },
  }, async (req) => { await agent.vms.delete(req.params.name); return { deleted: req.params.name }; });
}
