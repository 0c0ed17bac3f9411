/**
 * Renders the storage benchmark's results as markdown: the machine and its load, how the disks
 * were prepared, a copy-throughput table (Ferry's disk copy, its live storage move on one host,
 * and qemu-img convert measured in the same run), a guest-perceived table (a storage move's
 * blackout against a memory-only move of a same-size VM), the guest's own checks, and a verdict
 * per target of issue 4, point 7. Every number comes from the run.
 */
import { median, n, range, spread } from './stats.js';
import type { Kind, Load, StorageRow, StorageRun } from './storage-types.js';

const MiB = 1024 * 1024;
/** Issue 4, point 7. */
const MIN_THROUGHPUT_RATIO = 0.8;
const MAX_BLACKOUT_RATIO = 1.5;

/** One case: a disk size and a guest load, with its rows. */
interface Case { sizeMiB: number; load: Load; rows: StorageRow[] }

const size = (mib: number): string => (mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`);
const verdict = (ok: boolean): string => (ok ? '**met**' : '**not met**');
/** Completed, and over the transport its kind says: an encrypted `ferry-move`, an unencrypted `plain-move`. */
const ok = (r: StorageRow): boolean => r.status === 'completed'
  && (r.kind === 'ferry-move' ? r.encrypted !== false : r.kind === 'plain-move' ? r.encrypted === false : true);
const of = (c: Case, k: Kind): StorageRow[] => c.rows.filter((r) => r.kind === k);
const done = (c: Case, k: Kind): StorageRow[] => of(c, k).filter(ok);

/** MiB/s of a completed copy: its bytes over its time. */
const mibs = (r: StorageRow): number | null => (ok(r) && r.copyBytes && r.copyMs ? r.copyBytes / MiB / (r.copyMs / 1000) : null);

/** The cases in run order. */
function cases(run: StorageRun): Case[] {
  const m = new Map<string, Case>();
  for (const r of run.rows) {
    const k = `${r.sizeMiB}/${r.load}`;
    if (!m.has(k)) m.set(k, { sizeMiB: r.sizeMiB, load: r.load, rows: [] });
    m.get(k)?.rows.push(r);
  }
  return [...m.values()];
}

/** median(a) / median(b) over the completed rows, and the range of the same ratio per repetition. */
function ratio(a: StorageRow[], b: StorageRow[], f: (r: StorageRow) => number | null): { med: number | null; reps: (number | null)[] } {
  const ma = median(a.map(f));
  const mb = median(b.map(f));
  const reps = a.map((x) => {
    const y = b.find((r) => r.rep === x.rep);
    const fx = f(x);
    const fy = y ? f(y) : null;
    return fx !== null && fy !== null && fy > 0 ? fx / fy : null;
  });
  return { med: ma !== null && mb !== null && mb > 0 ? ma / mb : null, reps };
}

const throughputRatio = (c: Case): ReturnType<typeof ratio> => ratio(done(c, 'ferry-move'), done(c, 'convert-local'), mibs);
const blackoutRatio = (c: Case): ReturnType<typeof ratio> => ratio(done(c, 'ferry-move'), done(c, 'memory-move'), (r) => r.blackoutMs);

/** `3× completed`, `2× completed, 1× failed (STORAGE_FAILED)`. */
function statusCounts(rows: StorageRow[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const s = r.errorCode ? `${r.status} (${r.errorCode})` : r.status;
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return [...counts].map(([s, k]) => `${k}× ${s}`).join(', ') || 'not run';
}

const loadText = (c: Case, run: StorageRun): string => {
  const all = c.rows.filter((r) => r.kind !== 'memory-move');
  const asked = c.load === 'idle' ? 'records only' : `records + memory ${run.busyDirtyMbps} MiB/s`;
  return `${asked} (disk ${n(median(all.map((r) => r.diskWriteKiBs)), 0)} KiB/s, memory ${n(median(all.map((r) => r.dirtyMiBs)), 1)} MiB/s)`;
};

function throughputTable(run: StorageRun, cs: Case[]): string[] {
  const head = '| disk | guest load (measured writes) | qemu-img convert, same host MiB/s | convert -t writeback (flushes) MiB/s | convert → other host\'s pool MiB/s '
    + '| ferry move --include-storage: disk copy MiB/s | ratio Ferry ÷ convert (per rep) | ≥ 0.8 | ratio Ferry ÷ flushing convert | move total s '
    + '| the same, unencrypted: disk copy MiB/s | ratio unencrypted ÷ convert | vm move-storage MiB/s | ratio move-storage ÷ convert |\n'
    + '|---|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|';
  return [head, ...cs.map((c) => {
    const t = throughputRatio(c);
    const flushed = ratio(done(c, 'ferry-move'), done(c, 'convert-flush'), mibs);
    const local = ratio(done(c, 'local-move'), done(c, 'convert-local'), mibs);
    const plain = ratio(done(c, 'plain-move'), done(c, 'convert-local'), mibs);
    const cell = (k: Kind): string => `${spread(of(c, k).map(mibs))}${of(c, k).some((r) => !ok(r)) ? ` [${statusCounts(of(c, k))}]` : ''}`;
    return `| ${size(c.sizeMiB)} | ${loadText(c, run)} | ${cell('convert-local')} | ${cell('convert-flush')} | ${cell('convert-other')} | ${cell('ferry-move')} | `
      + `${n(t.med, 2)} (${range(t.reps, 2)}) | ${t.med === null ? '-' : t.med >= MIN_THROUGHPUT_RATIO ? 'met' : '**no**'} | ${n(flushed.med, 2)} | `
      + `${spread(done(c, 'ferry-move').map((r) => (r.totalMs === null ? null : r.totalMs / 1000)), 1)} | `
      + `${of(c, 'plain-move').length ? `${cell('plain-move')} | ${n(plain.med, 2)} (${range(plain.reps, 2)})` : '- | -'} | ${cell('local-move')} | ${n(local.med, 2)} (${range(local.reps, 2)}) |`;
  })];
}

function blackoutTable(cs: Case[]): string[] {
  const head = '| disk | guest load | storage move: blackout ms | TCP gap ms | QEMU downtime ms | memory-only move: blackout ms | TCP gap ms | QEMU downtime ms | ratio blackout storage ÷ memory-only (per rep) | ≤ 1.5 | TCP alive storage / memory-only |\n'
    + '|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|';
  return [head, ...cs.map((c) => {
    const s = of(c, 'ferry-move');
    const m = of(c, 'memory-move');
    const b = blackoutRatio(c);
    const alive = (rs: StorageRow[]): string => `${rs.filter((r) => r.tcpAlive === true).length}/${rs.length}`;
    return `| ${size(c.sizeMiB)} | ${c.load} | ${spread(s.map((r) => r.blackoutMs))} | ${spread(s.map((r) => r.tcpGapMs))} | ${spread(s.map((r) => r.downtimeMs))} | `
      + `${spread(m.map((r) => r.blackoutMs))} | ${spread(m.map((r) => r.tcpGapMs))} | ${spread(m.map((r) => r.downtimeMs))} | `
      + `${n(b.med, 2)} (${range(b.reps, 2)}) | ${b.med === null ? '-' : b.med <= MAX_BLACKOUT_RATIO ? 'met' : '**no**'} | ${alive(s)} / ${alive(m)} |`;
  })];
}

/** Per kind of step: how many completed and how many left the guest intact. */
function checks(run: StorageRun): string[] {
  const kinds: Kind[] = ['ferry-move', 'plain-move', 'local-move', 'memory-move'];
  return kinds.map((k) => {
    const rs = run.rows.filter((r) => r.kind === k);
    const c = (f: (r: StorageRow) => boolean): string => `${rs.filter(f).length}/${rs.length}`;
    return `- ${k}: ${statusCounts(rs)}; /disk/verify ok ${c((r) => r.check?.diskVerify === 'ok')}, /verify ok ${c((r) => r.check?.memVerify === 'ok')}, `
      + `same boot id ${c((r) => r.check?.bootIdSame === true)}, on the ${k === 'local-move' ? 'same' : 'other'} host afterwards `
      + `${c((r) => (k === 'local-move' ? r.to === r.from : r.to !== null && r.to !== r.from))}.`;
  });
}

/** Errors and anything the runner flagged, one line per step. */
function notes(run: StorageRun): string[] {
  const prep = run.prep.flatMap((p) => (p.notes.length ? [`- preparing ${p.vm}: ${p.notes.join('; ')}`] : []));
  return [...prep, ...run.rows.flatMap((r) => {
    const what = [...(r.errorMessage ? [r.errorMessage] : []), ...r.notes];
    return what.length ? [`- ${size(r.sizeMiB)} ${r.load} ${r.kind} #${r.rep}: ${what.join('; ')}`] : [];
  })];
}

