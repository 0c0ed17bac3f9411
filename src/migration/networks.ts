/**
 * Which network a move's data (memory stream, NBD disk copies) crosses: Hyper-V's "migration
 * networks". The destination listens on its address in the best network both hosts have an
 * address in, by the destination's settings (lowest priority number first); with no networks
 * set, on its agent address. The agent's own API and the hand-over tunnel stay where they are.
 */
import { networkInterfaces } from 'node:os';
import { FerryError } from '../errors/index.js';
import type { MigrationNetwork } from './host-settings.js';

const toNumber = (ip: string): number | null => {
  const o = ip.split('.').map(Number);
  return o.length === 4 && o.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? o.reduce((a, x) => a * 256 + x, 0) : null;
};

/** Is IPv4 address `ip` inside `cidr` (`A.B.C.D/N`)? */
export function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const a = toNumber(ip);
  const n = net === undefined ? null : toNumber(net);
  const len = Number(bits);
  if (a === null || n === null || !Number.isInteger(len) || len < 0 || len > 32) return false;
  const size = 2 ** (32 - len);
  return Math.floor(a / size) === Math.floor(n / size);
}

/** This host's IPv4 addresses, loopback excluded. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((l) => l ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address);
}

/**
 * The address the destination listens on for a move: its own address in the first network (by
 * priority) where the source has one too; `fallback` (the agent's address) when no networks are
 * set. NO_MIGRATION_NETWORK when networks are set and the hosts share none of them.
 */
export function chooseMigrationAddress(networks: readonly MigrationNetwork[], local: readonly string[], peer: readonly string[], fallback: string): string {
  if (networks.length === 0) return fallback;
  for (const n of [...networks].sort((a, b) => a.priority - b.priority)) {
    const mine = local.find((ip) => inCidr(ip, n.cidr));
    if (mine !== undefined && peer.some((ip) => inCidr(ip, n.cidr))) return mine;
  }
  throw new FerryError('NO_MIGRATION_NETWORK',
    `This host and the source share none of the migration networks ${networks.map((n) => n.cidr).join(', ')}.`);
}
