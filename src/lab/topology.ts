/**
 * Builds the lab's network from its plan, creating only what is missing, so that `lab up`
 * is idempotent and adopts (or repairs) a lab left over from a stopped session.
 *
 * ```
 *  [NAME-client] eth0 ─veth─ client ┐
 *                                   ├ br0 [NAME-sw]
 *  [NAME-hK] br0 ⊃ eth0 ─veth─ hK ──┘
 *            mig0 ─veth─ hK-m ───── br1 [NAME-sw]   (the migration network, 10.78.0.0/16)
 * ```
 *
 * Veth pairs are created with both ends directly in their namespaces, so their names never
 * exist in the root namespace and never collide between labs. The root namespace gets no
 * address on the lab network: nothing there can send traffic into the lab by accident.
 */
import { FerryError } from '../errors/index.js';
import { addNetns, delNetns, ip, killNamespace, linkState, listNetns, tc } from './netns.js';
import {
  BRIDGE, CLIENT_PORT, LAB_PREFIX_LENGTH, MIGRATION_BRIDGE, MIGRATION_UPLINK, UPLINK, type HostPlan, type LabPlan,
} from './plan.js';
import { tbfArgs, type Rate } from './rate.js';

/** Creates namespace `ns` unless it exists, and brings its loopback up. */
async function ensureNamespace(ns: string, existing: Set<string>): Promise<boolean> {
  const made = !existing.has(ns);
  if (made) await addNetns(ns);
  await ip(['link', 'set', 'lo', 'up'], ns);
  return made;
}

/**
 * Creates bridge `br` in `ns` unless it exists, and brings it up. With `mac`, the bridge gets a
 * fixed address: a Linux bridge otherwise takes the lowest MAC of its ports, so each new VM tap or
 * hand-over tunnel could change the host address's MAC and leave peers' ARP caches pointing at a
 * MAC that no longer answers (a migration stream then stalls until ARP retries).
 */
async function ensureBridge(ns: string, br: string, mac?: string): Promise<void> {
  if (!(await linkState(ns, br))) await ip(['link', 'add', br, 'type', 'bridge'], ns);
  if (mac) await ip(['link', 'set', br, 'address', mac], ns);
  await ip(['link', 'set', br, 'up'], ns);
}

