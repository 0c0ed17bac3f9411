import type { Command } from 'commander';
import { FerryError } from '../../errors/index.js';
import type { HostSettings, MigrationNetwork } from '../../migration/index.js';
import { formatBytes, parseBandwidth } from '../../util/index.js';
import { api, hostOf } from '../client.js';
import { printJson, printTable, run } from '../output.js';

interface SettingsOpts {
  enableMigration?: boolean; disableMigration?: boolean; incoming?: string; outgoing?: string;
  maxMigrations?: string; maxStorageMigrations?: string; performance?: string;
  migrationNetwork?: string[]; anyNetwork?: boolean; maxBandwidth?: string; downtimeTarget?: string; postcopy?: string; insecureMigration?: string;
  json?: boolean;
}

const bad = (sentence: string): never => { throw new FerryError('INVALID_INPUT', sentence); };

function onOff(flag: string, v: string): boolean {
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  return bad(`${flag} takes on or off, not "${v}".`);
}

function whole(flag: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) bad(`${flag} takes a whole number, not "${v}".`);
  return Number(v);
}

/** `CIDR[:PRIORITY]`; without a priority, the networks rank in the order given (1, 2, …). */
function network(v: string, index: number): MigrationNetwork {
  const [cidr = '', priority] = v.split(':');
  return { cidr, priority: priority === undefined ? index + 1 : whole('--migration-network PRIORITY', priority) };
}

/** The settings the flags change (nothing when there are none: then the command only shows them). */
export function settingsPatch(o: SettingsOpts): Partial<HostSettings> {
  const p: Partial<HostSettings> = {};
  if (o.enableMigration && o.disableMigration) bad('Give --enable-migration or --disable-migration, not both.');
  if (o.enableMigration || o.disableMigration) p.incomingEnabled = p.outgoingEnabled = o.enableMigration === true;
  if (o.incoming !== undefined) p.incomingEnabled = onOff('--incoming', o.incoming);
  if (o.outgoing !== undefined) p.outgoingEnabled = onOff('--outgoing', o.outgoing);
  if (o.maxMigrations !== undefined) p.maxMigrations = whole('--max-migrations', o.maxMigrations);
  if (o.maxStorageMigrations !== undefined) p.maxStorageMigrations = whole('--max-storage-migrations', o.maxStorageMigrations);
  if (o.performance !== undefined) p.performance = o.performance as HostSettings['performance'];
  if (o.migrationNetwork && o.anyNetwork) bad('Give --migration-network or --any-network, not both.');
  if (o.migrationNetwork) p.networks = o.migrationNetwork.map(network);
  if (o.anyNetwork) p.networks = [];
  if (o.maxBandwidth !== undefined) p.maxBandwidthBytesPerSec = parseBandwidth(o.maxBandwidth);
  if (o.downtimeTarget !== undefined) p.downtimeTargetMs = whole('--downtime-target', o.downtimeTarget);
  if (o.postcopy !== undefined) p.allowPostcopy = onOff('--postcopy', o.postcopy);
  if (o.insecureMigration !== undefined) p.allowInsecureMigration = onOff('--insecure-migration', o.insecureMigration);
  return p;
}

const onOffText = (b: boolean): string => (b ? 'on' : 'off');

/** The settings as SETTING / VALUE rows, for `host settings` and `host show`. */
export function printSettings(s: HostSettings): void {
  printTable(['MIGRATION SETTING', 'VALUE'], [
    ['incoming', onOffText(s.incomingEnabled)],
    ['outgoing', onOffText(s.outgoingEnabled)],
    ['max migrations', s.maxMigrations],
    ['max storage migrations', s.maxStorageMigrations],
    ['performance', s.performance],
    ['networks', s.networks.length === 0 ? 'any' : [...s.networks].sort((a, b) => a.priority - b.priority).map((n) => `${n.cidr} (${n.priority})`).join(', ')],
    ['max bandwidth', s.maxBandwidthBytesPerSec === null ? 'no cap' : `${formatBytes(s.maxBandwidthBytesPerSec)}/s`],
    ['downtime target', `${s.downtimeTargetMs} ms`],
    ['post-copy', s.allowPostcopy ? 'allowed' : 'not allowed'],
    ['unencrypted moves', s.allowInsecureMigration ? 'allowed (when the other host allows them too)' : 'not allowed (TLS)'],
  ]);
}

/** `ferry host settings H [flags]`: shows the host's migration settings, or changes them and shows the result. */
export function registerHostSettings(host: Command): void {
  host.command('settings <host>').description('show or change a host\'s migration settings')
    .option('--enable-migration', 'allow incoming and outgoing live migrations')
    .option('--disable-migration', 'refuse incoming and outgoing live migrations')
    .option('--incoming <on|off>', 'allow moves to this host')
    .option('--outgoing <on|off>', 'allow moves from this host')
    .option('--max-migrations <n>', 'live migrations at once, 1-64 (more wait in a queue)')
    .option('--max-storage-migrations <n>', 'disk copies at once, 1-64')
    .option('--performance <option>', 'tcp, compression (multifd + zstd) or multichannel (multifd, 4 channels)')
    .option('--migration-network <cidr[:priority]>', 'a network for migration traffic; repeat for more (lowest priority first)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--any-network', 'use any network the hosts share')
    .option('--max-bandwidth <rate>', 'cap per move, e.g. 1gbit or 100M/s; none for no cap')
    .option('--downtime-target <ms>', 'the downtime limit a move starts with, 1-10000 ms')
    .option('--postcopy <on|off>', 'may moves from this host switch to post-copy')
    .option('--insecure-migration <on|off>', 'may moves to or from this host travel unencrypted (only when both hosts allow it)')
    .option('--json', 'print JSON')
    .action((name: string, o: SettingsOpts) => run(o.json, async () => {
      const h = hostOf(name);
      const patch = settingsPatch(o);
      const s = Object.keys(patch).length === 0 ? await api<HostSettings>(h, 'GET', '/v1/host/settings')
        : await api<HostSettings>(h, 'PUT', '/v1/host/settings', patch);
      if (o.json) printJson(s);
      else printSettings(s);
    }));
}
