import type { DiskProgress } from '../../storage/index.js';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { FerryError } from '../../errors/index.js';
import type { JobSummary, ProgressView } from '../../migration/index.js';
import { startProbe, type ProbeResult } from '../../lab/index.js';
import { formatBytes, parseBandwidth } from '../../util/index.js';
import { api, context, hostOf } from '../client.js';
import { followEvents } from '../events.js';
import { jobEnded, printJson, run } from '../output.js';
import { locateVm } from './vm.js';

/** A job as the API shows it. */
export type JobView = JobSummary & {
  role: string; progress: ProgressView | null; createdAt: string; endedAt: string | null;
  /** Place in the source's queue while the job waits for a slot (1 = next). */
  queuePosition?: number;
};

interface MoveOpts { to: string; includeStorage?: boolean; storagePath?: string; retainSourceDisks?: boolean; probe?: boolean; wait: boolean; json?: boolean; postcopy?: boolean; maxBandwidth?: string }

/** The states a job ends in. */
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Follows a job on its source host until it ends: a progress bar from the agent's event stream
 * (on a terminal), with a poll of the job as a fallback so a lost event never hangs the CLI.
 */
export async function watchJob(source: ReturnType<typeof hostOf>, id: string, quiet: boolean): Promise<JobView> {
  const bar = !quiet && process.stderr.isTTY ? new cliProgress.SingleBar({
    format: ' {bar} {percentage}% | {done} of {total} | {rate}/s | dirty {dirty} MB/s | pass {pass} | exp. downtime {edt} ms | {phase}',
    hideCursor: true, stream: process.stderr,
  }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(100, 0, { done: '-', total: '-', rate: '-', dirty: 0, pass: 0, edt: '-', phase: 'begin' });
  let phase = 'begin';
  const show = (p: ProgressView): void => {
    bar?.update(Math.floor(p.percent), {
      done: formatBytes(p.transferredBytes), total: formatBytes(p.totalBytes), rate: formatBytes(p.throughputBytesPerSec),
      dirty: p.dirtyRateMBps.toFixed(1), pass: p.pass, edt: p.expectedDowntimeMs ?? '-', phase,
    });
  };
  /** A storage move's disk copy, before memory: one bar over all disks, each disk's share in the label. */
  const showDisks = (disks: DiskProgress[]): void => {
    const len = disks.reduce((a, d) => a + d.lenBytes, 0);
    const off = disks.reduce((a, d) => a + d.offsetBytes, 0);
    bar?.update(len > 0 ? Math.floor((off / len) * 100) : 0, {
      done: formatBytes(off), total: formatBytes(len), rate: '-', dirty: 0, pass: 0, edt: '-',
      phase: `disks ${disks.map((d) => `vd${d.index} ${d.lenBytes > 0 ? Math.floor((d.offsetBytes / d.lenBytes) * 100) : 0}%${d.ready ? ' in sync' : ''}`).join(', ')}`,
    });
  };
  let finish: (j: JobView) => void = () => undefined;
  const done = new Promise<JobView>((r) => { finish = r; });
  const close = await followEvents(source, (e) => {
    if (e.data.id !== id) return;
    if (e.type === 'migration.progress') show(e.data as unknown as ProgressView);
    if (e.type === 'migration.disks') showDisks(e.data.disks as DiskProgress[]);
    if (e.type === 'migration.state') phase = String(e.data.phase);
  }).catch(() => () => undefined);
  const poll = setInterval(() => {
    void api<JobView>(source, 'GET', `/v1/migrations/${id}`, undefined, 10_000).then((j) => {
      phase = j.status === 'queued' ? `queued #${j.queuePosition ?? '?'}` : j.phase;
      if (j.status === 'queued') bar?.update(0, { phase });
      if (TERMINAL.has(j.status)) finish(j);
    }, () => undefined);
  }, 250);
  try {
    const job = await done;
    if (bar) { if (job.status === 'completed') bar.update(100); bar.stop(); }
    return job;
  } finally {
    clearInterval(poll);
    close();
  }
}

function printSummary(j: JobView, probe?: ProbeResult): void {
  const lines = [
    `${j.vm}: ${j.source} → ${j.destination} ${j.status}${j.error ? ` (${j.error.code}: ${j.error.message})` : ''}`,
    `  total ${j.totalMs ?? '-'} ms, QEMU downtime ${j.downtimeMs ?? '-'} ms, ${j.transferredBytes !== null ? formatBytes(j.transferredBytes) : '-'} sent in ${j.passes ?? '-'} passes${j.postcopy ? ', finished in post-copy' : ''}${j.encrypted === false ? ', unencrypted' : j.encrypted ? ', over TLS' : ''}`,
    ...(j.diskBytes !== null ? [`  disks: ${formatBytes(j.diskBytes)} mirrored in ${j.diskMs ?? '-'} ms before the memory copy`] : []),
    `  phases: ${Object.entries(j.phaseMs).map(([p, ms]) => `${p} ${ms} ms`).join(', ')}`,
  ];
  if (probe) {
    lines.push(`  guest's clients saw: ping blackout ${probe.blackoutMs} ms, longest TCP stall ${probe.tcpGapMs} ms, TCP connection ${probe.tcpAlive ? 'survived' : 'BROKE'}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** `ferry move`: live migration with a progress bar and a summary. */
export function registerMove(program: Command): void {
  program.command('move <vm>').description('live-migrate a running VM to another host')
    .requiredOption('--to <host>', 'destination host')
    .option('--include-storage', 'copy the VM\'s disks along (shared-nothing move)')
    .option('--storage-path <dir>', 'where the destination puts the copied disks')
    .option('--retain-source-disks', 'keep the source\'s images after a storage move')
    .option('--postcopy', 'allow switching to post-copy when the VM does not converge')
    .option('--max-bandwidth <rate>', 'cap this move\'s memory stream, e.g. 1gbit or 100M/s (the host\'s cap applies when smaller)')
    .option('--probe', 'lab: measure what the guest\'s clients see during the move')
    .option('--no-wait', 'print the job id and return at once')
    .option('--json', 'print JSON')
    .action((name: string, o: MoveOpts) => run(o.json, async () => {
      const dest = hostOf(o.to);
      const cap = o.maxBandwidth !== undefined ? parseBandwidth(o.maxBandwidth) : null;
      const { host: source, vm } = await locateVm(name);
      if (o.probe && !context().lab) throw new FerryError('INVALID_INPUT', 'The --probe option needs a lab context (ferry lab up).');
      const probe = o.probe ? await startProbe(context().lab ?? '', vm.ip) : undefined;
      try {
        const job = await api<JobView>(source, 'POST', '/v1/migrations', {
          vm: name, destination: dest.name, ...(o.includeStorage ? { includeStorage: true } : {}),
          ...(o.storagePath ? { storagePath: o.storagePath } : {}), ...(o.retainSourceDisks ? { retainSourceDisks: true } : {}),
          ...(o.postcopy ? { allowPostcopy: true } : {}), ...(cap !== null ? { maxBandwidthBytesPerSec: cap } : {}),
        });
        if (!o.wait) { printJson({ id: job.id, status: job.status }); return; }
        const end = await watchJob(source, job.id, o.json ?? false);
        let pr: ProbeResult | undefined;
        if (probe) { await new Promise((r) => setTimeout(r, 1000)); pr = await probe.stop(); }
        const out = {
          id: end.id, vm: end.vm, source: end.source, destination: end.destination, status: end.status, totalMs: end.totalMs,
          downtimeMs: end.downtimeMs, transferredBytes: end.transferredBytes, passes: end.passes, postcopy: end.postcopy, encrypted: end.encrypted ?? null, diskBytes: end.diskBytes, diskMs: end.diskMs, phaseMs: end.phaseMs,
          ...(end.error ? { error: end.error } : {}), ...(pr ? { blackoutMs: pr.blackoutMs, tcpGapMs: pr.tcpGapMs, tcpAlive: pr.tcpAlive } : {}),
        };
        if (o.json) printJson(out);
        else printSummary(end, pr);
        jobEnded(end, o.json);
      } finally {
        if (probe) await probe.stop().catch(() => undefined);
      }
    }));
}
