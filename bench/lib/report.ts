/**
 * Renders the migration benchmark's results as markdown: a header describing the machine, one
 * table per link setting (a Ferry row and a baseline row per case, each the median and range of
 * its repetitions), observations on where outages fall, and a verdict per target of issue 3 over
 * every single move. Every number comes from the run.
 */
import { median, n, range, spread } from './stats.js';
import type { BenchRun, LinkRun, Row } from './types.js';
import { tlsSection } from './tls-report.js';
import { stallSection } from './stall-report.js';
import { tlsCredsSection } from './tls-creds.js';

const MiB = 1024 * 1024;

/** A row with the link it ran on. */
interface Placed { r: Row; l: LinkRun }

/** The link's raw throughput used as the reference: the best of its samples, bytes/s. */
export const rawBps = (l: LinkRun): number => Math.max(0, ...l.samples.map((s) => s.bytesPerSec));

/** Total time over the ideal time bytes/raw throughput; null without the numbers. */
export function idealRatio(r: Row, bps: number): number | null {
  if (r.totalMs === null || r.bytes === null || r.bytes <= 0 || bps <= 0) return null;
  return r.totalMs / ((r.bytes / bps) * 1000);
}

const status = (r: Row): string => (r.errorCode ? `${r.status} (${r.errorCode})` : r.status);
const tag = ({ r, l }: Placed): string => `${l.link} ${r.memMiB} MiB ${r.mbps} MiB/s #${r.rep}`;
const verdict = (ok: boolean): string => (ok ? '**met**' : '**not met**');

/** `3× completed`, `2× completed, 1× failed (MIGRATION_TIMEOUT)`. */
export function statusCounts(rows: Row[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(status(r), (counts.get(status(r)) ?? 0) + 1);
  return [...counts].map(([s, k]) => `${k}× ${s}`).join(', ');
}

/** One table row: the repetitions of one case and mover. */
function line(rows: Row[], bps: number): string {
  const r0 = rows[0] as Row;
  const ferry = r0.who !== 'baseline';
  const alive = `${rows.filter((r) => r.tcpAlive === true).length}/${rows.length}`;
  const tput = rows.map((r) => (r.bytes !== null && r.totalMs ? r.bytes / MiB / (r.totalMs / 1000) : null));
  const redirects = ferry && rows.some((r) => r.redirects !== null)
    ? `${rows.reduce((a, r) => a + (r.redirects ?? 0), 0)} (${rows.reduce((a, r) => a + (r.redirectsUndone ?? 0), 0)})` : '-';
  return `| ${r0.memMiB} MiB | ${r0.mbps} / ${n(median(rows.map((r) => r.dirtyMiBs)), 1)} | ${r0.who} | ${statusCounts(rows)} | `
    + `${spread(rows.map((r) => r.totalMs))} | ${ferry ? spread(rows.map((r) => r.overheadMs)) : '-'} | ${spread(rows.map((r) => r.downtimeMs))} | `
    + `${spread(rows.map((r) => r.blackoutMs))} | ${spread(rows.map((r) => r.tcpGapMs))} | ${rows.some((r) => r.tcpAlive !== true) ? `**${alive}**` : alive} | `
    + `${spread(rows.map((r) => (r.bytes === null ? null : r.bytes / MiB)))} | ${spread(rows.map((r) => r.passes))} | ${spread(tput)} | `
    + `${spread(rows.map((r) => idealRatio(r, bps)), 1)} | ${redirects} |`;
}

const HEAD = '| VM | dirty MiB/s asked / got | mover | status | total ms | total − perform ms | QEMU downtime ms | blackout ms | TCP gap ms | TCP alive | MiB sent | passes | MiB/s (bytes/total) | total ÷ (bytes/raw) | MAC redirects (undone) |\n'
  + '|---|---|---|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|';

/** Rows grouped by case and mover, in run order. */
function groups(rows: Row[]): Row[][] {
  const m = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.memMiB}/${r.mbps}/${r.who}`;
    m.set(k, [...(m.get(k) ?? []), r]);
  }
  return [...m.values()];
}

/** Errors and anything the runner flagged, one line per move. */
function notes(rows: Row[]): string[] {
  return rows.flatMap((r) => {
    const what = [...(r.errorMessage ? [r.errorMessage] : []), ...r.notes];
    return what.length ? [`- ${r.memMiB} MiB, ${r.mbps} MiB/s, ${r.who} #${r.rep}: ${what.join('; ')}`] : [];
  });
}