/** Where a storage move's time goes, and how the copies compare, from the numbers. */
function observations(cs: Case[]): string[] {
  return cs.map((c) => {
    const f = done(c, 'ferry-move');
    const share = f.map((r) => (r.copyMs !== null && r.totalMs ? (r.copyMs / r.totalMs) * 100 : null));
    const phases = ['prepare', 'perform', 'confirm'].map((p) => `${p} ${spread(f.map((r) => r.phaseMs?.[p] ?? null))}`).join(', ');
    const memTotal = spread(done(c, 'memory-move').map((r) => r.totalMs));
    const synced = c.rows.map((r) => r.syncBeforeMs ?? null);
    return `- ${size(c.sizeMiB)} ${c.load}: the disk copy took ${spread(share)} % of the storage move's total; its phases, ms: ${phases}; `
      + `the memory-only move's total ${memTotal} ms. Disk copy over NBD ${spread(f.map(mibs))} MiB/s against the same host's live mirror into a file `
      + `(vm move-storage) ${spread(of(c, 'local-move').map(mibs))} MiB/s.`
      + `${synced.some((x) => x !== null) ? ` The \`sync\` before each step (writing back the previous step's page cache) took ${spread(synced)} ms.` : ''}`;
  });
}

function targets(cs: Case[]): string[] {
  const t = cs.map((c) => ({ c, r: throughputRatio(c).med }));
  const tf = cs.map((c) => ({ c, r: ratio(done(c, 'ferry-move'), done(c, 'convert-flush'), mibs).med })).filter(({ r }) => r !== null);
  const tp = cs.map((c) => ({ c, r: ratio(done(c, 'plain-move'), done(c, 'convert-local'), mibs).med })).filter(({ r }) => r !== null);
  const tls = cs.map((c) => ({ c, r: ratio(done(c, 'ferry-move'), done(c, 'plain-move'), mibs).med })).filter(({ r }) => r !== null);
  const b = cs.map((c) => ({ c, r: blackoutRatio(c).med }));
  const list = (xs: { c: Case; r: number | null }[], good: (r: number) => boolean): string =>
    xs.map(({ c, r }) => `${size(c.sizeMiB)} ${c.load} ${n(r, 2)} (${r === null ? 'not measured' : good(r) ? 'met' : 'not met'})`).join('; ');
  const plainList = (xs: { c: Case; r: number | null }[]): string => xs.map(({ c, r }) => `${size(c.sizeMiB)} ${c.load} ${n(r, 2)}`).join('; ');
  const tOk = (r: number): boolean => r >= MIN_THROUGHPUT_RATIO;
  const bOk = (r: number): boolean => r <= MAX_BLACKOUT_RATIO;
  return [
    `1. Disk copy throughput of \`ferry move --include-storage\` (diskBytes ÷ diskMs) ≥ ${MIN_THROUGHPUT_RATIO}× \`qemu-img convert\` of the same image on the same host: `
      + `${verdict(t.length > 0 && t.every(({ r }) => r !== null && tOk(r)))}. Ratio of the medians per case: ${list(t, tOk)}.`
      + `${tf.length ? ` Against convert with \`-t writeback\`, which like the mirror ends with a flush: ${list(tf, tOk)}.` : ''}`
      + `${tp.length ? ` The same copy unencrypted (both hosts \`--insecure-migration on\`; not a target) against convert: ${plainList(tp)}; `
        + `encrypted ÷ unencrypted: ${plainList(tls)}.${tls.every(({ r }) => r !== null && r < 0.9) ? ' That difference is what the NBD stream\'s '
        + 'TLS costs (GnuTLS in both QEMUs, on the 2 cores the guests and agents share); Ferry encrypts by default and keeps it.' : ''}` : ''}`,
    `2. Guest-perceived blackout of a storage move ≤ ${MAX_BLACKOUT_RATIO}× that of a memory-only move of the same-size VM: `
      + `${verdict(b.length > 0 && b.every(({ r }) => r !== null && bOk(r)))}. Ratio of the medians per case: ${list(b, bOk)}.`,
  ];
}

function header(run: StorageRun): string[] {
  const m = run.machine;
  const loads = run.rows.map((r) => r.load1);
  const busy = loads.filter((x) => x > 2.5).length;
  const prep = run.prep.map((p) => `${p.vm} (${size(p.sizeMiB)}, pool ${p.pool}): ${p.filledBytes ? `${n(p.filledBytes / MiB)} MiB of 0xab written in ${n((p.fillMs ?? 0) / 1000, 1)} s, ` : 'not filled, '}`
    + `${p.allocatedBytes === null ? 'allocation not measured' : `${n(p.allocatedBytes / MiB)} MiB allocated`}`).join('; ');
  const reps = Object.entries(run.repsDone).map(([s, k]) => `${size(Number(s))} ${k}`).join(', ');
  return [
    '# Storage benchmark (`npm run bench:storage`)',
    '',
    `Run ${run.startedAt} – ${run.endedAt}, tree ${run.commit}. Machine: ${m.nproc} CPUs, ${m.memMiB} MiB RAM, kernel ${m.kernel}, node ${m.node}. `
      + `${run.qemu}, accel ${run.accel}; VMs of ${run.vmMemMiB} MiB, 1 vCPU, one qcow2 disk (64 KiB clusters). Both lab hosts are network namespaces `
      + 'on this one machine and their pools are folders of the same file system, so every copy here reads and writes the same disk.',
    '',
    `Load: \`uptime\` at start \`${m.uptimeStart}\`; at end \`${m.uptimeEnd}\`. The 2 cores are shared with other engineers' test runs (and the `
      + `benchmark's own guests and agents): the 1-minute load was above 2.5 at ${busy} of ${loads.length} step starts, range ${range(loads, 2)}, median `
      + `${n(median(loads), 2)}. Numbers are noisy; the load at each step is in storage.raw.json.`,
    '',
    `Disks: each VM got a disk of the case's size; the one that moves with its storage was given real data first (stopped, \`qemu-io -c 'write -P 0xab …'\` `
      + `from 64 MiB to 64 MiB short of the end, started again; the guest's records live in the first 64 MiB): ${prep}. `
      + 'The memory-only VM sits on the lab\'s `shared` pool, where a move copies no disk, so its disk was left empty.',
    '',
    `Guest load: the test guest has no disk write-rate knob (guest/README.md, guest/workload/disk.c): it always writes one 4 KiB record (O_DIRECT|O_DSYNC) `
      + `every 100 ms, about 40 KiB/s. **idle** is that alone. **busy** adds ${run.busyDirtyMbps} MiB/s of memory rewrites (/dirty), the only other load the guest `
      + 'offers: it keeps the vCPU working and gives the memory phase something to resend, but it writes nothing more to disk. "measured writes" are the '
      + 'guest\'s own counters over the steps; read them as such, not as a disk-heavy guest.',
    '',
    `Each case, ${run.repeat} repetition${run.repeat === 1 ? '' : 's'} asked, ${reps} done (a repetition is not started when the last one's time says it `
      + `would end past the ${run.budgetMin}-minute budget), the VM going back and forth between h1 and h2: `
      + '**convert** `qemu-img convert -p -U -O qcow2` of the live image (-U reads without QEMU\'s lock) into the same host\'s pool folder; in idle cases also '
      + 'with `-t writeback` and into the other host\'s pool folder (another folder of the same disk, not a network copy); wall time, MiB/s = virtual size ÷ '
      + 'time. convert writes with cache mode `unsafe` by default (`qemu-img --help`): no flush, so with this much RAM its copy ends in the page cache, '
      + 'while QEMU\'s mirror flushes its target before it reports READY; `-t writeback` flushes at the end too and is the like-for-like baseline. '
      + `${run.rows.some((r) => typeof r.syncBeforeMs === 'number') ? 'Before every step an untimed `sync` writes back what the previous one left in the page cache. ' : ''}`
      + '**ferry move** '
      + '`ferry move VM --to OTHER --include-storage --probe --json`, MiB/s = diskBytes ÷ diskMs (the mirror phase until every disk is in sync; QEMU\'s '
      + 'mirror, write-blocking, to the destination\'s NBD export); **vm move-storage** `ferry vm move-storage VM --to-path DIR --json` into a new folder of '
      + 'the same host\'s default pool, MiB/s = virtual size ÷ its totalMs (which includes creating the image, the pivot and deleting the old one); '
      + 'in idle cases also **unencrypted**, the same move back with `ferry host settings H --insecure-migration on` on both hosts, set just before and '
      + 'cleared just after (the summary\'s `encrypted` is checked); '
      + '**memory-only** `ferry move VM2 --to OTHER --probe --json` of a same-size VM on the shared pool. Cells are median (min–max). After every move '
      + 'the guest is asked for /disk/verify, /verify and its boot id from the lab\'s client namespace.',
    '',
  ];
}

/** The whole results file. */
export function renderStorageMarkdown(run: StorageRun): string {
  const cs = cases(run);
  const extra = notes(run);
  return [
    ...header(run),
    '## Disk copy throughput',
    '',
    ...throughputTable(run, cs),
    '',
    '## What the guest\'s clients see',
    '',
    'The probe (ICMP and one TCP echo stream from the client namespace, each every 5 ms) during the storage move and during a memory-only move of the '
      + 'same-size VM under the same load. Ratios are of the medians; per-repetition ratios pair the two moves of one repetition.',
    '',
    ...blackoutTable(cs),
    '',
    '## Guest checks after every move',
    '',
    ...checks(run),
    '',
    '## Where the time goes',
    '',
    ...observations(cs),
    '',
    '## Targets (issue 4, point 7)',
    '',
    ...targets(cs),
    '',
    ...(extra.length ? ['## Errors and notes', '', ...extra, ''] : []),
  ].join('\n');
}
