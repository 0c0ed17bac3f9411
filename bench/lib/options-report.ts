/**
 * Renders the performance-options benchmark's results as markdown: the machine and its load, one
 * table per link setting (a row per VM, workload and option, each the median (min–max) of its
 * repetitions, with the ratio of medians against the baseline option), and a summary of every
 * option's ratios against the baseline over all cases. Every number comes from the run.
 */
import type { PerformanceOption } from '../../src/migration/index.js';
import { statusCounts } from './report.js';
import { median, n, range, spread } from './stats.js';
import type { OptionLink, OptionRow, OptionsRun } from './options-types.js';

const MiB = 1024 * 1024;

/** One cell of the matrix on one link: its rows per option. */
interface Cell { link: string; memMiB: number; mbps: number; byOption: Map<PerformanceOption, OptionRow[]> }

/** A measure the report compares between options. */
interface Measure { name: string; f: (r: OptionRow) => number | null }

const cpuOf = (r: OptionRow, role: 'source' | 'destination', vcpu = false): number | null => {
  const ps = r.cpu?.processes.filter((p) => p.role === role) ?? [];
  return ps.length ? ps.reduce((a, p) => a + (vcpu ? p.vcpuMs : p.cpuMs), 0) / 1000 : null;
};
const sum = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a + b);
const cpuTotal = (r: OptionRow): number | null => sum(cpuOf(r, 'source'), cpuOf(r, 'destination'));
/** CPU outside the vCPU threads (migration threads, main loop, I/O) of both QEMUs, s. */
const cpuOther = (r: OptionRow): number | null => {
  const v = sum(cpuOf(r, 'source', true), cpuOf(r, 'destination', true));
  const t = cpuTotal(r);
  return t === null || v === null ? null : t - v;
};
const rxMiB = (r: OptionRow): number | null => (r.rx?.eth0 === null || r.rx?.eth0 === undefined ? null : (r.rx.eth0 + (r.rx.mig0 ?? 0)) / MiB);
const ok = (r: OptionRow): boolean => r.status === 'completed';

const MEASURES: Measure[] = [
  { name: 'total time', f: (r) => r.totalMs },
  { name: 'QEMU downtime', f: (r) => r.downtimeMs },
  { name: 'blackout', f: (r) => r.blackoutMs },
  { name: 'TCP gap', f: (r) => r.tcpGapMs },
  { name: 'CPU src+dst', f: cpuTotal },
  { name: 'CPU outside vCPUs', f: cpuOther },
  { name: 'bytes received by h2', f: rxMiB },
  { name: 'QEMU transferredBytes', f: (r) => (r.bytes === null ? null : r.bytes / MiB) },
];

/** The cells in run order. */
function cells(run: OptionsRun): Cell[] {
  const m = new Map<string, Cell>();
  for (const r of run.rows) {
    const k = `${r.link}/${r.memMiB}/${r.mbps}`;
    const c = m.get(k) ?? { link: r.link, memMiB: r.memMiB, mbps: r.mbps, byOption: new Map() };
    c.byOption.set(r.option, [...(c.byOption.get(r.option) ?? []), r]);
    m.set(k, c);
  }
  return [...m.values()];
}

/** Median of `f` over the option's completed moves in the cell, over the baseline's; null without both. */
function ratio(c: Cell, option: PerformanceOption, baseline: PerformanceOption, f: Measure['f']): number | null {
  const a = median((c.byOption.get(option) ?? []).filter(ok).map(f));
  const b = median((c.byOption.get(baseline) ?? []).filter(ok).map(f));
  return a !== null && b !== null && b > 0 ? a / b : null;
}

/** `1.23×`, `-` when unknown; bold when it is the baseline itself. */
const x = (v: number | null): string => (v === null ? '-' : `${v.toFixed(2)}×`);

/** multifd send channels the source showed: the highest `multifdsend_N` + 1 over the rows, or 0. */
function channels(rows: OptionRow[]): string {
  const per = rows.map((r) => {
    const src = r.cpu?.processes.find((p) => p.role === 'source');
    return src ? src.threads.filter((t) => t.startsWith('multifdsend_')).length : null;
  });
  return spread(per);
}

const HEAD = '| VM | dirty MiB/s asked / got | option | status | total ms | total ×tcp | QEMU downtime ms | downtime ×tcp | blackout ms | blackout ×tcp | TCP gap ms | TCP alive | '
  + 'h2 received MiB | received ×tcp | QEMU transferredBytes MiB | CPU source s | CPU destination s | CPU src+dst ×tcp | CPU outside vCPUs s | multifd send threads |\n'
  + '|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|';

