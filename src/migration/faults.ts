import { existsSync, readFileSync, rmSync } from 'node:fs';

/**
 * Fault injection for tests: when `<stateDir>/faults.json` names a point (e.g.
 * `{"source:perform": "kill"}`), the agent dies by SIGKILL on reaching it, exactly as in a crash.
 * The file is removed first, so the restarted agent does not die again. Absent file: no cost
 * beyond one stat per phase.
 */
export function faultPoint(stateDir: string, point: string): void {
  const f = `${stateDir}/faults.json`;
  if (!existsSync(f)) return;
  let faults: Record<string, string>;
  try { faults = JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>; } catch { return; }
  if (faults[point] !== 'kill') return;
  rmSync(f, { force: true });
  process.kill(process.pid, 'SIGKILL');
}
