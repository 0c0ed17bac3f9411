import type { Command } from 'commander';
import type { HostView } from '../../agent/views.js';
import { formatBytes, MiB } from '../../util/index.js';
import { api, everyHost, hostOf } from '../client.js';
import { printJson, printTable, run, warnUnreachable } from '../output.js';
import { printSettings, registerHostSettings } from './host-settings.js';
import { registerHostCert } from './ca.js';
import { printLedger, registerHostDrain } from './host-drain.js';

const row = (h: HostView): (string | number | null)[] => [
  h.name, h.state, h.url, h.accel, `${formatBytes(h.freeMemoryMiB * MiB)} / ${formatBytes(h.memoryMiB * MiB)}`, h.cpus, `${h.runningVmCount}/${h.vmCount}`,
];
const HEAD = ['HOST', 'STATE', 'URL', 'ACCEL', 'FREE / MEMORY', 'CPUS', 'VMS RUNNING/ALL'];

/** `ferry host list|show|settings|drain|resume`. */
export function registerHost(program: Command): void {
  const host = program.command('host').description('hosts of the current context');
  host.command('list').description('every host with capacity and state').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(o.json, async () => {
      const answers = await everyHost<HostView>('/v1/host');
      if (o.json) { printJson(answers.map((a) => a.result)); warnUnreachable(answers); return; }
      printTable(HEAD, [...answers.map((a) => row(a.result)), ...(answers.unreachable ?? []).map((n) => [n, 'unreachable'])]);
    }));
  host.command('show <host>').description('one host').option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }) => run(o.json, async () => {
      const h = await api<HostView>(hostOf(name), 'GET', '/v1/host');
      if (o.json) { printJson(h); return; }
      printTable(HEAD, [row(h)]);
      printTable(['POOL', 'PATH', 'SHARED', 'FREE', 'SIZE'], h.pools.map((p) => [p.name, p.path, p.sharedId, p.error ? `unavailable: ${p.error}` : formatBytes(p.freeBytes), p.error ? null : formatBytes(p.totalBytes)]));
      if (h.accelReason) process.stdout.write(`accelerator: ${h.accel} (${h.accelReason})\n`);
      printSettings(h.settings);
      const a = h.addresses;
      process.stdout.write(`VM addresses: ${a.rangeStart} – ${a.rangeEnd} (/${a.prefixLength}), ${a.reservations.length} kept for VMs that moved away\n`);
      if (a.reservations.length > 0) printTable(['KEPT FOR VM', 'IP', 'MOVED TO', 'SINCE'], a.reservations.map((r) => [r.vm, r.ip, r.host, r.since]));
      const m = h.maintenance;
      if (m.state !== 'active' || m.vms.length > 0) {
        process.stdout.write(`maintenance: ${m.state}${m.since ? ` since ${m.since}` : ''}${m.running ? ` (${m.running.operation} running)` : ''}\n`);
        printLedger(m);
      }
    }));
  registerHostSettings(host);
  registerHostDrain(host);
  registerHostCert(host);
}
