import type { Command } from 'commander';
import type { ClusterStatus } from '../../agent/cluster-link.js';
import type { ClusterConfig } from '../../cluster/index.js';
import { FerryError } from '../../errors/index.js';
import { api, context, hostOf } from '../client.js';
import { printJson, printTable, run } from '../output.js';

const seconds = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new FerryError('INVALID_INPUT', `${flag} takes whole seconds, not "${v}".`);
  return Number(v);
};

/** The cluster a host of the context is in (from its status), for `join`. */
async function someMember(): Promise<ClusterConfig> {
  for (const h of context().hosts) {
    try {
      const s = await api<ClusterStatus>(h, 'GET', '/v1/cluster', undefined, 15_000);
      return { name: s.name, endpoints: s.endpoints, leaseTtlSec: s.leaseTtlSec, fenceMarginSec: s.fenceMarginSec, createdAt: '' };
    } catch { /* not a member, or down: ask the next */ }
  }
  throw new FerryError('NOT_IN_CLUSTER', 'No host of the current context is in a cluster: run `ferry cluster create` first.');
}

function printStatus(s: ClusterStatus): void {
  const q = s.quorum.endpoints.filter((e) => e.ok).length;
  process.stdout.write(`cluster ${s.name}: manager ${s.manager ?? '-'}, etcd quorum ${s.quorum.healthy ? 'healthy' : 'LOST'} (${q}/${s.quorum.endpoints.length} members answer), lease TTL ${s.leaseTtlSec} s\n`);
  if (s.degraded) process.stdout.write(`DEGRADED: ${s.degraded}\n`);
  process.stdout.write('\n');
  printTable(['member', 'url', 'free MiB', 'maintenance', 'manager'],
    s.members.map((m) => [m.name, m.url, m.freeMemoryMiB, m.maintenance ? 'yes' : 'no', m.name === s.manager ? 'yes' : '']));
  process.stdout.write('\n');
  printTable(['HA VM', 'runs on', 'home', 'state', 'priority', 'restarts', 'note'],
    s.haVms.map((v) => [v.name, v.owner, v.home, v.state, v.priority, v.restarts, v.note ?? '']));
}

/** Registers `ferry cluster create|join|status`. */
export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('failover cluster on etcd: membership, manager, HA VMs');

  cluster.command('create NAME')
    .description('create a cluster in etcd and join the hosts to it (default: every host of the current context)')
    .requiredOption('--etcd URLS', 'etcd client URLs, comma-separated')
    .option('--host H...', 'hosts to join (repeatable)')
    .option('--lease-ttl S', 'seconds a host lease lives without renewal (default 10)')
    .option('--fence-margin S', 'seconds survivors wait past a lease\'s expiry before restarting its VMs (default 5, at least 4)')
    .option('--json', 'print JSON')
    .action((name: string, o: { etcd: string; host?: string[]; leaseTtl?: string; fenceMargin?: string; json?: boolean }) => run(o.json, async () => {
      const endpoints = o.etcd.split(',').map((u) => u.trim()).filter((u) => u !== '');
      const hosts = o.host?.length ? o.host.map(hostOf) : context().hosts;
      const [first, ...rest] = hosts;
      if (!first) throw new FerryError('NO_CONTEXT', 'No host to create the cluster on.');
      const ttl = seconds('--lease-ttl', o.leaseTtl);
      const margin = seconds('--fence-margin', o.fenceMargin);
      const cfg = await api<ClusterConfig>(first, 'POST', '/v1/cluster', {
        name, endpoints, create: true, ...(ttl !== undefined ? { leaseTtlSec: ttl } : {}), ...(margin !== undefined ? { fenceMarginSec: margin } : {}),
      });
      for (const h of rest) await api(h, 'POST', '/v1/cluster', { name, endpoints });
      if (o.json) printJson({ ...cfg, joined: hosts.map((h) => h.name) });
      else process.stdout.write(`created cluster ${name} (lease TTL ${cfg.leaseTtlSec} s); joined ${hosts.map((h) => h.name).join(', ')}\n`);
    }));

  cluster.command('join HOST')
    .description('join HOST to the cluster the other hosts of the context are in')
    .option('--json', 'print JSON')
    .action((host: string, o: { json?: boolean }) => run(o.json, async () => {
      const cfg = await someMember();
      const joined = await api<ClusterConfig>(hostOf(host), 'POST', '/v1/cluster', { name: cfg.name, endpoints: cfg.endpoints });
      if (o.json) printJson(joined);
      else process.stdout.write(`${host} joined cluster ${joined.name}\n`);
    }));

  cluster.command('status')
    .description('members, manager, quorum health, HA VMs and where they run')
    .option('--host H', 'ask this host (default: the first that answers)')
    .option('--json', 'print JSON')
    .action((o: { host?: string; json?: boolean }) => run(o.json, async () => {
      const hosts = o.host ? [hostOf(o.host)] : context().hosts;
      let last: unknown;
      for (const h of hosts) {
        try {
          const s = await api<ClusterStatus>(h, 'GET', '/v1/cluster', undefined, 15_000);
          if (o.json) printJson(s); else printStatus(s);
          return;
        } catch (e) { last = e; }
      }
      throw last instanceof FerryError ? last : new FerryError('AGENT_UNREACHABLE', 'No host of the context answered.');
    }));
}