/** The section of one link: raw throughput, the table, notes. */
function linkSection(l: LinkRun): string {
  const bps = rawBps(l);
  const samples = l.samples.map((s) => `${(s.bytesPerSec / MiB).toFixed(0)} MiB/s (${(s.bytes / MiB).toFixed(0)} MiB in ${s.ms} ms)`).join(', ');
  const phases = ['begin', 'prepare', 'perform', 'finish', 'confirm']
    .map((p) => `${p} ${spread(l.rows.filter((r) => r.who === 'ferry' && r.status === 'completed').map((r) => r.phaseMs?.[p] ?? null))}`).join(', ');
  return [
    `## Link: ${l.link}`,
    '',
    `Raw single-stream TCP throughput h1 → h2 (node sender and receiver, 3 s), before and after the cases: ${samples || 'not measured'}; `
      + `the reference for "total ÷ (bytes/raw)" is the best of these, ${(bps / MiB).toFixed(0)} MiB/s. Cases ran ${l.startedAt} – ${l.endedAt}; `
      + `1-minute load at case start ${range(l.rows.map((r) => r.load1), 2)}.`,
    '',
    HEAD,
    ...groups(l.rows).map((g) => line(g, bps)),
    '',
    `Ferry's phases over its completed moves on this link, ms: ${phases}.`,
    '',
    ...notes(l.rows),
    '',
  ].join('\n');
}

const ferryRows = (run: BenchRun): Placed[] => run.links.flatMap((l) => l.rows.filter((r) => r.who === 'ferry').map((r) => ({ r, l })));
const baseRows = (run: BenchRun): Placed[] => run.links.flatMap((l) => l.rows.filter((r) => r.who === 'baseline').map((r) => ({ r, l })));

