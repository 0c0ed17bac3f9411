import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { FerryError, isErrorCode } from '../../errors/index.js';
import type { HostView } from '../../agent/views.js';
import type { MaintenanceRun, MaintenanceView } from '../../agent/maintenance.js';
import type { DrainEntry } from '../../host/index.js';
import { api, hostOf } from '../client.js';
import { printJson, printTable, run } from '../output.js';

type Host = ReturnType<typeof hostOf>;

const POLL_MS = 500;

/** One line per VM of the ledger, for people. */
const entryLine = (e: DrainEntry): string =>
  `${e.vm}: ${e.status}${e.destination ? ` (${e.status === 'moving' || e.status === 'moved' ? '→' : 'at'} ${e.destination})` : ''}${e.error ? ` ${e.error.code}: ${e.error.message}` : ''}`;

/** The ledger as a table (`host drain`, `host resume`, `host show`). */
export function printLedger(m: MaintenanceView): void {
  if (m.vms.length === 0) return;
  printTable(['VM', 'STATUS', 'HOST', 'REASON'], m.vms.map((e) => [e.vm, e.status, e.destination, e.error ? `${e.error.code}: ${e.error.message}` : null]));
}

/**
 * Follows the host's maintenance run until it ends: a bar over the drain's VMs on a terminal, one
 * stderr line per VM whose status changes otherwise. Returns the view at the end.
 */
async function follow(host: Host, started: MaintenanceRun | null, quiet: boolean): Promise<MaintenanceView> {
  const bar = !quiet && process.stderr.isTTY ? new cliProgress.SingleBar({
    format: ' {bar} {value}/{total} VMs | {what}', hideCursor: true, stream: process.stderr,
  }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(1, 0, { what: 'planning' });
  const seen = new Map<string, string>();
  try {
    for (;;) {
      const m = (await api<HostView>(host, 'GET', '/v1/host', undefined, 15_000)).maintenance;
      const mine = m.vms.filter((e) => !started || e.updatedAt >= started.startedAt);
      const settled = mine.filter((e) => e.status !== 'moving').length;
      bar?.setTotal(Math.max(1, mine.length));
      bar?.update(settled, { what: mine.filter((e) => e.status === 'moving').map((e) => `${e.vm} → ${e.destination ?? '?'}`).join(', ') || m.state });
      if (!bar && !quiet) {
        for (const e of mine) {
          const line = entryLine(e);
          if (seen.get(e.vm) !== line) { seen.set(e.vm, line); process.stderr.write(`  ${line}\n`); }
        }
      }
      if (m.running === null) return m;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    bar?.stop();
  }
}

/** Ends the command as its run ended: the run's error (DRAIN_INCOMPLETE…) with the view in `details`, else the view. */
function conclude(host: string, m: MaintenanceView, json: boolean | undefined): void {
  const err = m.lastRun?.error;
  if (json && !err) { printJson({ host, ...m }); return; }
  if (!json) {
    printLedger(m);
    process.stdout.write(`${host}: ${m.state}\n`);
  }
  if (err) throw new FerryError(isErrorCode(err.code) ? err.code : 'INTERNAL', err.message, { details: { host, maintenance: m } });
}

/** The two maintenance commands: the verb, its route, its one flag and the body key that carries it. */
const COMMANDS = [
  {
    verb: 'drain', path: '/v1/host/drain', key: 'force', flag: '--force', flagHelp: 'stop the VMs that cannot move (resume starts them again)',
    help: 'move every running VM off a host for maintenance; it then refuses new VMs and incoming moves',
  },
  {
    verb: 'resume', path: '/v1/host/resume', key: 'failback', flag: '--failback', flagHelp: 'move the VMs the drain moved away back to this host',
    help: 'end maintenance: the host takes VMs again; VMs a forced drain stopped start again',
  },
] as const;

/** `ferry host drain H [--force]` and `ferry host resume H [--failback]`: start the run in the host's agent, follow it, report it. */
export function registerHostDrain(host: Command): void {
  for (const c of COMMANDS) {
    host.command(`${c.verb} <host>`).description(c.help)
      .option(c.flag, c.flagHelp)
      .option('--no-wait', 'start and return (the run goes on in the host\'s agent)')
      .option('--json', 'print JSON')
      .action((name: string, o: { force?: boolean; failback?: boolean; wait: boolean; json?: boolean }) => run(o.json, async () => {
        const h = hostOf(name);
        const started = await api<MaintenanceView>(h, 'POST', c.path, { [c.key]: o[c.key] ?? false });
        if (!o.wait) { if (o.json) printJson({ host: name, ...started }); else process.stdout.write(`${name}: ${started.state}\n`); return; }
        conclude(name, await follow(h, started.running, o.json ?? false), o.json);
      }));
  }
}
