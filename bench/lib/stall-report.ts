/** The migrate benchmark's section on QEMU's own stall when a migration starts (bench/lib/setup-stall.ts). */
import type { SetupStall } from './setup-stall.js';
import { spread } from './stats.js';
import { parseQemuVersion, qemuHasTcgDirtyBug } from '../../src/qemu/index.js';

export function stallSection(stalls: SetupStall[] | undefined, qemu: string): string {
  if (!stalls || stalls.length === 0) return '';
  const sizes = [...new Set(stalls.map((s) => s.memMiB))];
  const rows = sizes.flatMap((m) => (['aligned', 'trimmed'] as const).map((ram) => {
    const g = stalls.filter((s) => s.memMiB === m && s.ram === ram);
    return `| ${m} MiB | ${ram === 'aligned' ? 'MiB size as is (QEMU fast path)' : '8 KiB short (slow path)'} | \`-m ${g[0]?.ramArg ?? '-'}\` | `
      + `${g.length} | ${spread(g.map((s) => s.idleMs))} | ${spread(g.map((s) => s.stallMs))} | ${spread(g.map((s) => s.totalMs))} |`;
  }));
  return [
    '## QEMU\'s own stall when a migration starts',
    '',
    'The test guest alone (no network, no agent), booted, then `migrate` to `exec:cat >/dev/null` while a second client asks the monitor '
      + '`query-status` every 2 ms: the monitor needs QEMU\'s big lock, as does the guest\'s network I/O, so its longest answer time, to `migrate` itself or in the '
      + 'second after it, is how long the guest was cut off by the migration\'s set-up. Measured in this run, before the cases.',
    '',
    '| VM | RAM | QEMU option | runs | monitor answer ms, idle | monitor answer ms, `migrate` and the second after it | QEMU total-time ms |',
    '|---|---|---|--:|--:|--:|--:|',
    ...rows,
    '',
    `Ferry's TCG guests on this QEMU (${qemu}) run with ${qemuHasTcgDirtyBug(parseQemuVersion(qemu)) ? 'RAM 8 KiB short' : 'the MiB size as is'}.`,
    '',
    'Why: QEMU before 9.0 syncs the dirty bitmap of a RAM block whose size is a multiple of 256 KiB with a fast path that skips resetting TCG\'s '
      + 'TLBs, so guest writes after a sync are never sent again (fixed in QEMU 9.0, commit 03bfc2188f). On such a QEMU Ferry gives a TCG guest '
      + '8 KiB less RAM (src/qemu/argv.ts), which takes the slow path: one TLB walk per dirty page, under the lock. At the first sync every '
      + 'page of a QEMU that never sent a migration is dirty (and the destination of every move is a new QEMU), so the guest stalls for a time that grows with its RAM, whoever drives the move. '
      + 'It bounds the blackout of every TCG move on QEMU < 9; KVM tracks dirty pages in the kernel and has no such stall, and neither has '
      + 'QEMU 9.0 or later under TCG with the whole size.',
    '',
  ].join('\n');
}