/** Where the outages fall: Ferry's undone redirects, and the baseline's longest outage against its time line. */
export function observations(run: BenchRun): string {
  const fr = ferryRows(run).filter((x) => x.r.blackoutMs !== null);
  const undone = fr.filter((x) => (x.r.redirectsUndone ?? 0) > 0);
  const clean = fr.filter((x) => x.r.redirectsUndone === 0);
  const br = baseRows(run).filter((x) => x.r.stalls !== null && x.r.completedAtMs !== null);
  // The longest ping outage of each baseline move: right after `migrate` (QEMU's set-up), or spanning the switch-over.
  const longest = br.map((x) => ({ x, s: [...(x.r.stalls ?? [])].filter((s) => s.kind === 'ping').sort((a, b) => b.gapMs - a.gapMs)[0] }));
  const atStart = longest.filter(({ s }) => s !== undefined && s.atMs <= 200);
  // The outage right after `migrate`, by VM size: it is there whatever the mover, so it bounds the blackout.
  const setup = (mem: number): (number | null)[] => br.filter((x) => x.r.memMiB === mem)
    .map((x) => (x.r.stalls ?? []).find((s) => s.kind === 'ping' && s.atMs <= 200)?.gapMs ?? null);
  const sizes = [...new Set(br.map((x) => x.r.memMiB))];
  const atSwitch = longest.filter(({ x, s }) => s !== undefined && s.atMs > 200 && s.atMs <= (x.r.completedAtMs ?? 0) && s.atMs + s.gapMs >= (x.r.completedAtMs ?? 0) - (x.r.downtimeMs ?? 0) - 100);
  const cmp = run.links.flatMap((l) => groups(l.rows.filter((r) => r.who === 'ferry' && r.status === 'completed')).map((g) => {
    const r0 = g[0] as Row;
    const base = l.rows.filter((r) => r.who === 'baseline' && r.memMiB === r0.memMiB && r.mbps === r0.mbps && r.status === 'completed');
    return `${l.link} ${r0.memMiB}/${r0.mbps}: ${n(median(g.map((r) => r.performMs)))} vs ${n(median(base.map((r) => r.totalMs)))}`;
  }));
  return [
    '## Where the outages and the time go',
    '',
    undone.length === 0
      ? `- Ferry moved the VM's MAC to the destination ${fr.reduce((a, x) => a + (x.r.redirects ?? 0), 0)} times in ${fr.length} moves and never had to undo it.`
      : `- Ferry moves in which the source undid a MAC redirect because QEMU had not paused within the hold time: ${undone.length} of ${fr.length}; `
        + `their blackout ${spread(undone.map((x) => x.r.blackoutMs))} ms and TCP gap ${spread(undone.map((x) => x.r.tcpGapMs))} ms, against `
        + `${spread(clean.map((x) => x.r.blackoutMs))} ms and ${spread(clean.map((x) => x.r.tcpGapMs))} ms in the ${clean.length} moves without one.`,
    `- Baseline: a ping outage began within 200 ms of \`migrate\`, while QEMU syncs the dirty bitmap for the first time (see the stall above), in `
      + `${br.filter((x) => (x.r.stalls ?? []).some((s) => s.kind === 'ping' && s.atMs <= 200)).length} of ${br.length} moves: `
      + `${sizes.map((m) => `${m} MiB ${spread(setup(m))} ms`).join(', ')}. It was the move's longest outage in ${atStart.length} `
      + `(${spread(atStart.map(({ s }) => s?.gapMs ?? null))} ms); the longest spanned the switch-over in ${atSwitch.length} `
      + `(${spread(atSwitch.map(({ s }) => s?.gapMs ?? null))} ms). Each baseline move's outages over 50 ms, placed on its time line, are in migrate.raw.json.`,
    `- Ferry's perform phase (QEMU's migration plus Ferry's polling, cut-over and pause hand-off) against the baseline's whole total-time, `
      + `median ms per case (link MiB/dirty): ${cmp.join('; ')}.`,
    '',
  ].join('\n');
}

