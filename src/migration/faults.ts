import { existsSync, readFileSync, rmSync } from 'node:fs';

/**
 * Fault injection for tests: when `<stateDir>/faults.json` names a point (e.g.
 * `{"source:perform": "kill"}`), the agent acts on reaching it:
 * - `kill`: it dies by SIGKILL, exactly as in a crash;
 * - `hold:MS`: it hangs for MS milliseconds, event loop and all (no lease renewal, no fence check,
 *   no watchdog feed, no answer to anyone), as an agent stuck in a system call would, then goes on.
 * The file is removed first, so the restarted (or woken) agent does not act again. Absent file: no
 * cost beyond one stat per phase.
 */
export function faultPoint(stateDir: string, point: string): void {
  const f = `${stateDir}/faults.json`;
  if (!existsSync(f)) return;
  let faults: Record<string, string>;
  try { faults = JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>; } catch { return; }
  const action = faults[point];
  const hold = /^hold:(\d+)$/.exec(action ?? '');
  if (action !== 'kill' && !hold) return;
  rmSync(f, { force: true });
  if (hold) {
    process.stderr.write(`fault: holding at ${point} for ${hold[1]} ms\n`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(hold[1]));
    return;
  }
  process.kill(process.pid, 'SIGKILL');
}
