import type { Command } from 'commander';
import { FerryError } from '../../errors/index.js';
import type { CompareReport } from '../../migration/index.js';
import { api, hostOf } from '../client.js';
import { printJson, run } from '../output.js';
import { locateVm } from './vm.js';

interface CompareOpts { to: string; includeStorage?: boolean; storagePath?: string; json?: boolean }

/** `ferry compare NAME --to H`: the compatibility report; exit 1 when the move would fail. */
export function registerCompare(program: Command): void {
  program.command('compare <vm>').description('report why moving a VM to a host would fail (changes nothing)')
    .requiredOption('--to <host>', 'destination host')
    .option('--include-storage', 'as for a move that copies the VM\'s disks along')
    .option('--storage-path <dir>', 'where the destination would put the copied disks')
    .option('--json', 'print JSON')
    .action((name: string, o: CompareOpts) => run(o.json, async () => {
      if (o.storagePath && !o.includeStorage) throw new FerryError('INVALID_INPUT', 'The --storage-path option only applies with --include-storage.');
      const dest = hostOf(o.to);
      const { host } = await locateVm(name);
      const r = await api<CompareReport>(host, 'POST', `/v1/vms/${encodeURIComponent(name)}/compare`, {
        destination: dest.name, ...(o.includeStorage ? { includeStorage: true } : {}), ...(o.storagePath ? { storagePath: o.storagePath } : {}),
      });
      if (o.json) printJson(r);
      else process.stdout.write(r.compatible ? 'compatible\n' : r.incompatibilities.map((p) => `${p.code}: ${p.message}\n`).join(''));
      if (!r.compatible) process.exitCode = 1;
    }));
}
