/**
 * VM addresses, the agent's side: a new VM gets the first address of this host's range
 * (ferryd.json `vmNetwork`) that no VM holds anywhere this host can learn of. A VM keeps its
 * address when it moves, so this host's inventory is not enough: it asks every peer (config
 * `peers`, and in a cluster its live members) over peer RPC (GET /v1/peer/addresses) what their
 * VMs hold and what they reserve, reads the cluster's HA VMs from etcd, and keeps in its SQLite
 * file a reservation for each VM that left it by a completed move, so that a peer it cannot ask
 * cannot make it hand out that VM's address again. The rules are pure (ipam.ts).
 */
import type { Logger } from 'pino';
import { FerryError } from '../errors/index.js';
import { PROTOCOL_VERSION, type AddressesReply, type PeerClient } from '../migration/index.js';
import type { Db } from '../util/index.js';
import type { VmSpec } from '../vm/index.js';
import { allocateIp, parseAddresses, reconcile, takenAddresses, type PeerAddresses, type Reservation, type ReservationChange } from './ipam.js';

/** Peers are asked in parallel, each for at most this long. */
export const PEER_ASK_TIMEOUT_MS = 3_000;
/** etcd is asked for the cluster's members and HA VMs for at most this long. */
const CLUSTER_TIMEOUT_MS = 2_000;
/** Everything an allocation asks (etcd, then peers) is waited for at most this long. */
export const ASK_ALL_DEADLINE_MS = 3_500;

/** Another host's agent. */
export interface PeerAgent { name: string; url: string }

/** An address handed to a VM being created; `release` once the VM is in the inventory (it holds the address then) or its creation failed. */
export interface IpLease { ip: string; release(): void }

/** This host's reservations in its SQLite file (table `ip_reservations`, one row per VM uuid). */
export class ReservationStore {
  constructor(private readonly db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS ip_reservations (uuid TEXT PRIMARY KEY, vm TEXT NOT NULL, ip TEXT NOT NULL, host TEXT NOT NULL, since TEXT NOT NULL)');
  }

  list(): Reservation[] {
    return this.db.prepare('SELECT uuid, vm, ip, host, since FROM ip_reservations ORDER BY since, uuid').all() as Reservation[];
  }

  /** Records (or replaces: the VM left again) the reservation of a VM that left. */
  keep(r: Reservation): void {
    this.db.prepare('INSERT OR REPLACE INTO ip_reservations (uuid, vm, ip, host, since) VALUES (?, ?, ?, ?, ?)').run(r.uuid, r.vm, r.ip, r.host, r.since);
  }

  apply(changes: readonly ReservationChange[]): void {
    const end = this.db.prepare('DELETE FROM ip_reservations WHERE uuid = ?');
    const follow = this.db.prepare('UPDATE ip_reservations SET host = ? WHERE uuid = ?');
    this.db.transaction(() => {
      for (const c of changes) if (c.action === 'end') end.run(c.uuid); else follow.run(c.host, c.uuid);
    })();
  }
}

/** What the allocator needs from the agent. */
export interface IpAllocatorDeps {
  host: string;
  range: { rangeStart: string; rangeEnd: string };
  db: Db;
  log: Logger;
  /** This host's VMs; `arriving`: the incoming end of a move under way (it may still fail and leave). */
  local(): { uuid: string; name: string; ip: string; arriving: boolean }[];
  /** The config's peers. */
  peers: readonly PeerAgent[];
  /** In a cluster: its live members and its HA VMs' addresses; null when standalone. May throw (etcd away). */
  cluster(): Promise<{ members: PeerAgent[]; haIps: string[] } | null>;
  /** Asks a peer what addresses it knows of (see {@link askAddresses}); throws or answers null when it cannot tell. */
  ask(peer: PeerAgent): Promise<PeerAddresses | null>;
}

/** Hands out VM addresses that no VM holds anywhere this host can learn of (see the file's comment). */
export class IpAllocator {
  readonly reservations: ReservationStore;
  /** Addresses handed out to VMs not yet in the inventory (two creations at once must not get the same one). */
  private readonly pending = new Set<string>();
  /** Reservations made since this agent started, counted: which ones an allocation's answers predate. */
  private leftCount = 0;
  private readonly leftAt = new Map<string, number>();

  constructor(private readonly d: IpAllocatorDeps) {
    this.reservations = new ReservationStore(d.db);
  }

  /** An address for a new VM; NO_FREE_IP when the range is used up. Peers that cannot be asked are left out (logged). */
  async allocate(): Promise<IpLease> {
    const askedAt = this.leftCount;
    const { answers, haIps } = await this.askAll();
    // From here on synchronous: no other allocation runs between the choice and `pending`.
    const local = this.settle(answers, askedAt);
    const taken = takenAddresses(local.map((v) => v.ip), this.reservations.list(), answers.values(), [...haIps, ...this.pending]);
    const ip = allocateIp(this.d.range.rangeStart, this.d.range.rangeEnd, taken);
    this.pending.add(ip);
    return { ip, release: () => { this.pending.delete(ip); } };
  }

