import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fenceDecision } from './fencing.js';

describe('fenceDecision', () => {
  const ttl = 10_000;
  const cases: { name: string; since: number; peers?: ({ host: string; renewing: boolean } | undefined)[]; want: string }[] = [
    { name: 'renewing recently: nothing to do', since: 2_000, want: 'none' },
    { name: 'past 0.6 TTL: ask the peers first', since: 6_500, want: 'ask-peers' },
    { name: 'cut off: no peer answers', since: 6_500, peers: [undefined], want: 'fence' },
    { name: 'alone without etcd while others renew', since: 7_000, peers: [{ host: 'h2', renewing: true }], want: 'fence' },
    { name: 'one peer silent, one not renewing', since: 7_000, peers: [undefined, { host: 'h3', renewing: false }], want: 'fence' },
    { name: 'etcd lost quorum for everyone: hold', since: 9_000, peers: [{ host: 'h2', renewing: false }, { host: 'h3', renewing: false }], want: 'hold' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(fenceDecision(c.since, ttl, c.peers).action, c.want));
});