/** A table row: the status of every move, the numbers of the completed ones. */
function line(c: Cell, option: PerformanceOption, baseline: PerformanceOption): string {
  const all = c.byOption.get(option) ?? [];
  const rows = all.filter(ok);
  const r = (f: Measure['f']): string => x(ratio(c, option, baseline, f));
  const s = (f: (r: OptionRow) => number | null, digits = 0): string => spread(rows.map(f), digits);
  const alive = `${rows.filter((q) => q.tcpAlive === true).length}/${rows.length}`;
  return `| ${c.memMiB} MiB | ${c.mbps} / ${n(median(rows.map((q) => q.dirtyMiBs)), 1)} | ${option === baseline ? `**${option}**` : option} | ${statusCounts(all)} | `
    + `${s((q) => q.totalMs)} | ${r((q) => q.totalMs)} | ${s((q) => q.downtimeMs)} | ${r((q) => q.downtimeMs)} | ${s((q) => q.blackoutMs)} | ${r((q) => q.blackoutMs)} | `
    + `${s((q) => q.tcpGapMs)} | ${rows.some((q) => q.tcpAlive !== true) ? `**${alive}**` : alive} | ${s(rxMiB)} | ${r(rxMiB)} | `
    + `${s((q) => (q.bytes === null ? null : q.bytes / MiB))} | ${s((q) => cpuOf(q, 'source'), 1)} | ${s((q) => cpuOf(q, 'destination'), 1)} | ${r(cpuTotal)} | `
    + `${s(cpuOther, 1)} | ${channels(rows)} |`;
}

function linkSection(run: OptionsRun, l: OptionLink, cs: Cell[]): string {
  const samples = l.samples.map((s) => `${(s.bytesPerSec / MiB).toFixed(0)} MiB/s`).join(', ');
  const rows = run.rows.filter((r) => r.link === l.link);
  return [
    `## Link: ${l.link}`,
    '',
    `\`ferry lab up --bandwidth ${l.bandwidth}\`. Raw single-stream TCP throughput h1 → h2 (node sender and receiver, 3 s) each time the lab was set to this link: `
      + `${samples || 'not measured'}.${rows.length ? ` 1-minute load at case start ${range(rows.map((r) => r.load1), 2)} (median ${n(median(rows.map((r) => r.load1)), 2)}).` : ''}`,
    '',
    ...(l.moves ? [HEAD, ...cs.filter((c) => c.link === l.link).flatMap((c) => run.options.map((o) => line(c, o, run.baseline)))]
      : ['No moves on this link in this run (trimmed for time, see above): its raw throughput only.']),
    '',
  ].join('\n');
}

/** Per option and link, and over every link: the median (min–max) over the cases of each measure's ratio against the baseline. */
function summary(run: OptionsRun, cs: Cell[]): string[] {
  const others = run.options.filter((o) => o !== run.baseline);
  const head = `| option | link | cases | ${MEASURES.map((m) => `${m.name} ×${run.baseline}`).join(' | ')} | moves completed |\n`
    + `|---|---|--:|${MEASURES.map(() => '--:').join('|')}|---|`;
  const rowFor = (o: PerformanceOption, link: string, sel: Cell[]): string => {
    const moves = sel.flatMap((c) => c.byOption.get(o) ?? []);
    return `| ${o} | ${link} | ${sel.length} | ${MEASURES.map((m) => spread(sel.map((c) => ratio(c, o, run.baseline, m.f)), 2)).join(' | ')} | `
      + `${moves.filter(ok).length}/${moves.length} |`;
  };
  const lines = others.flatMap((o) => [
    ...run.links.filter((l) => l.moves).map((l) => rowFor(o, l.link, cs.filter((c) => c.link === l.link))),
    rowFor(o, '**all**', cs),
  ]);
  const base = run.rows.filter((r) => r.option === run.baseline);
  return [
    `## Against the baseline (\`${run.baseline}\`)`,
    '',
    `Each cell: over the cases (VM × workload) of the link, the median (min–max) of the case's ratio median(option) ÷ median(${run.baseline}), completed moves only. `
      + `Below 1 is less time, outage, CPU or bytes than ${run.baseline}. ${run.baseline} itself: ${base.filter(ok).length}/${base.length} moves completed.`,
    '',
    head,
    ...lines,
    '',
  ];
}

