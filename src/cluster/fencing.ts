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

/** The fraction of the lease TTL after the last successful renewal at which a host fences. */
export const FENCE_AT = 0.6;

/** What a peer agent said about its own lease (undefined: it did not answer). */
export interface PeerLease { host: string; renewing: boolean }

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
  const renewing = peers.filter((p) => p?.renewing).map((p) => p?.host);
  if (renewing.length > 0) return { action: 'fence', reason: `no lease renewal for ${Math.round(sinceRenewMs / 1000)} s while ${renewing.join(', ')} renew(s)` };
  return { action: 'hold', reason: 'no host can renew its lease: etcd has lost quorum; VMs keep running and nothing is placed' };
}
