/**
 * VM addresses, the pure part: which address a new VM gets, what other hosts' answers do to this
 * host's reservations, and how a peer's answer is read. The agent's side (asking peers, the
 * reservations in SQLite) is ip-allocator.ts; docs/install.md, "VM addresses", tells the rules.
 */
import { isIPv4 } from 'node:net';
import { FerryError } from '../errors/index.js';

const toInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The first address of [start, end] not in `used`; NO_FREE_IP when the range is used up. */
export function allocateIp(rangeStart: string, rangeEnd: string, used: Iterable<string>): string {
  const taken = new Set(used);
  for (let n = toInt(rangeStart); n <= toInt(rangeEnd); n++) {
    const ip = toIp(n);
    if (!taken.has(ip)) return ip;
  }
  throw new FerryError('NO_FREE_IP',
    `Every address from ${rangeStart} to ${rangeEnd} is held by a VM of this host or of a peer, or reserved for a VM that moved away.`);
}

/** A VM that left this host by a completed move: its address stays out of use until it is known gone or back. */
export interface Reservation {
  uuid: string;
  vm: string;
  ip: string;
  /** The host it went to, or the one it moved on to since, as far as this host knows. */
  host: string;
  /** When it left (ISO 8601). */
  since: string;
}

/**
 * What a peer said of addresses: its VMs', and the reservations it keeps for VMs that left it
 * (null: a peer of an older release, which keeps none and cannot say where a VM went).
 */
export interface PeerAddresses {
  host: string;
  vms: { uuid: string; ip: string }[];
  reservations: { uuid: string; ip: string; host: string }[] | null;
}

/** What the peers' answers do to one reservation: it ends, or it follows the VM to the host it moved on to. */
export type ReservationChange = { uuid: string; action: 'end'; why: string } | { uuid: string; action: 'follow'; host: string };

/**
 * The changes to this host's reservations `mine` that `answers` (by peer name; a peer that could
 * not be asked is absent) and the local inventory (`here`: the VM runs here again, not as the
 * incoming end of a move) call for. A reservation ends when its VM is here again, or when its last
 * known host answered without it among its VMs or its reservations (the VM was deleted there); it
 * follows the VM when that host reserves it for another. Anything else keeps it.
 */
export function reconcile(self: string, mine: readonly Reservation[], answers: ReadonlyMap<string, PeerAddresses>, here: (uuid: string) => boolean): ReservationChange[] {
  const out: ReservationChange[] = [];
  for (const r of mine) {
    if (here(r.uuid)) { out.push({ uuid: r.uuid, action: 'end', why: `it runs on ${self} again` }); continue; }
    const a = answers.get(r.host);
    if (!a || a.vms.some((v) => v.uuid === r.uuid) || a.reservations === null) continue;
    const onward = a.reservations.find((x) => x.uuid === r.uuid);
    if (!onward) out.push({ uuid: r.uuid, action: 'end', why: `${r.host} no longer has it` });
    // Sent on to this host, which does not have it: it was deleted here since.
    else if (onward.host === self) out.push({ uuid: r.uuid, action: 'end', why: `${r.host} sent it here and it is gone` });
    else if (onward.host !== r.host) out.push({ uuid: r.uuid, action: 'follow', host: onward.host });
  }
  return out;
}

/** The addresses a new VM must not get: this host's VMs', its reservations', every answer's VMs' and reservations', and `more`. */
export function takenAddresses(local: Iterable<string>, mine: readonly Reservation[], answers: Iterable<PeerAddresses>, more: Iterable<string> = []): Set<string> {
  const taken = new Set([...local, ...more, ...mine.map((r) => r.ip)]);
  for (const a of answers) for (const x of [...a.vms, ...(a.reservations ?? [])]) taken.add(x.ip);
  return taken;
}

const isIpv4 = (v: unknown): v is string => typeof v === 'string' && isIPv4(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;
const isList = (v: unknown): v is Record<string, unknown>[] => Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null);

/**
 * Reads peer `host`'s answer to GET /v1/peer/addresses, or to GET /v1/peer/overview from a peer
 * that lacks the route (no `reservations`: null). Null when the answer is not what it should be:
 * the peer then counts as not asked, and its answer changes no reservation.
 */
export function parseAddresses(json: unknown, host: string): PeerAddresses | null {
  if (typeof json !== 'object' || json === null) return null;
  const { vms, reservations } = json as { vms?: unknown; reservations?: unknown };
  if (!isList(vms) || !vms.every((v) => isText(v.uuid) && isIpv4(v.ip))) return null;
  if (reservations !== undefined && !(isList(reservations) && reservations.every((r) => isText(r.uuid) && isIpv4(r.ip) && isText(r.host)))) return null;
  return {
    host,
    vms: vms.map((v) => ({ uuid: v.uuid as string, ip: v.ip as string })),
    reservations: reservations === undefined ? null : (reservations as Record<string, string>[]).map((r) => ({ uuid: r.uuid ?? '', ip: r.ip ?? '', host: r.host ?? '' })),
  };
}
