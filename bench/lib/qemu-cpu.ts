/**
 * CPU time the QEMU processes of one VM use during a move, read from /proc. Every process whose
 * command line carries the VM's UUID counts: the source (known before the move) and the
 * destination (found when it starts). A poll every 100 ms reads each one's utime + stime, in
 * total and for its vCPU threads (QEMU runs with debug-threads=on, so a vCPU thread is named
 * `CPU n/TCG`), and remembers the thread names it saw (`multifdsend_0`… show the channels).
 *
 * The window: from the source's reading just before the move until the last poll at which the
 * source still ran (it is paused by then and quits in confirm), or until {@link CpuSampler.stop}
 * when it never quits (a failed move). The destination counts from its own start (it is started
 * for the move) until the same poll; one that died first counts until its last reading. QEMU's
 * -daemonize forks twice, so a destination shows as three processes with the same command line:
 * all three count (the first two only start it).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One process's CPU over the window, ms. */
export interface ProcessCpu {
  pid: number;
  role: 'source' | 'destination';
  /** utime + stime over the window, all threads (threads that ended included). */
  cpuMs: number;
  /** The part of it in vCPU threads (the guest running), as far as the polls saw them (at most one poll's worth is missed when they end). */
  vcpuMs: number;
  /** Thread names seen, digits kept (`live_migration`, `multifdsend_0`, …). */
  threads: string[];
}

/** The result of a sampled move. */
export interface MoveCpu {
  processes: ProcessCpu[];
  /** Window length, ms (the source's first reading to the window's end). */
  windowMs: number;
  /** Whether the source quit inside the window (a completed move). */
  sourceQuit: boolean;
}

/** A reading of one process: total and vCPU ticks, thread names. */
interface Reading { ticks: number; vcpuTicks: number; threads: string[] }

/** Fields 14 and 15 (utime, stime) of a /proc stat line; the name before them may hold spaces and parentheses. */
function statTicks(line: string): number {
  const f = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

const readText = (path: string): string | undefined => {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
};

/** Reads process `pid` now; undefined when it is gone. */
function readProcess(pid: number): Reading | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  let vcpuTicks = 0;
  const threads: string[] = [];
  let tids: string[] = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { /* gone meanwhile */ }
  for (const tid of tids) {
    const t = readText(`/proc/${pid}/task/${tid}/stat`);
    if (t === undefined) continue;
    const name = t.slice(t.indexOf('(') + 1, t.lastIndexOf(')'));
    threads.push(name);
    if (/^CPU \d+\//.test(name)) vcpuTicks += statTicks(t);
  }
  return { ticks: statTicks(stat), vcpuTicks, threads };
}

/** Polls the QEMU processes of one VM; see the file's comment. */
export class CpuSampler {
  private readonly timer: NodeJS.Timeout;
  /** Pids already looked at that are not this VM's QEMU. */
  private readonly others = new Set<number>();
  private readonly last = new Map<number, Reading>();
  private readonly seen = new Map<number, Set<string>>();
  /** Every process's reading at the last poll at which the source ran. */
  private atSourceEnd = new Map<number, Reading>();
  private readonly startedAt = performance.now();
  private sourceEndAt = this.startedAt;
  private sourceQuit = false;
  private readonly first: Reading;

  /** Starts sampling the VM of `uuid`, whose QEMU now runs as `sourcePid`; `msPerTick` is the kernel's (1000 / CLK_TCK). */
  constructor(private readonly uuid: string, private readonly sourcePid: number, private readonly msPerTick: number, everyMs = 100) {
    const r = readProcess(sourcePid);
    if (!r) throw new Error(`the source QEMU (pid ${sourcePid}) is not running`);
    this.first = r;
    this.poll();
    this.timer = setInterval(() => this.poll(), everyMs);
  }

  /** Adds the VM's QEMU processes that started since the last poll. */
  private discover(): void {
    for (const e of readdirSync('/proc')) {
      const pid = Number(e);
      if (!Number.isInteger(pid) || this.others.has(pid) || this.last.has(pid) || pid === this.sourcePid) continue;
      const comm = readText(`/proc/${pid}/comm`)?.trim();
      if (comm === undefined) continue;
      if (!comm.startsWith('qemu-system') || !(readText(`/proc/${pid}/cmdline`) ?? '').split('\0').includes(this.uuid)) this.others.add(pid);
      else this.last.set(pid, { ticks: 0, vcpuTicks: 0, threads: [] });
    }
  }

  private poll(): void {
    if (this.sourceQuit) return;
    this.discover();
    const now = new Map<number, Reading>();
    for (const pid of new Set([this.sourcePid, ...this.last.keys()])) {
      const read = readProcess(pid);
      if (!read) continue;
      // A quitting QEMU ends its vCPU threads before the process: keep the highest vCPU count seen.
      const r = { ...read, vcpuTicks: Math.max(read.vcpuTicks, this.last.get(pid)?.vcpuTicks ?? 0) };
      now.set(pid, r);
      this.last.set(pid, r);
      const names = this.seen.get(pid) ?? new Set<string>();
      for (const t of r.threads) names.add(t);
      this.seen.set(pid, names);
    }
    if (now.has(this.sourcePid)) {
      this.atSourceEnd = now;
      this.sourceEndAt = performance.now();
    } else {
      this.sourceQuit = true;
    }
  }

  /** Stops polling and resolves the window's CPU per process. */
  stop(): MoveCpu {
    this.poll();
    clearInterval(this.timer);
    const processes = [...new Set([this.sourcePid, ...this.last.keys()])].map((pid): ProcessCpu => {
      const source = pid === this.sourcePid;
      const end = this.atSourceEnd.get(pid) ?? this.last.get(pid) ?? { ticks: 0, vcpuTicks: 0, threads: [] };
      const from = source ? this.first : { ticks: 0, vcpuTicks: 0 };
      return {
        pid, role: source ? 'source' : 'destination',
        cpuMs: (end.ticks - from.ticks) * this.msPerTick, vcpuMs: (end.vcpuTicks - from.vcpuTicks) * this.msPerTick,
        threads: [...(this.seen.get(pid) ?? [])].sort(),
      };
    });
    return { processes, windowMs: Math.round(this.sourceEndAt - this.startedAt), sourceQuit: this.sourceQuit };
  }
}
