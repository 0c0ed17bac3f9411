import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import type { Agent } from '../agent/agent.js';

const registries = new WeakMap<Agent, { reg: Registry; refresh: () => void }>();

/** Prometheus text for one agent: VM counts by state, memory, plus Node's process metrics. */
export async function metricsText(agent: Agent): Promise<{ body: string; contentType: string }> {
  let m = registries.get(agent);
  if (!m) {
    const reg = new Registry();
    collectDefaultMetrics({ register: reg, prefix: 'ferryd_' });
    const vms = new Gauge({ name: 'ferry_vms', help: 'VMs on this host by state', labelNames: ['state'], registers: [reg] });
    const mem = new Gauge({ name: 'ferry_memory_free_mib', help: 'Memory free for VMs (MiB)', registers: [reg] });
    const refresh = (): void => {
      vms.reset();
      for (const v of agent.inv.list()) vms.inc({ state: v.state });
      mem.set(agent.vms.freeMemoryMiB());
    };
    m = { reg, refresh };
    registries.set(agent, m);
  }
  m.refresh();
  return { body: await m.reg.metrics(), contentType: m.reg.contentType };
}
