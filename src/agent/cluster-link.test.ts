// ClusterLink without etcd: a member that cannot renew its lease refuses a user's start of an HA VM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { ClusterHost } from '../cluster/index.js';
import { FerryError } from '../errors/index.js';
import { freePort, openDb } from '../util/index.js';
import type { VmSpec } from '../vm/index.js';
import { ClusterLink } from './cluster-link.js';

test('a member that has not renewed its lease for half a TTL refuses a user\'s start of an HA VM with CLUSTER_UNAVAILABLE (it would fence it at once); a plain VM starts', async () => {
  const db = openDb(':memory:');
  const host = {
    name: 'h1', url: 'https://h1', log: pino({ level: 'silent' }), localHa: () => [],
    facts: () => ({ memoryMiB: 1024, freeMemoryMiB: 512, cpus: 2, maintenance: false }),
  } as unknown as ClusterHost;
  const link = new ClusterLink(db, host, pino({ level: 'silent' }));
  // A member of a cluster whose etcd nobody answers (its port is free): it never renews.
  const cfg = { name: 'c', endpoints: [`http://127.0.0.1:${await freePort('127.0.0.1')}`], leaseTtlSec: 2, fenceMarginSec: 4, maxMigrations: 2, createdAt: '' };
  db.prepare('INSERT INTO cluster_membership (id, config) VALUES (1, ?)').run(JSON.stringify(cfg));
  link.resume();
  try {
    await new Promise((r) => setTimeout(r, 1_300));
    const spec = (ha: boolean): VmSpec => ({ name: 'v', uuid: 'u', memoryMiB: 128, cpus: 1, cpuModel: 'qemu64', machine: 'q35', mac: '', ip: '', prefixLength: 16, disks: [], ha });
    for (const register of [false, true]) {
      await assert.rejects(link.claimForStart(spec(true), register), (e: unknown) => e instanceof FerryError && e.code === 'CLUSTER_UNAVAILABLE'
        && /^Host h1 has not renewed its cluster lease for \d+ s .*so it starts no HA VM now; start it again once h1 renews\.$/.test(e.message));
    }
    await link.claimForStart(spec(false));
  } finally {
    await link.close();
  }
});