/** How many moves ran over TLS, in words. */
function encryption(rows: OptionRow[]): string {
  const tls = rows.filter((r) => r.encrypted === true).length;
  const plain = rows.filter((r) => r.encrypted === false).length;
  const unknown = rows.length - tls - plain;
  return `${tls} of ${rows.length} moves over TLS (Ferry's default, both QEMUs with tls-creds-x509), ${plain} unencrypted`
    + `${unknown ? `, ${unknown} not saying (failed before the stream started, or ran on a tree before encryption: plain TCP)` : ''}`;
}

/** Errors and anything the runner flagged, one line per move. */
function notes(run: OptionsRun): string[] {
  const out = run.rows.flatMap((r) => {
    const what = [...(r.errorMessage ? [r.errorMessage] : []), ...r.notes];
    return what.length ? [`- ${r.link} ${r.memMiB} MiB ${r.mbps} MiB/s ${r.option} #${r.rep}: ${what.join('; ')}`] : [];
  });
  return out.length ? ['## Notes', '', ...out, ''] : [];
}

/** The whole results file. */
export function renderOptionsMarkdown(run: OptionsRun): string {
  const m = run.machine;
  const loads = run.rows.map((r) => r.load1);
  const loaded = loads.filter((v) => v > 2.5).length;
  const cs = cells(run);
  return [
    '# Performance options benchmark (`npm run bench:options`)',
    '',
    `Run ${run.startedAt} – ${run.endedAt}, tree ${run.commit}. Machine: ${m.nproc} CPUs, ${m.memMiB} MiB RAM, kernel ${m.kernel}, node ${m.node}. `
      + `${run.qemu}, accel ${run.accel} (cpu qemu64, machine pc-q35-7.2, 1 vCPU, no disk).`,
    '',
    `Load: \`uptime\` at start \`${m.uptimeStart}\`; at end \`${m.uptimeEnd}\`. Other engineers' tests and benchmarks share the ${m.nproc} cores `
      + `(this run's own guests, probe and agents count in the load too): the 1-minute load was above 2.5 at ${loaded} of ${loads.length} case starts, `
      + `median ${n(median(loads), 2)}, range ${range(loads, 2)}; every move's load is in options.raw.json.`,
    '',
    `Each case: a fresh VM on h1 running the guest workload (\`/dirty?mbps=N\`), moved to h2 with \`ferry move --to h2 --probe --json\` after `
      + `\`ferry host settings h1 --performance OPTION\` (the destination follows the source; the option the job recorded, \`ferry migration show\`, is checked). `
      + `Options: **tcp** one migration stream (the baseline, Ferry's default); **multichannel** multifd, 4 channels; **compression** multifd + zstd, 2 channels. `
      + `${run.repsDone} of ${run.repeat} repetitions ran (budget ${run.budgetMin} min); a repetition runs every link, VM, workload and option once, the options of a case `
      + 'back to back in an order rotated from case to case. Cells give the median (min–max) over the repetitions; "×tcp" is median ÷ median of tcp in the same case.',
    '',
    `- Transport: ${encryption(run.rows)}.`,
    '- **total**, **QEMU downtime**, **blackout** and **TCP gap** come from `ferry move --probe --json` (the probe pings and holds a TCP echo stream every 5 ms from the client namespace).',
    '- **h2 received** is what h2\'s uplinks (eth0, which carries the stream, plus the lab\'s second network mig0) received, `ip -s -j link` read just before '
      + '`ferry move` and just after it returned: the stream with its TCP/IP headers, plus peer RPC and the probe\'s echoes (small). '
      + '**QEMU transferredBytes** is the move\'s own count.',
    `- **CPU** is utime + stime of the VM's QEMU processes from /proc (${run.msPerTick} ms ticks), polled every 100 ms: the source from just before the move `
      + 'to its last poll before it quit (paused by then), the destination from its start (it is started for the move) to that same poll. It includes the guest\'s '
      + 'own vCPU; **CPU outside vCPUs** leaves out the `CPU n/TCG` threads (QEMU runs with debug-threads=on): migration threads, main loop, I/O. '
      + '**multifd send threads** counts the `multifdsend_N` threads seen in the source.',
    `- Trimmed for time: no 100 MiB/s case (bench:migrate has it; 20 MiB/s already dirties during the copy); moves ran on ${run.links.filter((l) => l.moves).map((l) => l.link).join(' and ')} `
      + `only${run.links.some((l) => !l.moves) ? `, ${run.links.filter((l) => !l.moves).map((l) => l.link).join(' and ')} got the raw throughput measurement alone (an unshaped lab link carries one stream at about 10 Gbit/s at best here, so it and 10gbit differ little)` : ''}.`,
    '',
    ...summary(run, cs),
    ...run.links.map((l) => linkSection(run, l, cs)),
    ...notes(run),
  ].join('\n');
}