  /** Called on the source of a completed move before it forgets the VM: its address stays reserved here. */
  left(spec: VmSpec, to: string): void {
    this.leftAt.set(spec.uuid, ++this.leftCount);
    this.reservations.keep({ uuid: spec.uuid, vm: spec.name, ip: spec.ip, host: to, since: new Date().toISOString() });
    this.d.log.info({ vm: spec.name, ip: spec.ip, to }, 'address reserved for a VM that moved away');
  }

  /** This host's reservations as they stand: one whose VM is back here ends first (`ferry host show`). */
  kept(): Reservation[] {
    this.settle(new Map());
    return this.reservations.list();
  }

  /** What GET /v1/peer/addresses answers: this host's VMs and its reservations. */
  book(): AddressesReply {
    const local = this.settle(new Map());
    return {
      protocol: PROTOCOL_VERSION, host: this.d.host,
      vms: local.map(({ uuid, name, ip }) => ({ uuid, name, ip })),
      reservations: this.reservations.list(),
    };
  }

  /**
   * Applies what the answers and the inventory do to the reservations; returns the inventory as read.
   * Answers asked for when {@link leftCount} was `askedAt` say nothing of a reservation made since
   * (a move that completed while the peers were asked: its destination may have answered before
   * the VM arrived).
   */
  private settle(answers: ReadonlyMap<string, PeerAddresses>, askedAt?: number): ReturnType<IpAllocatorDeps['local']> {
    const local = this.d.local();
    const here = new Set(local.filter((v) => !v.arriving).map((v) => v.uuid));
    const all = this.reservations.list();
    const mine = askedAt === undefined ? all : all.filter((r) => (this.leftAt.get(r.uuid) ?? 0) <= askedAt || here.has(r.uuid));
    const changes = reconcile(this.d.host, mine, answers, (u) => here.has(u));
    if (changes.length === 0) return local;
    this.reservations.apply(changes);
    for (const c of changes) {
      const r = mine.find((x) => x.uuid === c.uuid);
      if (c.action === 'end') this.d.log.info({ vm: r?.vm, ip: r?.ip, why: c.why }, 'address reservation ended');
      else this.d.log.info({ vm: r?.vm, ip: r?.ip, from: r?.host, to: c.host }, 'address reservation follows the VM');
    }
    return local;
  }

  /** Asks the config's peers and the cluster's members in parallel, and etcd for the HA VMs; what did not answer is left out. */
  private async askAll(): Promise<{ answers: Map<string, PeerAddresses>; haIps: string[] }> {
    const answers = new Map<string, PeerAddresses>();
    const asked = new Set([this.d.host]);
    const ask = async (p: PeerAgent): Promise<void> => {
      if (asked.has(p.name)) return;
      asked.add(p.name);
      const a = await this.d.ask(p).catch((err: unknown) => { this.d.log.warn({ peer: p.name, err }, 'a peer could not be asked for its VMs\' addresses'); return undefined; });
      if (a) answers.set(p.name, a);
      else if (a === null) this.d.log.warn({ peer: p.name }, 'a peer answered its VMs\' addresses in a form this agent cannot read');
    };
    let haIps: string[] = [];
    const all = async (): Promise<void> => {
      const fromConfig = Promise.all(this.d.peers.map(ask));
      const cluster = await within(this.d.cluster(), CLUSTER_TIMEOUT_MS).catch((err: unknown) => {
        this.d.log.warn({ err }, 'the cluster store could not be asked for its members and HA VMs');
        return null;
      });
      haIps = cluster?.haIps ?? [];
      await Promise.all([fromConfig, ...(cluster?.members ?? []).map(ask)]);
    };
    // One deadline for everything (an older peer is asked twice, cluster members only after etcd
    // answered): a creation waits at most this long; whoever has not answered by then is left out.
    await within(all(), ASK_ALL_DEADLINE_MS).catch(() => {
      this.d.log.warn({ ms: ASK_ALL_DEADLINE_MS }, 'not every peer answered in time; allocating with the answers so far');
    });
    // A copy: an answer arriving after the deadline must not change what this allocation decides on.
    return { answers: new Map(answers), haIps: [...haIps] };
  }
}

/**
 * Asks a peer for its VMs' addresses and its reservations (GET /v1/peer/addresses); a peer of a
 * release without the route (NOT_FOUND) is read from its overview instead, with no reservations.
 * Null when the answer cannot be read.
 */
export async function askAddresses(c: Pick<PeerClient, 'addresses' | 'overview'>, host: string): Promise<PeerAddresses | null> {
  let json: unknown;
  try {
    json = await c.addresses();
  } catch (e) {
    if (!(e instanceof FerryError) || e.code !== 'NOT_FOUND') throw e;
    json = await c.overview();
  }
  return parseAddresses(json, host);
}

/** `p`, or CLUSTER_UNAVAILABLE after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new FerryError('CLUSTER_UNAVAILABLE', 'The cluster store did not answer in time.')), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
