/**
 * What QEMU itself costs the guest when a migration starts under TCG, apart from any mover:
 * the first dirty-bitmap sync runs with QEMU's big lock held, and a guest whose RAM is not a
 * multiple of 256 KiB (Ferry's guard against the lost writes of QEMU < 9 under TCG, src/qemu/argv.ts)
 * goes through the slow path, which resets every vCPU's TLB once per dirty page, and every page
 * of a VM that never migrated is dirty. No network, no agent: the test guest boots, and `migrate`
 * to `exec:cat >/dev/null` starts while a second QMP client measures how long the monitor (which
 * needs the same lock as the guest's network I/O) takes to answer `query-status`.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { guestKernelArgs, type GuestImage } from '../../src/image/index.js';
import { memoryArg, runFiles, signalQemu, waitGone } from '../../src/qemu/index.js';
import { readPidFile } from '../../src/util/index.js';
import { QmpClient } from '../../src/qmp/index.js';
import { waitReady } from './baseline.js';
import { run, sleep } from './exec.js';

/** One measurement: a guest of `memMiB` with RAM given as `ramArg`. */
export interface SetupStall {
  memMiB: number;
  /** `aligned`: the MiB size as is (QEMU's fast path); `trimmed`: 8 KiB short, Ferry's TCG size on QEMU < 9 (slow path). */
  ram: 'aligned' | 'trimmed';
  ramArg: string;
  /** Longest time the monitor took to answer `migrate` itself or any question in the second after it, ms. */
  stallMs: number | null;
  /** The same before `migrate`, for the noise. */
  idleMs: number | null;
  /** QEMU's total-time of that migration to /dev/null, ms. */
  totalMs: number | null;
}

/** Longest answer time of `query-status` over `forMs`, asked every 2 ms. */
async function longestAnswer(qmp: QmpClient, forMs: number): Promise<number> {
  let worst = 0;
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    const t = performance.now();
    await qmp.execute('query-status', undefined, { timeoutMs: 10_000 });
    worst = Math.max(worst, performance.now() - t);
    await sleep(2);
  }
  return worst;
}

async function measureOne(image: GuestImage, workDir: string, memMiB: number, ram: SetupStall['ram']): Promise<SetupStall> {
  const ramArg = memoryArg({ accel: 'tcg', memoryMiB: memMiB, ramTrimKiB: ram === 'aligned' ? 0 : 8 });
  const out: SetupStall = { memMiB, ram, ramArg, stallMs: null, idleMs: null, totalMs: null };
  const dir = join(workDir, `stall-${memMiB}-${ram}`);
  mkdirSync(dir, { recursive: true });
  const f = runFiles(dir);
  const uuid = randomUUID();
  const r = await run('qemu-system-x86_64', [
    '-name', `stall${memMiB}`, '-uuid', uuid, '-machine', 'pc-q35-7.2,accel=tcg', '-cpu', 'qemu64', '-m', ramArg, '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-kernel', image.kernel, '-initrd', image.initrd,
    '-append', guestKernelArgs({ ip: '10.99.0.2', prefixLength: 24, name: `stall${memMiB}` }),
    '-serial', `file:${f.serial}`, '-qmp', `unix:${f.qmp},server=on,wait=off`, '-pidfile', f.pid, '-daemonize',
  ], 60_000);
  if (r.code !== 0) return out;
  const pid = readPidFile(f.pid);
  try {
    await waitReady(f.serial, 60_000);
    await sleep(2000);
    const qmp = await QmpClient.connect(f.qmp, { retryUntilMs: 10_000 });
    try {
      out.idleMs = await longestAnswer(qmp, 500);
      // The set-up may take the lock before `migrate` has answered, so its own answer time counts too.
      const t = performance.now();
      await qmp.execute('migrate', { uri: 'exec:cat >/dev/null' });
      const answer = performance.now() - t;
      out.stallMs = Math.max(answer, await longestAnswer(qmp, 1000));
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const info = await qmp.execute('query-migrate');
        if (info.status === 'completed' || info.status === 'failed') { out.totalMs = info['total-time'] ?? null; break; }
        await sleep(50);
      }
    } finally {
      await qmp.close();
    }
  } finally {
    if (pid !== undefined) { signalQemu(pid, uuid, 'SIGKILL'); await waitGone(pid, uuid, 10_000); }
  }
  return out;
}

/** Each size with aligned and with trimmed RAM, `repeat` times each, alternating. */
export async function measureSetupStalls(image: GuestImage, workDir: string, sizes: number[], repeat: number): Promise<SetupStall[]> {
  const out: SetupStall[] = [];
  for (let i = 0; i < repeat; i++) {
    for (const m of sizes) {
      for (const ram of (i % 2 === 0 ? ['aligned', 'trimmed'] : ['trimmed', 'aligned']) as SetupStall['ram'][]) {
        out.push(await measureOne(image, workDir, m, ram));
      }
    }
  }
  return out;
}
