// History: every finished move with total time, downtime and guest-perceived downtime, and a
// chart of downtimes over time.
import type { Ctx } from '../app';
import { bytes, ms, when } from '../format';
import { sourceJobs } from '../model';
import type { Job } from '../types';
import { Empty, StateBadge } from './parts';

// About the card's width in pixels, so the axis text keeps its size.
const W = 1100;
const H = 200;
const PAD = { l: 60, r: 12, t: 14, b: 26 };

/** QEMU downtime of each completed move, oldest left: bars on a time-ordered axis. */
function DowntimeChart({ jobs }: { jobs: Job[] }) {
  const pts = jobs.filter((j) => j.status === 'completed' && j.downtimeMs !== null).slice(0, 40).reverse();
  if (pts.length === 0) return <Empty>The chart appears after the first completed move.</Empty>;
  const max = Math.max(10, ...pts.map((j) => Math.max(j.downtimeMs ?? 0, j.blackoutMs ?? 0)));
  const top = Math.ceil(max / 10 ** Math.floor(Math.log10(max))) * 10 ** Math.floor(Math.log10(max));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const slot = iw / Math.max(pts.length, 12);
  const bw = Math.max(4, Math.min(36, slot * 0.6));
  const y = (v: number): number => PAD.t + ih - (v / top) * ih;
  const ticks = [0, top / 2, top];
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Downtime of each move over time" data-testid="downtime-chart">
      {ticks.map((t) => (
        <g key={t}>
          <line x1={PAD.l} x2={W - PAD.r} y1={y(t)} y2={y(t)} class="grid-line" />
          <text x={PAD.l - 6} y={y(t) + 4} class="axis" text-anchor="end">{ms(t)}</text>
        </g>
      ))}
      {pts.map((j, i) => {
        const x = PAD.l + slot * i + (slot - bw) / 2;
        return (
          <g key={j.id}>
            <rect x={x} y={y(j.downtimeMs ?? 0)} width={bw} height={Math.max(1, ih - (y(j.downtimeMs ?? 0) - PAD.t))} rx={2} class="bar-qemu">
              <title>{`${j.vm} ${j.source} → ${j.destination}, ${when(j.createdAt)}: downtime ${ms(j.downtimeMs)}`}</title>
            </rect>
            {j.blackoutMs != null ? <line x1={x - 2} x2={x + bw + 2} y1={y(j.blackoutMs)} y2={y(j.blackoutMs)} class="mark-guest" /> : null}
          </g>
        );
      })}
      <text x={PAD.l} y={H - 6} class="axis">{when(pts[0]?.createdAt ?? '')}</text>
      {pts.length > 1 ? <text x={W - PAD.r} y={H - 6} class="axis" text-anchor="end">{when(pts[pts.length - 1]?.createdAt ?? '')}</text> : null}
    </svg>
  );
}

export function HistoryView({ ctx }: { ctx: Ctx }) {
  const jobs = sourceJobs(ctx.ov).filter((j) => j.status !== 'running' && j.status !== 'queued');
  const done = jobs.filter((j) => j.status === 'completed' && j.downtimeMs !== null);
  const median = done.length ? [...done].sort((a, b) => (a.downtimeMs ?? 0) - (b.downtimeMs ?? 0))[Math.floor(done.length / 2)]?.downtimeMs : null;
  return (
    <>
      <div class="view-head">
        <h1>History</h1>
        <p class="muted">{jobs.length} finished moves{median != null ? ` · median downtime ${ms(median)}` : ''}</p>
      </div>
      <section class="card">
        <header class="card-head"><h2>Downtime per move</h2><span class="legend"><i class="sw qemu" /> QEMU downtime <i class="sw guest" /> seen by the guest's clients</span></header>
        <DowntimeChart jobs={jobs} />
      </section>
      {jobs.length === 0 ? null : (
        <div class="card flush">
          <table class="table" data-testid="history">
            <thead><tr><th>Started</th><th>VM</th><th>Route</th><th>Result</th><th class="num">Total time</th><th class="num">Downtime</th><th class="num">Guest-perceived</th><th class="num">Sent</th></tr></thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id} data-job={j.id} data-vm={j.vm}>
                  <td class="mono small nowrap">{when(j.createdAt)}</td>
                  <td class="strong">{j.vm}</td>
                  <td class="nowrap">{j.source} → {j.destination}</td>
                  <td><StateBadge state={j.status} />{j.error ? <div class="small muted"><code>{j.error.code}</code> {j.error.message}</div> : null}</td>
                  <td class="num">{ms(j.totalMs)}</td>
                  <td class="num">{ms(j.downtimeMs)}</td>
                  <td class="num">{ms(j.blackoutMs)}</td>
                  <td class="num">{bytes((j.transferredBytes ?? 0) + (j.diskBytes ?? 0) || null)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
