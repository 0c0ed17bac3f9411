/**
 * `npm run bench:ha` (issue 7, target "HA restart within lease TTL + 30 s, TCG boot included"):
 * in a 2-host cluster lab (3-member etcd, lease TTL 10 s), two HA VMs on one host; power loss of
 * that host (`ferry lab kill-host`); how long until the survivor started their QEMUs, and until
 * each guest answers again with a new boot id. Baseline measured in the same run: a cold boot of
 * the same VM (create → answering), which is what TCG costs whatever Ferry does. The dead host
 * comes back, forgets the VMs, and the next round kills the other host.
 * Writes bench/results/ha.md and ha.raw.json; `--render` rewrites ha.md from the raw numbers.
 */
import { join } from 'node:path';
import { labStatus, startLab, stopLab } from '../src/lab/index.js';
import { repoRoot } from '../src/util/paths.js';
import type { VmView } from '../src/agent/views.js';
import { ferry, guestGet, load1 } from './lib/exec.js';
import { benchMain, checkpoint, runFacts, writeResults } from './lib/harness.js';
import type { BenchRun } from './lib/types.js';

const LAB = `bha${process.pid}`;
const TTL_SEC = 10;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const results = join(repoRoot(), 'bench', 'results');
const log = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}] ${s}\n`); };

interface Round { round: number; killed: string; survivor: string; coldBootS: number; placedS: number; answeredS: number[]; load1: number }
interface HaRun { machine: BenchRun['machine']; qemu: string; commit: string; startedAt: string; endedAt: string; ttlSec: number; rounds: Round[] }

async function must<T>(args: string[], timeoutMs = 300_000): Promise<T> {
  const r = await ferry<T>(args, timeoutMs);
  if (r.code !== 0 || r.json === undefined) throw new Error(`ferry ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.json;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const bootId = async (ip: string): Promise<string> => ((await guestGet(LAB, ip, '/boot-id', 1)) ?? '').trim();

async function round(n: number): Promise<Round> {
  const [killed, survivor] = n % 2 === 1 ? ['h1', 'h2'] : ['h2', 'h1'];
  // Baseline: a cold boot of the same VM on the survivor, create → answering.
  const t = Date.now();
  const cold = await must<VmView>(['vm', 'create', `cold${n}`, '--host', survivor, '--memory', '160M', '--json']);
  await until('the cold VM answering', async () => (await bootId(cold.ip)) !== '', 180_000);
  const coldBootS = (Date.now() - t) / 1000;
  await must(['vm', 'delete', `cold${n}`, '--json']).catch(() => undefined);
  const vms: VmView[] = [];
  for (const v of [`ha${n}a`, `ha${n}b`]) vms.push(await must<VmView>(['vm', 'create', v, '--host', killed, '--memory', '160M', '--disk', '64M', '--pool', 'shared', '--ha', '--json']));
  const before = await Promise.all(vms.map((v) => bootId(v.ip)));
  const survivorSocket = (await labStatus(LAB)).hosts.find((h) => h.name === survivor)?.socket ?? '';
  const t0 = Date.now();
  await ferry(['lab', 'kill-host', killed, '--name', LAB], 60_000);
  await until('QEMUs on the survivor', async () => {
    const r = await ferry<VmView[]>(['vm', 'list', '--json'], 30_000);
    return vms.every((v) => r.json?.some((x) => x.name === v.name && x.host === survivor && x.pid !== null) ?? false);
  }, 180_000);
  const placedS = (Date.now() - t0) / 1000;
  const answeredS = await Promise.all(vms.map(async (v, i) => {
    await until(`${v.name} answering again`, async () => { const b = await bootId(v.ip); return b !== '' && b !== before[i]; }, 240_000);
    return (Date.now() - t0) / 1000;
  }));
  log(`round ${n}: killed ${killed}; QEMUs on ${survivor} after ${placedS.toFixed(1)} s; answering after ${answeredS.map((s) => s.toFixed(1)).join(', ')} s; cold boot ${coldBootS.toFixed(1)} s (socket ${survivorSocket !== ''})`);
  await must(['lab', 'up', '--name', LAB, '--json']);
  for (const v of vms) await must(['vm', 'delete', v.name, '--json']);
  return { round: n, killed, survivor, coldBootS, placedS, answeredS, load1: load1() };
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };

export function renderHa(d: HaRun): string {
  const target = d.ttlSec + 30;
  const worst = Math.max(...d.rounds.flatMap((r) => r.answeredS));
  const lines = [
    '# HA restart after a host\'s power loss',
    '',
    `Tree ${d.commit}, ${d.qemu}, ${d.machine.nproc} CPUs, TCG. Lease TTL ${d.ttlSec} s, fence margin 5 s. Load at start: ${d.machine.uptimeStart}; at end: ${d.machine.uptimeEnd}.`,
    '',
    '`npm run bench:ha`: two HA VMs (160 MiB, 64 MiB disk in the shared pool) on one host of a 2-host cluster lab; `ferry lab kill-host`; the other host restarts them.',
    'Baseline in the same round: a cold boot of the same VM (create → answering), what TCG costs whatever Ferry does.',
    '',
    '| round | killed | QEMUs started on the survivor (s) | guests answering again (s) | cold boot baseline (s) | load |',
    '|---|---|---|---|---|---|',
    ...d.rounds.map((r) => `| ${r.round} | ${r.killed} | ${r.placedS.toFixed(1)} | ${r.answeredS.map((s) => s.toFixed(1)).join(', ')} | ${r.coldBootS.toFixed(1)} | ${r.load1.toFixed(1)} |`),
    '',
    `Median: QEMUs started after ${median(d.rounds.map((r) => r.placedS)).toFixed(1)} s, guests answering after ${median(d.rounds.flatMap((r) => r.answeredS)).toFixed(1)} s, cold boot ${median(d.rounds.map((r) => r.coldBootS)).toFixed(1)} s.`,
    `Target: answering within lease TTL + 30 s = ${target} s. Worst round: ${worst.toFixed(1)} s: ${worst <= target ? 'met' : 'NOT met'}.`,
    '',
  ];
  return lines.join('\n');
}

benchMain<HaRun>('ha', LAB, results, renderHa, async () => {
  const data: HaRun = { ...(await runFacts()), startedAt: new Date().toISOString(), endedAt: '', ttlSec: TTL_SEC, rounds: [] };
  await startLab(LAB, 2, { accel: 'auto', cluster: true, clusterTiming: { leaseTtlSec: TTL_SEC }, readyTimeoutMs: 60_000 });
  try {
    for (let n = 1; n <= ROUNDS; n++) {
      data.rounds.push(await round(n));
      await checkpoint(data, (x) => writeResults(results, 'ha', x, renderHa));
    }
  } finally {
    await stopLab(LAB);
  }
});
