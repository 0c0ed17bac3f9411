import type { Command } from 'commander';
import type { AuditEntry } from '../../agent/audit.js';
import { ROLES, type Role, type TokenView } from '../../agent/tokens.js';
import { FerryError } from '../../errors/index.js';
import type { ContextHost } from '../../util/index.js';
import { api, context, hostOf } from '../client.js';
import { printJson, printTable, run } from '../output.js';

/** `--host H`, or the context's first host (a lab's h1; the one FERRY_URL names). */
const pick = (name: string | undefined): ContextHost => {
  if (name !== undefined) return hostOf(name);
  const first = context().hosts[0];
  if (!first) throw new FerryError('NO_CONTEXT', 'The current context has no hosts.');
  return first;
};

/** `--host H`, or every host of the context. */
const hostsOf = (name: string | undefined): ContextHost[] => (name !== undefined ? [hostOf(name)] : context().hosts);

/** `ferry token create|list|revoke` and `ferry audit`. */
export function registerToken(program: Command): void {
  const t = program.command('token').description('API tokens and their roles (each host keeps its own)');
  t.command('create <name>').description('make a token; prints its secret, which is shown this once')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`).option('--host <host>', 'the host that accepts it (default: the first of the context)')
    .option('--json', 'print JSON')
    .action((name: string, o: { role: string; host?: string; json?: boolean }) => run(o.json, async () => {
      if (!(ROLES as string[]).includes(o.role)) throw new FerryError('INVALID_INPUT', `--role takes one of ${ROLES.join(', ')}, not "${o.role}".`);
      const host = pick(o.host);
      const made = await api<TokenView & { token: string }>(host, 'POST', '/v1/tokens', { name, role: o.role as Role });
      if (o.json) { printJson({ ...made, host: host.name }); return; }
      process.stdout.write(`${made.token}\n`);
      process.stderr.write(`token ${made.id} "${made.name}" (${made.role}) for host ${host.name}; it is not shown again. Use it as FERRY_TOKEN or Authorization: Bearer.\n`);
    }));
  t.command('list').description('tokens of every host (or --host), revoked ones included').option('--host <host>', 'one host').option('--json', 'print JSON')
    .action((o: { host?: string; json?: boolean }) => run(o.json, async () => {
      const rows = (await Promise.all(hostsOf(o.host).map(async (h) => (await api<TokenView[]>(h, 'GET', '/v1/tokens')).map((x) => ({ ...x, host: h.name }))))).flat();
      if (o.json) { printJson(rows); return; }
      printTable(['ID', 'NAME', 'ROLE', 'HOST', 'CREATED', 'LAST USED', 'REVOKED'],
        rows.map((r) => [r.id, r.name, r.role, r.host, r.createdAt, r.lastUsedAt, r.revoked ? 'yes' : 'no']));
    }));
  t.command('revoke <id>').description('revoke a token: its next request gets 401').option('--host <host>', 'the host that knows it (default: whichever does)')
    .option('--json', 'print JSON')
    .action((id: string, o: { host?: string; json?: boolean }) => run(o.json, async () => {
      for (const h of hostsOf(o.host)) {
        try {
          const r = await api<TokenView>(h, 'DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
          if (o.json) printJson({ ...r, host: h.name }); else process.stdout.write(`revoked token ${r.id} "${r.name}" on ${h.name}\n`);
          return;
        } catch (e) {
          if (!(e instanceof FerryError && e.code === 'TOKEN_NOT_FOUND')) throw e;
        }
      }
      throw new FerryError('TOKEN_NOT_FOUND', `No host of the context knows an API token with id ${id}.`);
    }));

  program.command('audit').description('mutating API requests of every host (or --host): who, what, when, status')
    .option('--host <host>', 'one host').option('--limit <n>', 'entries per host', '100').option('--json', 'print JSON')
    .action((o: { host?: string; limit: string; json?: boolean }) => run(o.json, async () => {
      if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 10_000) throw new FerryError('INVALID_INPUT', `--limit takes a whole number from 1 to 10000, not "${o.limit}".`);
      const path = `/v1/audit?limit=${Number(o.limit)}`;
      const rows = (await Promise.all(hostsOf(o.host).map(async (h) => (await api<AuditEntry[]>(h, 'GET', path)).map((e) => ({ ...e, host: h.name })))))
        .flat().sort((a, b) => b.at.localeCompare(a.at));
      if (o.json) { printJson(rows); return; }
      printTable(['AT', 'HOST', 'WHO', 'METHOD', 'ROUTE', 'VM', 'JOB', 'STATUS'],
        rows.map((e) => [e.at, e.host, e.tokenId ? `${e.who} (${e.tokenId})` : e.who, e.method, e.route, e.vm, e.job?.slice(0, 8), e.status]));
    }));
}
