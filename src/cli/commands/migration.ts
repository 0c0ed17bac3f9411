import type { Command } from 'commander';
import { FerryError } from '../../errors/index.js';
import { formatBytes } from '../../util/index.js';
import { api, everyHost } from '../client.js';
import { jobEnded, printJson, printTable, run, warnUnreachable } from '../output.js';
import { TERMINAL, watchJob, type JobView } from './move.js';

/**
 * The job `id` names among `jobs`: its whole id, or a prefix of it as `migration list` prints (the
 * first 8 characters) that only one job has. The source's record is preferred (it drives the move).
 */
export function matchJob<J extends { id: string; role: string }>(jobs: readonly J[], id: string): J | undefined {
  const exact = jobs.filter((j) => j.id === id);
  const found = exact.length > 0 ? exact : id.length >= 4 ? jobs.filter((j) => j.id.startsWith(id)) : [];
  const ids = [...new Set(found.map((j) => j.id))];
  if (ids.length > 1) {
    throw new FerryError('INVALID_INPUT', `The id ${id} is the start of ${ids.length} migrations (${ids.map((x) => x.slice(0, 12)).join(', ')}); give more of it.`);
  }
  return found.find((j) => j.role === 'source') ?? found[0];
}

/**
 * Finds a job on the host that drives it (its source), asking every host: a whole id by itself
 * (however old the job), a prefix among each host's last 1000 jobs.
 */
async function locateJob(id: string): Promise<{ host: Parameters<typeof api>[0]; job: JobView }> {
  const whole = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
  const all = whole
    // A host that does not know it answers MIGRATION_NOT_FOUND, which everyHost leaves out.
    ? (await everyHost<JobView>(`/v1/migrations/${id}`)).map((a) => ({ ...a.result, at: a.host }))
    : (await everyHost<JobView[]>('/v1/migrations?limit=1000')).flatMap((a) => a.result.map((job) => ({ ...job, at: a.host })));
  const found = matchJob(all, id);
  if (found) {
    const { at, ...job } = found;
    return { host: at, job };
  }
  throw new FerryError('MIGRATION_NOT_FOUND', `No host of the context knows the migration ${id}.`);
}

const row = (j: JobView): (string | number | null)[] => [
  j.id.slice(0, 8), j.vm, `${j.source} → ${j.destination}`, j.queuePosition ? `queued #${j.queuePosition}` : j.status, j.phase, j.totalMs, j.downtimeMs,
  j.transferredBytes !== null ? formatBytes(j.transferredBytes) : null, j.createdAt,
];
const HEAD = ['ID', 'VM', 'MOVE', 'STATUS', 'PHASE', 'TOTAL MS', 'DOWNTIME MS', 'SENT', 'STARTED'];

/** `ferry migration list|show|watch|cancel`. */
export function registerMigration(program: Command): void {
  const m = program.command('migration').description('migration jobs and their history');
  m.command('list').description('jobs of every host, newest first (each move once, from its source)').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(o.json, async () => {
      const answers = await everyHost<JobView[]>('/v1/migrations');
      const jobs = answers.flatMap((a) => a.result).filter((j) => j.role === 'source').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      if (o.json) printJson(jobs);
      else printTable(HEAD, jobs.map(row));
      warnUnreachable(answers);
    }));
  m.command('show <id>').description('one job').option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) => run(o.json, async () => {
      const { job } = await locateJob(id);
      if (o.json) printJson(job);
      else printTable(HEAD, [row(job)]);
    }));
  m.command('watch <id>').description('follow a job until it ends').option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) => run(o.json, async () => {
      const { host, job } = await locateJob(id);
      const end = TERMINAL.has(job.status) ? job : await watchJob(host, job.id, o.json ?? false);
      if (o.json) printJson(end);
      else printTable(HEAD, [row(end)]);
      jobEnded(end, o.json);
    }));
  m.command('cancel <id>').description('cancel a move before switch-over').option('--json', 'print JSON')
    .action((id: string, o: { json?: boolean }) => run(o.json, async () => {
      const { host, job } = await locateJob(id);
      await api<JobView>(host, 'POST', `/v1/migrations/${job.id}/cancel`);
      const end = await watchJob(host, job.id, true);
      if (o.json) printJson(end);
      else printTable(HEAD, [row(end)]);
    }));
}
