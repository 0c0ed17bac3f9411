import type { Db } from '../util/index.js';
import { FerryError } from '../errors/index.js';
import {
  DEFAULT_HOST_SETTINGS, PERFORMANCE_OPTIONS, usesMultifd, type HostSettings, type MigrationNetwork,
} from '../migration/index.js';

/** A change to the settings: any subset of the fields (`PUT /v1/host/settings`). */
export type HostSettingsPatch = Partial<HostSettings>;

const KEYS = Object.keys(DEFAULT_HOST_SETTINGS) as (keyof HostSettings)[];
const LIMIT = { min: 1, max: 64 };
const DOWNTIME = { min: 1, max: 10_000 };

/**
 * The host's migration settings in the agent's SQLite file, one row per field that was set: an
 * unset field reads as its default, so a default that changes (the config file's
 * `maxStorageMigrations`, a new release) reaches every host that never chose otherwise. Read on
 * every operation, so a change applies to the next move or disk copy.
 */
export class HostSettingsStore {
  constructor(private readonly db: Db, private readonly defaults: Readonly<HostSettings> = DEFAULT_HOST_SETTINGS) {
    db.exec('CREATE TABLE IF NOT EXISTS host_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  }

  /** The settings now: stored fields over the defaults. */
  get(): HostSettings {
    const rows = this.db.prepare('SELECT key, value FROM host_settings').all() as { key: string; value: string }[];
    const stored = Object.fromEntries(rows.filter((r) => (KEYS as string[]).includes(r.key)).map((r) => [r.key, JSON.parse(r.value) as unknown]));
    return { ...this.defaults, ...stored } as HostSettings;
  }

  /** Applies `patch` when the result is valid (INVALID_INPUT otherwise, nothing stored); returns the settings now. */
  update(patch: HostSettingsPatch): HostSettings {
    const unknown = Object.keys(patch).filter((k) => !(KEYS as string[]).includes(k));
    if (unknown.length > 0) throw new FerryError('INVALID_INPUT', `There is no host setting named ${unknown.join(', ')}.`);
    const next = { ...this.get(), ...patch };
    checkHostSettings(next);
    const put = this.db.prepare('INSERT INTO host_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(patch)) if (v !== undefined) put.run(k, JSON.stringify(v));
    })();
    return this.get();
  }
}

/** The defaults of a host whose config file sets some of them (`maxStorageMigrations`, `convergence`). */
export function settingsDefaults(config: { maxStorageMigrations?: number; convergence?: { downtimeTargetMs?: number; allowPostcopy?: boolean } }): HostSettings {
  const d = DEFAULT_HOST_SETTINGS;
  return {
    ...d,
    networks: [...d.networks],
    maxStorageMigrations: config.maxStorageMigrations ?? d.maxStorageMigrations,
    downtimeTargetMs: config.convergence?.downtimeTargetMs ?? d.downtimeTargetMs,
    allowPostcopy: config.convergence?.allowPostcopy ?? d.allowPostcopy,
  };
}

const bad = (sentence: string): never => { throw new FerryError('INVALID_INPUT', sentence); };

function intIn(name: string, v: unknown, r: { min: number; max: number }, unit = ''): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < r.min || v > r.max) {
    bad(`${name} must be a whole number from ${r.min} to ${r.max}${unit}, not ${JSON.stringify(v)}.`);
  }
}

function bool(name: string, v: unknown): void {
  if (typeof v !== 'boolean') bad(`${name} must be true or false, not ${JSON.stringify(v)}.`);
}

/** Throws INVALID_INPUT with a sentence naming the first field that is wrong. */
export function checkHostSettings(s: HostSettings): void {
  bool('incomingEnabled', s.incomingEnabled);
  bool('outgoingEnabled', s.outgoingEnabled);
  bool('allowPostcopy', s.allowPostcopy);
  bool('allowInsecureMigration', s.allowInsecureMigration);
  intIn('maxMigrations', s.maxMigrations, LIMIT);
  intIn('maxStorageMigrations', s.maxStorageMigrations, LIMIT);
  intIn('downtimeTargetMs', s.downtimeTargetMs, DOWNTIME, ' ms');
  const bw = s.maxBandwidthBytesPerSec;
  if (bw !== null && (typeof bw !== 'number' || !Number.isSafeInteger(bw) || bw <= 0)) {
    bad(`maxBandwidthBytesPerSec must be a positive whole number of bytes per second, or null for no cap, not ${JSON.stringify(bw)}.`);
  }
  if (!PERFORMANCE_OPTIONS.includes(s.performance)) {
    bad(`performance must be one of ${PERFORMANCE_OPTIONS.join(', ')}, not ${JSON.stringify(s.performance)}.`);
  }
  if (s.allowPostcopy && usesMultifd(s.performance)) {
    bad(`Post-copy cannot be allowed with the ${s.performance} performance option: QEMU cannot run post-copy over multifd channels (7.2 fails the move, 10.0 refuses the two together); choose tcp or turn post-copy off.`);
  }
  checkNetworks(s.networks);
}

function checkNetworks(networks: unknown): void {
  if (!Array.isArray(networks)) bad('networks must be a list of {cidr, priority}.');
  const seen = new Set<string>();
  for (const n of networks as MigrationNetwork[]) {
    const cidr = parseCidr(n.cidr);
    if (!Number.isSafeInteger(n.priority) || n.priority < 0) bad(`The priority of migration network ${n.cidr} must be a whole number of 0 or more, not ${JSON.stringify(n.priority)}.`);
    if (seen.has(cidr)) bad(`The migration network ${cidr} is listed twice.`);
    seen.add(cidr);
  }
}

/**
 * Checks an IPv4 prefix `A.B.C.D/N` and returns it; INVALID_INPUT when it is not one or has host
 * bits set (`10.0.0.5/24` names an address, not a network: the sentence suggests `10.0.0.0/24`).
 */
export function parseCidr(input: unknown): string {
  const m = typeof input === 'string' ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(input) : null;
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const len = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || len > 32) {
    return bad(`The migration network ${JSON.stringify(input)} is not an IPv4 prefix such as 10.1.0.0/24.`);
  }
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - len);
  const network = addr - (addr % size);
  if (network !== addr) {
    const net = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join('.');
    return bad(`The migration network ${String(input)} has host bits set; did you mean ${net}/${len}?`);
  }
  return input as string;
}