/** The fixed, locally administered MAC of a host's bridge, from the host's address. */
export const hostBridgeMac = (address: string): string =>
  `02:fe:${address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;

/**
 * Makes sure a veth pair joins `a` in `nsA` to `b` in `nsB`. A lone end (its peer's
 * namespace was deleted and rebuilt) is removed and the pair made again.
 */
async function ensureVeth(nsA: string, a: string, nsB: string, b: string): Promise<void> {
  const [sa, sb] = await Promise.all([linkState(nsA, a), linkState(nsB, b)]);
  if (sa && sb) return;
  if (sa) await ip(['link', 'del', a], nsA);
  if (sb) await ip(['link', 'del', b], nsB);
  await ip(['link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', b, 'netns', nsB]);
}

/** Enslaves `dev` to `br` in `ns` unless it already is, and brings it up. */
async function ensurePort(ns: string, dev: string, br: string): Promise<void> {
  const s = await linkState(ns, dev);
  if (s?.master !== br) await ip(['link', 'set', dev, 'master', br], ns);
  await ip(['link', 'set', dev, 'up'], ns);
}

/** Builds the switch and the client: namespaces, the switch bridge and the client's link. */
async function ensureCore(p: LabPlan, existing: Set<string>): Promise<string[]> {
  const made: string[] = [];
  for (const ns of [p.switchNs, p.client.namespace]) {
    if (await ensureNamespace(ns, existing)) made.push(ns);
  }
  await ensureBridge(p.switchNs, BRIDGE);
  await ensureBridge(p.switchNs, MIGRATION_BRIDGE);
  await ensureVeth(p.switchNs, CLIENT_PORT, p.client.namespace, UPLINK);
  await ensurePort(p.switchNs, CLIENT_PORT, BRIDGE);
  await ip(['addr', 'replace', `${p.client.address}/${LAB_PREFIX_LENGTH}`, 'dev', UPLINK], p.client.namespace);
  await ip(['link', 'set', UPLINK, 'up'], p.client.namespace);
  return made;
}

/** Builds one host: its namespace, its br0 holding its uplink, and the host address on br0. */
async function ensureHost(p: LabPlan, h: HostPlan, existing: Set<string>): Promise<boolean> {
  const made = await ensureNamespace(h.namespace, existing);
  await ensureVeth(p.switchNs, h.switchPort, h.namespace, UPLINK);
  await ensurePort(p.switchNs, h.switchPort, BRIDGE);
  await ensureBridge(h.namespace, BRIDGE, hostBridgeMac(h.address));
  await ensurePort(h.namespace, UPLINK, BRIDGE);
  await ip(['addr', 'replace', `${h.address}/${LAB_PREFIX_LENGTH}`, 'dev', BRIDGE], h.namespace);
  await ensureVeth(p.switchNs, h.migrationPort, h.namespace, MIGRATION_UPLINK);
  await ensurePort(p.switchNs, h.migrationPort, MIGRATION_BRIDGE);
  await ip(['addr', 'replace', `${h.migrationAddress}/${LAB_PREFIX_LENGTH}`, 'dev', MIGRATION_UPLINK], h.namespace);
  await ip(['link', 'set', MIGRATION_UPLINK, 'up'], h.namespace);
  return made;
}

/**
 * Creates whatever of the plan's network is missing and brings every link up (so `up` also
 * heals an isolated host). Resolves with the namespaces it created.
 */
export async function ensureTopology(p: LabPlan): Promise<string[]> {
  const existing = new Set(await listNetns());
  const made = await ensureCore(p, existing);
  for (const h of p.hosts) {
    if (await ensureHost(p, h, existing)) made.push(h.namespace);
  }
  return made;
}

/** Both ends of host `h`'s links (the lab network and the migration network): switch-side ports and host uplinks. */
const linkEnds = (p: LabPlan, h: HostPlan): [string, string][] =>
  [[p.switchNs, h.switchPort], [h.namespace, UPLINK], [p.switchNs, h.migrationPort], [h.namespace, MIGRATION_UPLINK]];

/**
 * Shapes both directions of host `h`'s link to `rate` (a tbf qdisc on each end shapes what
 * leaves that end), or removes the shaping when `rate` is null.
 */
export async function shapeHostLink(p: LabPlan, h: HostPlan, rate: Rate | null): Promise<void> {
  for (const [ns, dev] of linkEnds(p, h)) {
    if (rate) {
      await tc(['qdisc', 'replace', 'dev', dev, 'root', ...tbfArgs(rate)], ns);
      continue;
    }
    const { stdout } = await tc(['-j', 'qdisc', 'show', 'dev', dev, 'root'], ns);
    const shaped = (JSON.parse(stdout.trim() || '[]') as { kind: string; root?: boolean }[])
      .some((q) => q.root === true && q.kind === 'tbf');
    if (shaped) await tc(['qdisc', 'del', 'dev', dev, 'root'], ns);
  }
}

/** Sets host `h`'s link down (isolate) or up (heal) at both ends, like pulling its cable. */
export async function setHostLink(p: LabPlan, h: HostPlan, up: boolean): Promise<void> {
  for (const [ns, dev] of linkEnds(p, h)) {
    if (!(await linkState(ns, dev))) {
      throw new FerryError('LAB_FAILED', `The link ${dev} of host ${h.name} is missing in ${ns}: run \`ferry lab up\`.`);
    }
    await ip(['link', 'set', dev, up ? 'up' : 'down'], ns);
  }
}

/** 'up' or 'down' when both ends of host `h`'s link exist, 'missing' otherwise. */
export async function hostLinkState(p: LabPlan, h: HostPlan): Promise<'up' | 'down' | 'missing'> {
  const ends = await Promise.all(linkEnds(p, h).map(([ns, dev]) => linkState(ns, dev)));
  if (ends.some((e) => e === undefined)) return 'missing';
  return ends.every((e) => e?.up) ? 'up' : 'down';
}

/**
 * Kills every process in each namespace, then deletes the namespaces (a namespace whose
 * processes still run would outlive its name). Resolves with the namespaces it deleted.
 */
export async function removeNamespaces(names: string[], graceMs: number): Promise<string[]> {
  const existing = new Set(await listNetns());
  const present = names.filter((n) => existing.has(n));
  await Promise.all(present.map((ns) => killNamespace(ns, graceMs)));
  for (const ns of present) await delNetns(ns);
  return present;
}