/** One verdict per target of issue 3, over every single move. */
export function targets(run: BenchRun): string {
  const fr = ferryRows(run);
  const br = baseRows(run);
  const out: string[] = ['## Targets (issue 3), over every move', ''];

  const broken = fr.filter((x) => x.r.tcpAlive !== true);
  out.push(`1. Every TCP connection to the guest survives every move: ${verdict(broken.length === 0 && fr.length > 0)}. `
    + `${fr.length - broken.length} of ${fr.length} Ferry moves kept the probe's TCP connection`
    + `${broken.length ? `; not: ${broken.map((x) => `${tag(x)} (${status(x.r)})`).join(', ')}` : ''}. `
    + `Baseline: ${br.filter((x) => x.r.tcpAlive === true).length} of ${br.length}.`);

  const low = fr.filter((x) => x.r.mbps <= 20);
  const lowBase = br.filter((x) => x.r.mbps <= 20);
  const bad = low.filter((x) => x.r.blackoutMs === null || x.r.blackoutMs > 50 || x.r.tcpGapMs === null || x.r.tcpGapMs > 300);
  const worst = [...bad].sort((a, b) => (b.r.tcpGapMs ?? Infinity) - (a.r.tcpGapMs ?? Infinity)).slice(0, 3);
  const under50 = low.filter((x) => x.r.tcpGapMs !== null && x.r.tcpGapMs < 50).length;
  out.push(`2. blackoutMs ≤ 50 and tcpGapMs ≤ 300 for 256 MiB and 1 GiB up to 20 MiB/s: ${verdict(bad.length === 0 && low.length > 0)}. `
    + `Over ${low.length} Ferry moves: blackout ${range(low.map((x) => x.r.blackoutMs), 1)} ms (median ${n(median(low.map((x) => x.r.blackoutMs)), 1)}), `
    + `TCP gap ${range(low.map((x) => x.r.tcpGapMs), 1)} ms (median ${n(median(low.map((x) => x.r.tcpGapMs)), 1)}); `
    + `${bad.length} over a limit${worst.length ? `, worst ${worst.map((x) => `${tag(x)} (blackout ${n(x.r.blackoutMs, 1)}, TCP gap ${n(x.r.tcpGapMs, 1)})`).join(', ')}` : ''}. `
    + `Goal tcpGapMs < 50: ${under50} of ${low.length}. The baseline in the same cases: blackout ${range(lowBase.map((x) => x.r.blackoutMs), 1)} ms `
    + `(median ${n(median(lowBase.map((x) => x.r.blackoutMs)), 1)}), TCP gap ${range(lowBase.map((x) => x.r.tcpGapMs), 1)} ms (median ${n(median(lowBase.map((x) => x.r.tcpGapMs)), 1)}).`);

  const done = fr.filter((x) => x.r.status === 'completed');
  const q = done.map((x) => idealRatio(x.r, rawBps(x.l)));
  const perf = done.map((x) => (x.r.performMs !== null && x.r.bytes ? x.r.performMs / ((x.r.bytes / rawBps(x.l)) * 1000) : null));
  const per = (link: string, xs: Placed[], f: (x: Placed) => number | null): string => `${link} ${range(xs.filter((x) => x.l.link === link).map(f), 1)}`;
  const links = run.links.map((l) => l.link);
  out.push(`3. Total time within 1.3× of bytes sent / raw link throughput: ${verdict(q.length > 0 && q.every((v) => v !== null && v <= 1.3))}. `
    + `Over ${done.length} completed Ferry moves the ratio is ${links.map((k) => {
      const on = done.filter((x) => x.l.link === k).map((x) => idealRatio(x.r, rawBps(x.l)));
      return `${per(k, done, (x) => idealRatio(x.r, rawBps(x.l)))} (${on.filter((v) => v === null || v > 1.3).length} of ${on.length} above 1.3, max ${n(Math.max(...on.map((v) => v ?? Infinity)), 2)})`;
    }).join(', ')}; the perform phase alone gives ${range(perf, 1)}. `
    + `Baseline (QEMU's total-time): ${links.map((k) => per(k, br, (x) => idealRatio(x.r, rawBps(x.l)))).join(', ')}.`);

  const ohBad = done.filter((x) => x.r.overheadMs === null || x.r.overheadMs >= 1500);
  out.push(`4. What Ferry adds on top of QEMU's migration (total − perform: begin, prepare with the destination QEMU start, finish, confirm) under 1.5 s: `
    + `${verdict(ohBad.length === 0 && done.length > 0)}. ${range(done.map((x) => x.r.overheadMs))} ms over ${done.length} completed moves `
    + `(median ${n(median(done.map((x) => x.r.overheadMs)))})${ohBad.length ? `; at or over 1.5 s: ${ohBad.map((x) => `${tag(x)} ${n(x.r.overheadMs)} ms`).join(', ')}` : ''}.`);

  const hot = fr.filter((x) => x.r.mbps === 100);
  const cleanEnd = (r: Row): boolean => r.status === 'completed'
    || (r.status === 'failed' && r.errorCode !== null && r.after?.host === 'h1' && r.after.state === 'running' && r.after.healthy);
  const unclean = hot.filter((x) => !cleanEnd(x.r));
  const cases = [...new Set(hot.map((x) => `${x.l.link} ${x.r.memMiB} MiB`))];
  out.push(`5. Every 100 MiB/s case completes or aborts cleanly within its timeout, none hangs: ${verdict(unclean.length === 0 && hot.length > 0)}. `
    + cases.map((k) => {
      const xs = hot.filter((x) => `${x.l.link} ${x.r.memMiB} MiB` === k);
      return `${k}: ${statusCounts(xs.map((x) => x.r))} in ${range(xs.map((x) => x.r.stepMs / 1000), 1)} s (dirtying ${range(xs.map((x) => x.r.dirtyMiBs), 1)} MiB/s)`;
    }).join('; ')
    + `${unclean.length ? `; not clean: ${unclean.map((x) => `${tag(x)} ${status(x.r)}, VM on ${String(x.r.after?.host)} ${String(x.r.after?.state)}`).join(', ')}` : ''}. `
    + `Baseline: ${statusCounts(br.filter((x) => x.r.mbps === 100).map((x) => x.r))}.`);
  return out.join('\n');
}

