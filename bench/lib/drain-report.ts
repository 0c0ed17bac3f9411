/** bench:drain's raw numbers and its report (bench/results/drain.md). */
import { median, n } from './stats.js';
import type { BenchRun } from './types.js';

/** One `ferry move` of one VM on its own. */
export interface SingleMove { round: number; vm: string; from: string; to: string; status: string; totalMs: number | null; wallMs: number }

/** One move inside a drain, as its job reports it. */
export interface DrainJob { vm: string; status: string; totalMs: number | null }

/** One `ferry host drain` with maxMigrations = limit on both hosts. */
export interface DrainCase {
  limit: number;
  host: string;
  /** The CLI's wall time, from its start to the drain's end. */
  wallMs: number;
  /** The agent's run, from the POST to the drain's end (maintenance.lastRun). */
  agentMs: number | null;
  exitCode: number;
  state: string;
  errorCode: string | null;
  jobs: DrainJob[];
  load1Before: number;
  load1After: number;
}

export interface DrainBenchRun {
  startedAt: string;
  endedAt: string;
  machine: BenchRun['machine'];
  qemu: string;
  commit: string;
  accel: string;
  vms: number;
  memMiB: number;
  singles: SingleMove[];
  drains: DrainCase[];
  /** Guests whose /verify said ok after the last drain, of `vms`; and whether every VM ran on exactly one host. */
  checks: { verifyOk: number; runsOnce: boolean } | null;
}

/** Sum of one round's single-move times (job totalMs), per round. */
function singleSums(d: DrainBenchRun): number[] {
  const rounds = [...new Set(d.singles.map((s) => s.round))];
  return rounds.map((r) => d.singles.filter((s) => s.round === r && s.totalMs !== null).reduce((a, s) => a + (s.totalMs ?? 0), 0));
}

export function renderDrain(d: DrainBenchRun): string {
  const sums = singleSums(d);
  const sum = sums.length ? sums.reduce((a, b) => a + b, 0) / sums.length : null;
  const wallSum = sums.length ? d.singles.reduce((a, s) => a + s.wallMs, 0) / sums.length : null;
  const rows = d.drains.map((c) => {
    const ideal = sum === null ? null : sum / c.limit;
    const ratio = ideal && c.agentMs !== null ? c.agentMs / ideal : null;
    const met = ratio === null ? '-' : ratio <= 1.2 ? 'met' : 'not met';
    return `| ${c.limit} | ${c.host} | ${c.jobs.filter((j) => j.status === 'completed').length}/${c.jobs.length} ${c.state} | ${n(c.agentMs)} | ${n(c.wallMs)} | ${n(ideal)} | ${n(ideal === null ? null : ideal * 1.2)} | ${n(ratio, 2)} | ${met} | ${n(median(c.jobs.map((j) => j.totalMs)))} | ${n(overlap(c), 1)} | ${n(c.load1Before, 1)} → ${n(c.load1After, 1)} |`;
  });
  const singles = d.singles.map((s) => `| ${s.round} | ${s.vm} | ${s.from} → ${s.to} | ${s.status} | ${n(s.totalMs)} | ${n(s.wallMs)} |`);
  return `# bench:drain — draining ${d.vms} VMs of ${d.memMiB} MiB with migration limits ${d.drains.map((c) => c.limit).join(', ')}

Issue 7's target: a drain of N VMs with limit k takes at most 1.2 × (sum of single-move times) / k.

Run ${d.startedAt} – ${d.endedAt} on tree ${d.commit}: ${d.machine.nproc} CPUs, ${d.machine.memMiB} MiB, ${d.qemu}, accelerator ${d.accel}, node ${d.machine.node}.
Load at start: \`${d.machine.uptimeStart}\`; at end: \`${d.machine.uptimeEnd}\`.

## How it was measured

A 2-host lab (\`ferry lab up\`, unshaped links, TLS moves). ${d.vms} fresh VMs of ${d.memMiB} MiB, guests idle. First every VM
moves on its own from h1 to h2 (\`ferry move --json\`, one after the other; the single-move time is the job's totalMs, begin to
confirm, as the agent measures it). Then, for limit k = ${d.drains.map((c) => c.limit).join(', ')}: \`ferry host settings --max-migrations k\` on both hosts,
\`ferry host drain\` of the host that has all ${d.vms} VMs (alternately h2 and h1), \`ferry host resume\` of it. Finally every
VM moves on its own again, to the other host (round 2). The drain time is the agent's run (maintenance.lastRun, from the POST to the drain's
end: peer inventory, ${d.vms} compatibility reports, placement, every move), which is what the target is judged on; the CLI's
wall time (its start and its polling included) is beside it. Sum of single moves = the mean of the rounds' sums
(${sums.map((s) => n(s)).join(' and ')} ms; with the CLI's wall time ${n(wallSum)} ms).

## Drains

| limit k | drained | moved | drain ms (agent) | CLI wall ms | sum/k ms | target 1.2 × sum/k | drain ÷ (sum/k) | target | median move ms in the drain | moves at once (Σ move ms ÷ drain ms) | load 1 min |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

After the last drain: ${d.checks ? `/verify ok in ${d.checks.verifyOk} of ${d.vms} guests; every VM on exactly one host: ${d.checks.runsOnce ? 'yes' : 'NO'}` : 'not checked'}.

## What it means

${verdict(d, sum)}

## Single moves

| round | VM | hosts | status | job totalMs | CLI wall ms |
|---|---|---|---|---|---|
${singles.join('\n')}
`;
}

/** How many moves ran at once on average: the sum of the drain's move times over the drain's time. */
const overlap = (c: DrainCase): number | null => (c.agentMs ? c.jobs.reduce((a, j) => a + (j.totalMs ?? 0), 0) / c.agentMs : null);

/** The honest sentence: met or not per limit, and why (the moves in a drain slow down when they share the machine's CPUs). */
function verdict(d: DrainBenchRun, sum: number | null): string {
  if (sum === null || d.drains.length === 0) return 'Nothing was measured.';
  const single = median(d.singles.map((s) => s.totalMs));
  const parts = d.drains.map((c) => {
    const ideal = sum / c.limit;
    const ratio = c.agentMs === null ? null : c.agentMs / ideal;
    const med = median(c.jobs.map((j) => j.totalMs));
    return `limit ${c.limit}: ${n(c.agentMs)} ms against ${n(ideal)} ms ideal (${n(ratio, 2)}×, target ${ratio !== null && ratio <= 1.2 ? 'met' : 'not met'}); `
      + `a move inside this drain took ${n(med)} ms (median) against ${n(single)} ms alone`;
  });
  const loads = d.drains.flatMap((c) => [c.load1Before, c.load1After]);
  return `${parts.join('.\n')}.\n\nThe drain does run k moves at once (the column "moves at once"), but on a machine of ${d.machine.nproc} CPUs under software `
    + 'emulation every move\'s two QEMU processes (source and destination, both on this machine), the guests and the agents share those CPUs, so each '
    + 'move in a drain of limit k takes longer than a move alone and the drain time falls less than k-fold. The 1-minute load during the drains was '
    + `${n(Math.min(...loads), 1)}–${n(Math.max(...loads), 1)} on ${d.machine.nproc} CPUs (other work on the machine ran beside the benchmark), `
    + 'so single moves and drains were measured under changing contention: the ratios are this run\'s, not a property of Ferry alone.';
}
