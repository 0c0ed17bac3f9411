import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkStuckMs, fenceDecision, holdGraceMs, MIN_FENCE_MARGIN_SEC, renewIntervalMs, RENEW_SLACK_MS, renewsWithoutUs, watchdogDeadline, type PeerLease } from './fencing.js';

describe('fenceDecision', () => {
  const ttl = 10_000;
  const cases: { name: string; since: number; peers?: (PeerLease | undefined)[]; want: string }[] = [
    { name: 'renewing recently: nothing to do', since: 2_000, want: 'none' },
    { name: 'past 0.6 TTL: ask the peers first', since: 6_500, want: 'ask-peers' },
    { name: 'cut off: no peer answers', since: 6_500, peers: [undefined], want: 'fence' },
    { name: 'alone without etcd while others renew', since: 7_000, peers: [{ host: 'h2', renewing: true }], want: 'fence' },
    { name: 'one peer silent, one not renewing', since: 7_000, peers: [undefined, { host: 'h3', renewing: false }], want: 'fence' },
    { name: 'etcd lost quorum for everyone: hold', since: 9_000, peers: [{ host: 'h2', renewing: false }, { host: 'h3', renewing: false }], want: 'hold' },
    // Quorum lost between this host's last renewal and the next: a peer that renewed just before
    // still looks recent (2.5 s ago) but renewed only 3.5 s after this host, within one interval (3.33 s) + slack.
    { name: 'quorum lost: a peer that renewed later, but before the renewal this host missed, is no witness of a cut-off: hold', since: 6_000,
      peers: [{ host: 'h2', renewing: true, sinceRenewMs: 2_500 }], want: 'hold' },
    { name: 'cut off: the peer renewed after the renewal this host missed: fence', since: 6_000, peers: [{ host: 'h2', renewing: true, sinceRenewMs: 1_000 }], want: 'fence' },
    { name: 'an older peer that sends no age: its word, as before', since: 6_000, peers: [{ host: 'h2', renewing: true }], want: 'fence' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(fenceDecision(c.since, ttl, c.peers).action, c.want));
});

describe('watchdogDeadline', () => {
  const base = { now: 100_000, ttlMs: 10_000, fenceMarginSec: 5 };
  const cases: { name: string; lastRenewOk: number; checkRunningMs: number | null; want: number }[] = [
    { name: 'renewing: 0.75 TTL after the last renewal', lastRenewOk: 99_000, checkRunningMs: null, want: 106_500 },
    { name: 'past it, alive between checks: the grace (3 s) after now', lastRenewOk: 80_000, checkRunningMs: null, want: 103_000 },
    { name: 'a check running 1.5 s (a hold waits on etcd): still fed', lastRenewOk: 80_000, checkRunningMs: 1_500, want: 103_000 },
    { name: 'a check running longer than 0.2 TTL: no more grace', lastRenewOk: 80_000, checkRunningMs: 2_001, want: 87_500 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(watchdogDeadline({ ...base, ...c }), c.want));
  it('a hold fed just after reading the member key (up to 1.5 s) runs out before the survivors wait the margin past it', () => {
    for (const m of [MIN_FENCE_MARGIN_SEC, 5, 10, 300]) assert.ok(1_500 + holdGraceMs(m) < m * 1000, `margin ${m} s`);
  });
  it('a hung check lets the VMs go before the survivors may start them, for any TTL and margin allowed', () => {
    for (const ttlSec of [2, 5, 10, 30, 300]) {
      for (const m of [MIN_FENCE_MARGIN_SEC, 5, 60]) {
        const ttlMs = ttlSec * 1000;
        // The check began at FENCE_AT after the last renewal (0) and hangs: the last feed that gives a grace.
        const lastGraceFeed = 0.6 * ttlMs + checkStuckMs(ttlMs);
        const deadline = watchdogDeadline({ now: lastGraceFeed, lastRenewOk: 0, ttlMs, fenceMarginSec: m, checkRunningMs: checkStuckMs(ttlMs) });
        assert.ok(deadline < ttlMs + m * 1000, `TTL ${ttlSec} s, margin ${m} s: ${deadline} ms`);
      }
    }
  });
});

describe('renewsWithoutUs', () => {
  it('a peer that still renews passes the mark within one interval of this host missing its renewal, whatever their phases', () => {
    const ttl = 10_000;
    const interval = renewIntervalMs(ttl);
    // This host last renewed at 0 and is cut off; the peer renews every interval from a phase offset.
    for (let phase = 0; phase < interval; phase += 250) {
      let fencedAt: number | undefined;
      for (let now = 6_000; now <= 10_000 && fencedAt === undefined; now += 500) {
        const lastPeer = phase + Math.floor((now - phase) / interval) * interval;
        if (renewsWithoutUs({ host: 'h2', renewing: true, sinceRenewMs: now - lastPeer }, now, ttl)) fencedAt = now;
      }
      assert.ok(fencedAt !== undefined && fencedAt <= 6_000 + interval + RENEW_SLACK_MS + 500, `phase ${phase}: fenced at ${fencedAt}`);
    }
  });
  it('a peer that lost etcd when this host did never counts, however late its last renewal', () => {
    const ttl = 10_000;
    const interval = renewIntervalMs(ttl);
    // Quorum lost at q, in (0, interval]: the peer's last renewal is before q.
    for (let q = 100; q <= interval; q += 250) {
      for (let now = 6_000; now <= 60_000; now += 500) {
        assert.equal(renewsWithoutUs({ host: 'h2', renewing: now - q < 5_000, sinceRenewMs: now - (q - 1) }, now, ttl), false);
      }
    }
  });
});
