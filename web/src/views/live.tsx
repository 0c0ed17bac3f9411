// Live migrations: one progress bar per running or queued move, fed by the event stream.
import type { Ctx } from '../app';
import { call } from '../api';
import { bytes, ms, rate } from '../format';
import { selfName, sourceJobs } from '../model';
import type { Job, Progress } from '../types';
import { Empty, StateBadge } from './parts';

const PHASES = ['begin', 'prepare', 'perform', 'finish', 'confirm'];

function Phases({ phase }: { phase: string }) {
  const at = PHASES.indexOf(phase);
  return (
    <ol class="phases">
      {PHASES.map((p, i) => <li key={p} class={i < at ? 'done' : i === at ? 'now' : ''}>{p}</li>)}
    </ol>
  );
}

function MoveCard({ job, p, ctx }: { job: Job; p: Progress | null; ctx: Ctx }) {
  const pct = job.status === 'queued' ? 0 : Math.floor(p?.percent ?? 0);
  const canCancel = ctx.canAct && job.source === selfName(ctx.ov);
  return (
    <section class="card move" data-job={job.id} data-vm={job.vm}>
      <header class="card-head">
        <h2>{job.vm} <span class="muted route">{job.source} → {job.destination}</span></h2>
        <StateBadge state={job.status} />
      </header>
      <Phases phase={job.phase} />
      <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
        <div class="fill" style={{ width: `${pct}%` }} />
        <span class="progress-text">{job.status === 'queued' ? `queued, #${job.queuePosition ?? '?'} in line` : `${pct}%`}</span>
      </div>
      <dl class="kv four">
        <dt>Sent</dt><dd>{p ? `${bytes(p.transferredBytes)} of ${bytes(p.totalBytes)}` : '—'}</dd>
        <dt>Throughput</dt><dd data-field="throughput">{p ? rate(p.throughputBytesPerSec) : '—'}</dd>
        <dt>Expected downtime</dt><dd>{p ? ms(p.expectedDowntimeMs) : '—'}</dd>
        <dt>Pass</dt><dd>{p ? `${p.pass}${p.dirtyRateMBps > 0 ? ` · dirtying ${p.dirtyRateMBps.toFixed(1)} MB/s` : ''}` : '—'}</dd>
      </dl>
      {canCancel ? (
        <footer class="actions">
          <button class="danger" data-action="cancel" onClick={() => { void ctx.act(() => call('POST', `/v1/migrations/${encodeURIComponent(job.id)}/cancel`)); }}>Cancel move</button>
        </footer>
      ) : null}
    </section>
  );
}

export function LiveView({ ctx }: { ctx: Ctx }) {
  const jobs = sourceJobs(ctx.ov);
  const active = jobs.filter((j) => j.status === 'running' || j.status === 'queued');
  const recent = jobs.filter((j) => j.status !== 'running' && j.status !== 'queued').slice(0, 3);
  return (
    <>
      <div class="view-head"><h1>Live migrations</h1><p class="muted">{active.length ? `${active.length} under way` : 'none under way'}</p></div>
      {active.length === 0 ? <Empty>No move is running. Start one from <a href="#/vms">Virtual machines</a>.</Empty>
        : <div class="stack">{active.map((j) => <MoveCard key={j.id} job={j} p={ctx.live[j.id] ?? j.progress} ctx={ctx} />)}</div>}
      {recent.length > 0 ? (
        <>
          <h3 class="section">Just finished</h3>
          <ul class="finished">
            {recent.map((j) => (
              <li key={j.id} data-job={j.id}>
                <StateBadge state={j.status} /> <span class="strong">{j.vm}</span> {j.source} → {j.destination}
                <span class="muted"> · total {ms(j.totalMs)} · downtime {ms(j.downtimeMs)}</span>
                {j.error ? <span class="muted"> · <code>{j.error.code}</code> {j.error.message}</span> : null}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}
