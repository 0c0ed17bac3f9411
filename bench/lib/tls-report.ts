/**
 * What encryption costs: per link and case, Ferry's moves over TLS (the default, `ferry`) beside
 * the same moves with `--insecure-migration on` on both hosts (`ferry-plain`), as medians of
 * their completed repetitions and the ratio TLS ÷ plain. Every number comes from the run.
 */
import { median, n, range, spread } from './stats.js';
import type { BenchRun, LinkRun, Row } from './types.js';

const MiB = 1024 * 1024;

/** One case of one link: its TLS and plain rows (completed ones only). */
interface Pair { link: string; memMiB: number; mbps: number; tls: Row[]; plain: Row[] }

function pairs(l: LinkRun): Pair[] {
  const done = (who: Row['who'], memMiB: number, mbps: number): Row[] =>
    l.rows.filter((r) => r.who === who && r.memMiB === memMiB && r.mbps === mbps && r.status === 'completed');
  const cases = [...new Map(l.rows.filter((r) => r.who === 'ferry-plain').map((r) => [`${r.memMiB}/${r.mbps}`, r])).values()];
  return cases.map((r) => ({ link: l.link, memMiB: r.memMiB, mbps: r.mbps, tls: done('ferry', r.memMiB, r.mbps), plain: done('ferry-plain', r.memMiB, r.mbps) }));
}

/** TLS ÷ plain of the medians of `f`; null when either is unknown or the plain one is 0. */
function ratio(p: Pair, f: (r: Row) => number | null): number | null {
  const t = median(p.tls.map(f));
  const u = median(p.plain.map(f));
  return t === null || u === null || u === 0 ? null : t / u;
}

const tput = (r: Row): number | null => (r.bytes !== null && r.totalMs ? r.bytes / MiB / (r.totalMs / 1000) : null);
const perform = (r: Row): number | null => r.performMs;
const total = (r: Row): number | null => r.totalMs;
const down = (r: Row): number | null => r.downtimeMs;

function line(p: Pair): string {
  const x = (v: number | null): string => (v === null ? '-' : `${n(v, 2)}×`);
  return `| ${p.link} | ${p.memMiB} MiB | ${p.mbps} | ${p.tls.length} / ${p.plain.length} | ${spread(p.tls.map(total))} | ${spread(p.plain.map(total))} | ${x(ratio(p, total))} | `
    + `${spread(p.tls.map(perform))} | ${spread(p.plain.map(perform))} | ${x(ratio(p, perform))} | `
    + `${spread(p.tls.map(down))} | ${spread(p.plain.map(down))} | ${x(ratio(p, down))} | ${spread(p.tls.map(tput))} | ${spread(p.plain.map(tput))} |`;
}

const HEAD = '| link | VM | dirty MiB/s | completed TLS / plain | total ms TLS | total ms plain | total TLS ÷ plain | perform ms TLS | perform ms plain | perform TLS ÷ plain | '
  + 'QEMU downtime ms TLS | downtime ms plain | downtime TLS ÷ plain | MiB/s TLS | MiB/s plain |\n'
  + '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';

/** The section "What encryption costs"; empty when the run has no unencrypted rows (an older raw file). */
export function tlsSection(run: BenchRun): string {
  const all = run.links.flatMap(pairs);
  if (all.length === 0) return '';
  const per = (f: (r: Row) => number | null, link?: string): string => {
    const rs = all.filter((p) => link === undefined || p.link === link).map((p) => ratio(p, f));
    return `${n(median(rs), 2)}× (${range(rs, 2)})`;
  };
  const notEncrypted = run.links.flatMap((l) => l.rows).filter((r) => r.who === 'ferry' && r.status === 'completed' && r.encrypted !== true).length;
  const encrypted = run.links.flatMap((l) => l.rows).filter((r) => r.who === 'ferry-plain' && r.status === 'completed' && r.encrypted !== false).length;
  return [
    '## What encryption costs (TLS ÷ plain)',
    '',
    '**ferry** rows moved over TLS (Ferry\'s default: both QEMUs with `tls-creds-x509`, verify-peer, `tls-authz`); **ferry-plain** rows moved the same VM '
      + 'sizes and workloads with `ferry host settings H --insecure-migration on` on both hosts, set just before and cleared just after each such move. '
      + 'The two ran back to back in each repetition, TLS first in odd repetitions and plain first in even ones. Cells are the median (min–max) '
      + 'of the completed moves; a ratio is TLS median ÷ plain median. Peer RPC between the agents is HTTPS with mutual TLS in both rows, so the '
      + `ratios price the encryption of the memory stream alone. ${notEncrypted} TLS moves said \`encrypted\` other than true, ${encrypted} plain moves other than false.`,
    '',
    HEAD,
    ...all.map(line),
    '',
    `Median over the cases of the ratio TLS ÷ plain: total time ${per(total)}, perform phase ${per(perform)}, QEMU downtime ${per(down)}; `
      + run.links.map((l) => `on ${l.link}: total ${per(total, l.link)}, downtime ${per(down, l.link)}`).join('; ') + '.',
    '',
  ].join('\n');
}
