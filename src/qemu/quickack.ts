import { ipJson, runTool, tryTool } from './run.js';

/**
 * Quick ACKs towards a migration peer, for as long as a move streams to it.
 *
 * Why: QEMU (10.0, measured here) runs the client side of a migration's TLS handshake, and the NBD
 * client's, in its main thread on a blocking socket, holding the lock the guest's I/O needs. The
 * server's TLS 1.3 flight reaches it in several small writes; the server has Nagle on, so its last
 * write waits for the ACK of the one before, and this host delays that ACK by Linux's 40 ms minimum.
 * In about half of the encrypted moves measured, the guest was cut off for 41–47 ms at the start of the
 * move for nothing else. A host route to the peer with `quickack 1` makes this host ACK at once,
 * and the handshake then took 1–3 ms in every move measured (docs/design/0001, "Network").
 *
 * The route is a /32 in the table the peer's address is routed by now, with the same device,
 * gateway, source address and MTU, so it sends nothing anywhere else or any larger. It is marked with protocol
 * {@link QUICKACK_PROTO} and added only where no host route of someone else's exists; the last
 * move to a peer removes it. A route left by a crashed agent would pin the peer's old path until
 * the next move to it, so the agent removes its leftovers when it starts ({@link sweepQuickAck}).
 */
export const QUICKACK_PROTO = '243';

/** What `ip -d -j route get ADDR` says about the route to ADDR (the fields Ferry reads). */
export interface RouteFacts {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  table?: string;
  /** The route's metrics (`mtu`, `advmss`, …), as `ip -j` names them. */
  metrics?: Record<string, unknown>[];
}

/**
 * The metrics a copy carries over, by their `ip -j` name (the same word on `ip route`'s command
 * line). A route with another one (congctl, features, rtt, …) gets no copy: without its MTU the
 * copy could black-hole the stream on a path that needs a smaller one, and a metric Ferry does not
 * know could matter as much. (`ip -j` does not show a `lock`, so an `mtu lock` is copied unlocked.)
 */
const COPIED_METRICS = new Set(['mtu', 'advmss', 'window', 'hoplimit', 'initcwnd', 'initrwnd']);

/**
 * The `ip route replace` arguments for a quick-ACK host route that follows `route`, or undefined
 * when the peer needs none (a local address: no wire, no delayed ACK) or the route is not one to
 * copy (no device, or not plain unicast).
 */
export function quickAckRouteArgs(address: string, route: RouteFacts): string[] | undefined {
  if (route.type !== undefined && route.type !== 'unicast') return undefined;
  if (!route.dev || route.dev === 'lo') return undefined;
  const metrics: string[] = [];
  for (const [name, value] of Object.entries(Object.assign({}, ...(route.metrics ?? [])) as Record<string, unknown>)) {
    if (!COPIED_METRICS.has(name) || typeof value !== 'number') return undefined;
    metrics.push(name, String(value));
  }
  return ['route', 'replace', `${address}/32`, ...(route.gateway ? ['via', route.gateway] : []), 'dev', route.dev,
    ...(route.prefsrc ? ['src', route.prefsrc] : []), ...metrics, 'table', route.table ?? 'main', 'proto', QUICKACK_PROTO, 'quickack', '1'];
}


interface Held { count: number; table: string | undefined; ready: Promise<void> }
const held = new Map<string, Held>();

/**
 * Holds a quick-ACK route to `address` (IPv4) until the returned release is called. Never throws:
 * without the route a move still works, only its start may stall the guest as described above;
 * `warn` hears why.
 */
export async function holdQuickAck(address: string, warn: (msg: string, err?: unknown) => void): Promise<() => Promise<void>> {
  let entry = held.get(address);
  if (entry) entry.count += 1;
  else {
    entry = { count: 1, table: undefined, ready: Promise.resolve() };
    held.set(address, entry);
    entry.ready = add(address, entry, warn);
  }
  await entry.ready;
  return once(() => release(address));
}

async function add(address: string, entry: Held, warn: (msg: string, err?: unknown) => void): Promise<void> {
  try {
    const [route] = (await ipJson(['-d', 'route', 'get', address])) as RouteFacts[];
    const args = route ? quickAckRouteArgs(address, route) : undefined;
    if (args) {
      const table = route?.table ?? 'main';
      const existing = (await ipJson(['-d', 'route', 'show', `${address}/32`, 'table', table])) as { protocol?: string }[];
      // A host route someone else made stays as it is.
      if (existing.every((r) => r.protocol === QUICKACK_PROTO)) {
        await runTool('ip', args, 'MIGRATION_FAILED');
        entry.table = table;
      }
    }
  } catch (e) {
    warn(`no quick-ACK route to ${address}; the TLS handshake at the start of the move may stall the guest for up to 40 ms`, e);
  }
}

async function release(address: string): Promise<void> {
  const entry = held.get(address);
  if (!entry) return;
  await entry.ready;
  entry.count -= 1;
  if (entry.count > 0) return;
  held.delete(address);
  if (entry.table !== undefined) await delRoute(address, entry.table);
}

/** Deletes this module's host route to `address` in `table` (only one of protocol QUICKACK_PROTO); false if there was none. */
const delRoute = (address: string, table: string): Promise<boolean> => tryTool('ip', ['route', 'del', `${address}/32`, 'table', table, 'proto', QUICKACK_PROTO]);

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

/**
 * Removes quick-ACK routes a crashed agent left (this process holds none yet): every /32 of
 * protocol {@link QUICKACK_PROTO} with `quickack` set, in any table. Returns how many; never throws.
 */
export async function sweepQuickAck(): Promise<number> {
  try {
    const routes = (await ipJson(['-d', 'route', 'show', 'table', 'all', 'proto', QUICKACK_PROTO])) as { dst?: string; table?: string; metrics?: Record<string, unknown>[] }[];
    let n = 0;
    for (const r of routes) {
      const quick = (r.metrics ?? []).some((m) => 'quickack' in m);
      if (!r.dst || r.dst.includes('/') || !quick || held.has(r.dst)) continue;
      if (await delRoute(r.dst, r.table ?? 'main')) n += 1;
    }
    return n;
  } catch {
    return 0;
  }
}