/** A narrowed run (BENCH_SIZES, BENCH_NO_BASELINE) says what it left out, since the text above describes the full matrix. */
function scopeNote(run: BenchRun): string[] {
  const rows = run.links.flatMap((l) => l.rows);
  const sizes = [...new Set(rows.map((r) => r.memMiB))].sort((a, b) => a - b);
  const noBase = !rows.some((r) => r.who === 'baseline');
  if (!noBase && sizes.length > 1) return [];
  return [`**This run was narrowed**: VM sizes ${sizes.map((m) => `${m} MiB`).join(', ')} only${noBase ? ', and no baseline rows (the targets below then have no baseline to compare)' : ''}.`, ''];
}

/** The whole results file. */
export function renderMarkdown(run: BenchRun): string {
  const m = run.machine;
  const all = run.links.flatMap((l) => l.rows.map((r) => r.load1));
  const loaded = all.filter((x) => x > 2.5).length;
  return [
    '# Live migration benchmark (`npm run bench:migrate`)',
    '',
    `Run ${run.startedAt} – ${run.endedAt}, tree ${run.commit}. Machine: ${m.nproc} CPUs, ${m.memMiB} MiB RAM, kernel ${m.kernel}, node ${m.node}. `
      + `${run.qemu}, accel ${run.accel} (cpu qemu64, machine pc-q35-7.2, 1 vCPU, guest test memory 32 MiB, no disk).`,
    '',
    `Load: \`uptime\` at start \`${m.uptimeStart}\`; at end \`${m.uptimeEnd}\`. Other engineers' tests share the 2 cores (the benchmark's `
      + `own guest, probe and agents count in that load too): the 1-minute load was above 2.5 at ${loaded} of ${all.length} case starts, median ${n(median(all), 2)}${loaded * 2 > all.length ? ', so times and outages are those of a busy machine' : ''}; `
      + 'the load at each case\'s start is in migrate.raw.json and its range under each table.',
    '',
    `Each case: a fresh VM on h1 running the guest workload at the asked dirty rate, moved to h2; ${run.repeat} moves per case and mover, `
      + 'cells give the median (min–max). **ferry** is `ferry move --to h2 --probe --json` (total and phases from the job; downtime and bytes from QEMU), '
      + 'over TLS, Ferry\'s default; **ferry-plain** is the same with unencrypted moves allowed on both hosts (see "What encryption costs"). '
      + '**baseline** is the same guest moved by plain QEMU `migrate` with QEMU\'s defaults (no capabilities, downtime-limit 300 ms, '
      + 'max-bandwidth 128 MiB/s), its destination started with the same argv plus `-incoming tcp:…` (it autostarts; checked), timed by '
      + 'query-migrate\'s total-time. Both use the same probe from the client namespace (ICMP and one TCP echo stream, each every 5 ms, '
      + 'stopped 1 s after the end). "got" is the dirty rate the guest really achieved (its own counter). Every move has a hard timeout '
      + '(Ferry\'s completion timeout + 45 s); "hung" / "did not complete" mean it hit it. MAC redirects are counted from the source agent\'s log.',
    '',
    ...scopeNote(run),
    ...run.links.map(linkSection),
    tlsSection(run),
    stallSection(run.setupStalls, run.qemu),
    tlsCredsSection(run.tlsCreds),
    observations(run),
    targets(run),
    '',
  ].join('\n');
}
