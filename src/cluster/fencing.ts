/**
 * Self-fencing, decided apart from done. A host that cannot renew its lease must stop its HA VMs
 * before the survivors may restart them: survivors wait for the lease to expire (TTL after the
 * last renewal etcd saw) plus a fence margin, and the host fences at `FENCE_AT` of the TTL after
 * its last renewal that succeeded, well before.
 *
 * One exception keeps VMs running when etcd as a whole has lost quorum: then no lease can expire
 * (etcd's leader expires leases, and a new leader refreshes them all) and no survivor can restart
 * anything, so fencing would only turn an etcd outage into a VM outage. A host tells that case
 * from being cut off by asking every peer agent directly: only when each one answers and each
 * one also cannot renew does it hold. A peer that does not answer, or one that renews, means the
 * others may take over: fence.
 */

import type { ClusterHost } from './host.js';
import { fenceTargets } from './moving.js';

/** The fraction of the lease TTL after the last successful renewal at which a host fences. */
export const FENCE_AT = 0.6;

/**
 * The fraction of the TTL after the last renewal at which the watchdog outside the agent
 * (src/agent/watchdog.ts) powers off the HA VMs if the agent has not fenced them or fed it since:
 * after the agent's own fence, before the lease can expire.
 */
export const WATCHDOG_AT = 0.75;

/** The shortest fence margin a cluster may have (grace + a member-key read must fit in it). */
export const MIN_FENCE_MARGIN_SEC = 4;

/**
 * How long past now a living agent feeds the watchdog. With the {@link FENCE_ASK_MS} an agent may wait for etcd to
 * say its member key is still there, under the fence margin the survivors wait after the key is
 * gone (the margin is at least {@link MIN_FENCE_MARGIN_SEC} s: routes/cluster.ts).
 */
export function holdGraceMs(fenceMarginSec: number): number {
  return Math.min(3_000, fenceMarginSec * 1000 * 0.6);
}

/**
 * How long a fence check waits for etcd's answer (its member key and records), and for each peer's
 * word on its lease, asked at the same time: a check thus ends within this (plus the fence itself).
 */
export const FENCE_ASK_MS = 1_500;

/**
 * How long one fence check may run before the agent stops feeding the watchdog (a check asks etcd
 * and the peers for at most {@link FENCE_ASK_MS}, at the same time: at TTL 10 s that leaves 0.5 s
 * to spare).
 */
export function checkStuckMs(ttlMs: number): number {
  return Math.min(5_000, ttlMs * 0.2);
}

/**
 * When the watchdog outside the agent powers the HA VMs off should the agent stop feeding it now:
 * WATCHDOG_AT of the TTL after the last renewal; while the agent lives and its fence check (if one
 * runs) is younger than {@link checkStuckMs}, no earlier than the grace after now.
 *
 * Why that is before the survivors may start the VMs (they wait until the lease has expired, TTL
 * after the last renewal etcd saw, plus the fence margin):
 * - the first term: 0.75 TTL < TTL;
 * - a living agent past FENCE_AT runs fence checks back to back; each ends in a fence of its own,
 *   or in a hold (etcd lost quorum for all: no lease can expire; or its member key still in etcd:
 *   read within FENCE_ASK_MS, so the survivors wait a margin past that read; or, for at most twice the
 *   margin, VMs etcd answered it has no record of, which nobody can place, since a host's record of
 *   a VM it runs lands only under its live lease); a check that hangs stops the feed by
 *   0.6 TTL + 0.2 TTL + grace, and grace < margin.
 */
export function watchdogDeadline(p: { now: number; lastRenewOk: number; ttlMs: number; fenceMarginSec: number; checkRunningMs: number | null }): number {
  const live = p.checkRunningMs === null || p.checkRunningMs <= checkStuckMs(p.ttlMs);
  return Math.max(p.lastRenewOk + p.ttlMs * WATCHDOG_AT, live ? p.now + holdGraceMs(p.fenceMarginSec) : 0);
}

/**
 * What a peer agent said about its own lease (undefined: it did not answer). `sinceRenewMs`: how
 * long before its answer its last renewal succeeded (agents before 2026-11-24 send only `renewing`).
 */
export interface PeerLease { host: string; renewing: boolean; sinceRenewMs?: number }

/** How often a lease is renewed: etcd3's keepalive fires every third of the TTL. */
export const renewIntervalMs = (ttlMs: number): number => ttlMs / 3;

/** Slack on top of the renew interval when telling a peer that renews now from one that stopped when this host did. */
export const RENEW_SLACK_MS = 500;

/**
 * Does the peer renew while this host cannot? Its last renewal must come later than the renewal
 * this host missed (its own last one plus an interval, plus slack). A peer that stopped renewing
 * when this host did (etcd lost quorum) renewed at most one interval after this host, so it does
 * not count, however recent that renewal looks; a peer that still renews passes the mark within an
 * interval, and the check, run every half second, fences then. Times are compared as ages
 * measured on each host (no clock is compared with another's).
 */
export function renewsWithoutUs(peer: PeerLease, sinceRenewMs: number, ttlMs: number): boolean {
  if (peer.sinceRenewMs === undefined) return peer.renewing;
  return peer.renewing && sinceRenewMs - peer.sinceRenewMs > renewIntervalMs(ttlMs) + RENEW_SLACK_MS;
}

export type FenceDecision =
  | { action: 'none' }
  /** Past the deadline; peers must be asked before anything else is decided. */
  | { action: 'ask-peers' }
  | { action: 'hold'; reason: string }
  | { action: 'fence'; reason: string };

/**
 * @param sinceRenewMs time since the last renewal that succeeded
 * @param peers undefined until asked; then one entry per peer agent, `undefined` when it did not answer
 */
export function fenceDecision(sinceRenewMs: number, ttlMs: number, peers?: readonly (PeerLease | undefined)[]): FenceDecision {
  if (sinceRenewMs < ttlMs * FENCE_AT) return { action: 'none' };
  if (peers === undefined) return { action: 'ask-peers' };
  const silent = peers.filter((p) => p === undefined).length;
  if (silent > 0) return { action: 'fence', reason: `no lease renewal for ${Math.round(sinceRenewMs / 1000)} s and ${silent} peer(s) did not answer` };
  const renewing = peers.filter((p) => p !== undefined && renewsWithoutUs(p, sinceRenewMs, ttlMs)).map((p) => p?.host);
  if (renewing.length > 0) return { action: 'fence', reason: `no lease renewal for ${Math.round(sinceRenewMs / 1000)} s while ${renewing.join(', ')} renew(s)` };
  return { action: 'hold', reason: 'no host can renew its lease: etcd has lost quorum; VMs keep running and nothing is placed' };
}

/**
 * Tells the watchdog outside the agent (src/agent/watchdog.ts) when to power off the HA VMs with a
 * QEMU here (moving.ts) should this agent stop ({@link watchdogDeadline} says when and why that is
 * early enough). The node feeds it every half second, also while a fence check runs (started at
 * `checkStartedAt`), until it is late.
 */
export function feedWatchdog(host: ClusterHost, s: { now: number; lastRenewOk: number; ttlMs: number; fenceMarginSec: number; checkStartedAt: number | null }): void {
  if (!host.armWatchdog) return;
  const deadline = watchdogDeadline({ ...s, checkRunningMs: s.checkStartedAt === null ? null : s.now - s.checkStartedAt });
  try {
    host.armWatchdog(deadline, fenceTargets(host.localHa()), s.lastRenewOk);
  } catch (e) {
    host.log.error({ err: e }, 'could not feed the fencing watchdog');
  }
}
