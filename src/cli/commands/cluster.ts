import type { Command } from 'commander';
import type { LeaveResult } from '../../agent/cluster-leave.js';
import type { ClusterStatus } from '../../agent/cluster-link.js';
import type { ClusterConfig } from '../../cluster/index.js';
import { FerryError } from '../../errors/index.js';
import { api, context, hostOf } from '../client.js';
import type { ContextHost } from '../../util/index.js';
import { printJson, printTable, run } from '../output.js';

const seconds = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new FerryError('INVALID_INPUT', `${flag} takes whole seconds, not "${v}".`);
  return Number(v);
};

/** The hosts of the context (other than `not`) that answer as cluster members, with their status, in turn. */
async function* members(not?: string): AsyncGenerator<{ host: ContextHost; status: ClusterStatus }> {
  for (const host of context().hosts.filter((x) => x.name !== not)) {
    let status: ClusterStatus;
    try {
      status = await api<ClusterStatus>(host, 'GET', '/v1/cluster', undefined, 15_000);
    } catch { continue; /* not a member, or down: ask the next */ }
    yield { host, status };
  }
}

/** The cluster a host of the context is in (from its status), for `join`. */
async function someMember(): Promise<ClusterConfig> {
  for await (const { status: s } of members()) {
    return { name: s.name, endpoints: s.endpoints, leaseTtlSec: s.leaseTtlSec, fenceMarginSec: s.fenceMarginSec, createdAt: '' };
  }
  throw new FerryError('NOT_IN_CLUSTER', 'No host of the current context is in a cluster: run `ferry cluster create` first.');
}

/**
 * `ferry cluster leave HOST`: asked of HOST's agent when it answers (it then leaves itself), else
 * of another member, which can take out a host that holds no lease (docs/cluster.md). Whether
 * HOST answers is asked first (GET /v1/cluster): a DELETE sent to it that times out may have been
 * carried out, so it is never sent again elsewhere.
 */
async function leave(host: string): Promise<LeaveResult> {
  const path = `/v1/cluster/members/${encodeURIComponent(host)}`;
  const target = context().hosts.find((h) => h.name === host);
  let first: FerryError | undefined;
  if (target) {
    let sent = false;
    try {
      await api<ClusterStatus>(target, 'GET', '/v1/cluster', undefined, 15_000);
      sent = true;
      return await api<LeaveResult>(target, 'DELETE', path, undefined, 60_000);
    } catch (e) {
      // Down for good (it did not answer the status), or standalone already (etcd may still keep its records): a member decides.
      if (!(e instanceof FerryError) || (e.code !== 'NOT_IN_CLUSTER' && (e.code !== 'AGENT_UNREACHABLE' || sent))) throw e;
      first = e;
    }
  }
  // Members in turn: one whose etcd does not answer now (CLUSTER_UNAVAILABLE) hands over to the next.
  for await (const { host: member } of members(host)) {
    try {
      return await api<LeaveResult>(member, 'DELETE', path, undefined, 60_000);
    } catch (e) {
      if (!(e instanceof FerryError) || e.code !== 'CLUSTER_UNAVAILABLE') throw e;
      first = e;
    }
  }
  throw first ?? new FerryError('NOT_IN_CLUSTER', `No host of the current context other than ${host} is in a cluster and answers.`);
}

function printLeave(r: LeaveResult): void {
  const what = [
    r.self ? `${r.host}'s agent revoked its lease and is standalone now` : `${r.by} removed the records of ${r.host}, which holds no lease`,
    r.drainRemoved ? 'its drain record is deleted' : 'etcd had no drain record of it',
    r.homes.length > 0 ? `new homes: ${r.homes.map((h) => `${h.vm} ${h.from} → ${h.to}`).join(', ')}` : 'no HA VM had it as home',
    ...((r.handedOver ?? []).length > 0 ? [`handed over, stopped (start them there): ${r.handedOver.map((h) => `${h.vm} → ${h.to}`).join(', ')}`] : []),
  ];
  process.stdout.write(`${r.host} left cluster ${r.cluster}: ${what.join('; ')}\n`);
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
  if (s.drains.length > 0) {
    process.stdout.write(`\ndrain records in etcd: ${s.drains.map((d) => `${d.host} (${d.state}${d.running ? ', drain running' : ''})`).join(', ')}\n`);
  }
}

/** Registers `ferry cluster create|join|leave|status`. */
export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('failover cluster on etcd: membership, manager, HA VMs');

  cluster.command('create NAME')
    .description('create a cluster in etcd and join the hosts to it (default: every host of the current context)')
    .requiredOption('--etcd <urls>', 'etcd client URLs, comma-separated')
    .option('--host <host...>', 'hosts to join (repeatable)')
    .option('--lease-ttl <s>', 'seconds a host lease lives without renewal (default 10)')
    .option('--fence-margin <s>', 'seconds survivors wait past a lease\'s expiry before restarting its VMs (default 5, at least 4)')
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

  cluster.command('leave HOST')
    .description('take HOST out of the cluster for good, after a drain: its drain record goes, HA VMs whose home it was get their current host as home; '
      + 'a running agent revokes its lease and is standalone again, a host that is down is removed by another member')
    .option('--json', 'print JSON')
    .action((host: string, o: { json?: boolean }) => run(o.json, async () => {
      const r = await leave(host);
      if (o.json) printJson(r); else printLeave(r);
    }));

  cluster.command('status')
    .description('members, manager, quorum health, HA VMs and where they run')
    .option('--host <host>', 'ask this host (default: the first that answers)')
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
