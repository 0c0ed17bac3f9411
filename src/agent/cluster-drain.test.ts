import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { ClusterStore, MemberRecord } from '../cluster/index.js';
import type { FerryError } from '../errors/index.js';
import type { StatusReply } from '../migration/index.js';
import { ClusterDrains, type ClusterDrainParts, type HostPort } from './cluster-drain.js';
import type { DrainRecord, HostMaintenance, PeerHostSummary } from './maintenance.js';

/** etcd as the drains use it: drain records with revisions, the manager key, the members. */
class FakeEtcd {
  private current = 'h1';
  /** Each assignment is an election: a new term, even for the same host. */
  private term = 1;
  get manager(): string { return this.current; }
  set manager(v: string) { this.current = v; this.term++; }
  members = ['h1', 'h2', 'h3'];
  private rev = 1;
  readonly drains = new Map<string, { value: string; rev: string }>();

  record(host: string): DrainRecord | undefined {
    const v = this.drains.get(host);
    return v ? JSON.parse(v.value) as DrainRecord : undefined;
  }

  store(): ClusterStore {
    const fake = {
      drains: async () => [...this.drains].map(([host, v]) => ({ host, ...v })),
      putDrain: async (host: string, value: string, by: { rev: string } | { manager: string; term: string }) => {
        const ok = 'rev' in by ? (this.drains.get(host)?.rev ?? '0') === by.rev : this.manager === by.manager && String(this.term) === by.term;
        if (ok) this.drains.set(host, { value, rev: String(++this.rev) });
        return ok;
      },
      members: async () => this.members.map((name): MemberRecord => ({ name, url: '', memoryMiB: 4096, freeMemoryMiB: 4096, cpus: 4, maintenance: false, updatedAt: '' })),
      manager: async () => this.manager,
      managerTerm: async () => ({ name: this.manager, term: String(this.term) }),
    };
    return fake as unknown as ClusterStore;
  }
}

/** h2 (drained) runs `vms`; its moves are jobs the test ends; h1 has less room than h3. */
class World {
  readonly here = new Set<string>();
  readonly jobs = new Map<string, { vm: string; to: string; status: 'running' | 'completed' | 'failed' }>();
  readonly moves: string[] = [];
  readonly stopped = new Set<string>();

  /** `big` needs more memory than any host has free. */
  constructor(vms: string[], private readonly big = '') { for (const v of vms) this.here.add(v); }

  end(vm: string, status: 'completed' | 'failed'): void {
    for (const j of this.jobs.values()) {
      if (j.vm !== vm || j.status !== 'running') continue;
      j.status = status;
      if (status === 'completed') this.here.delete(vm);
    }
  }

  reach(host: string): HostPort {
    const summary = (): PeerHostSummary => ({
      protocol: 1, host, maintenance: host === 'h2' ? 'draining' : 'active', memoryMiB: 4096, freeMemoryMiB: host === 'h1' ? 1024 : 3072, cpus: 4,
      vms: host !== 'h2' ? [] : [...this.here].map((name) => ({
        name, state: this.stopped.has(name) ? 'stopped' : 'running', memoryMiB: name === this.big ? 8192 : 128, cpus: 1, group: null, moving: [...this.jobs.values()].some((j) => j.vm === name && j.status === 'running'),
      })),
    });
    return {
      summary: async () => summary(),
      step: async (req) => {
        if (req.action === 'stop') { this.stopped.add(req.vm); return { protocol: 1 }; }
        if (req.action !== 'move') return { protocol: 1, incompatibilities: [] };
        const active = [...this.jobs].find(([, j]) => j.vm === req.vm && j.status === 'running');
        if (active && active[1].to === req.destination) return { protocol: 1, jobId: active[0] };
        const id = `job${this.jobs.size + 1}`;
        this.jobs.set(id, { vm: req.vm, to: req.destination ?? '', status: 'running' });
        this.moves.push(`${req.vm}→${req.destination}`);
        return { protocol: 1, jobId: id };
      },
      job: async (id): Promise<StatusReply> => {
        const j = this.jobs.get(id);
        return {
          protocol: 1, jobId: id, qemu: { alive: true, running: true },
          job: j ? { status: j.status, phase: 'perform', direction: null, postcopy: false, ...(j.status === 'failed' ? { error: { code: 'HOST_UNREACHABLE', message: 'h3 went away.' } } : {}) } : null,
        } as StatusReply;
      },
    };
  }
}

function manager(host: string, etcd: FakeEtcd, world: World, isManager: () => boolean): ClusterDrains {
  const parts: Partial<ClusterDrainParts> = {
    host, log: pino({ level: 'silent' }), maintenance: { mirror: () => undefined } as unknown as HostMaintenance,
    store: () => etcd.store(), isManager, reach: (h) => world.reach(h), pollMs: 5,
  };
  return new ClusterDrains(parts as ClusterDrainParts);
}

const until = async (what: string, fn: () => boolean): Promise<void> => {
  for (let i = 0; i < 400; i++) { if (fn()) return; await new Promise((r) => setTimeout(r, 5)); }
  assert.fail(`timed out waiting for ${what}`);
};

test('the manager dies mid-drain: the next one waits for the moves under way, moves again only what did not leave, and ends the drain', { timeout: 20_000 }, async () => {
  const etcd = new FakeEtcd();
  const world = new World(['a', 'b']);
  const startedAt = new Date().toISOString();
  etcd.drains.set('h2', { rev: '1', value: JSON.stringify({
    host: 'h2', state: 'draining', since: startedAt, force: false, running: { operation: 'drain', force: false, startedAt, endedAt: null, error: null }, lastRun: null, vms: [],
  } satisfies DrainRecord) });
  let h1Manages = true;
  try {
    const h1 = manager('h1', etcd, world, () => h1Manages);
    await h1.tick(etcd.store(), true);
    await until('both moves recorded with their jobs', () => (etcd.record('h2')?.vms ?? []).filter((e) => e.status === 'moving' && e.jobId).length === 2);
    assert.deepEqual(world.moves.sort(), ['a→h3', 'b→h3']);

    // h1 loses its post (its lease expired); h3 is elected. A step asked by h1 now is refused.
    h1Manages = false;
    etcd.manager = 'h3';
    etcd.members = ['h2', 'h3'];
    const h3 = manager('h3', etcd, world, () => true);
    await assert.rejects(h3.step({ protocol: 1, action: 'compare', vm: 'a', destination: 'h3' }, 'h1'), (e: FerryError) => e.code === 'NOT_CLUSTER_MANAGER');
    await h3.tick(etcd.store(), true);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(world.moves.sort(), ['a→h3', 'b→h3'], 'the new manager waits while its predecessor\'s moves run');
    world.end('a', 'completed');
    world.end('b', 'failed');
    await until('b asked to move again', () => world.moves.length === 3);
    assert.deepEqual(world.moves.sort(), ['a→h3', 'b→h3', 'b→h3'], 'only b, whose move failed, moves again');
    world.end('b', 'completed');
    await until('the drain ended', () => etcd.record('h2')?.running === null);
    const rec = etcd.record('h2');
    assert.ok(rec);
    assert.equal(rec.lastRun?.error, null);
    assert.equal(rec.state, 'drained');
    assert.deepEqual(rec.vms.map((e) => [e.vm, e.status, e.destination]).sort(), [['a', 'moved', 'h3'], ['b', 'moved', 'h3']]);
  } finally {
    // Whatever happened, the runs' polling loops end.
    for (const j of world.jobs.values()) if (j.status === 'running') j.status = 'completed';
    world.here.clear();
  }
});

test('a forced cluster drain stops, on the drained host, the VM no member has room for, and ends drained', { timeout: 20_000 }, async () => {
  const etcd = new FakeEtcd();
  const world = new World(['a', 'big'], 'big');
  const startedAt = new Date().toISOString();
  etcd.drains.set('h2', { rev: '1', value: JSON.stringify({
    host: 'h2', state: 'draining', since: startedAt, force: true, running: { operation: 'drain', force: true, startedAt, endedAt: null, error: null }, lastRun: null, vms: [],
  } satisfies DrainRecord) });
  try {
    await manager('h1', etcd, world, () => true).tick(etcd.store(), true);
    await until('a asked to move', () => world.moves.length === 1);
    world.end('a', 'completed');
    await until('the drain ended', () => etcd.record('h2')?.running === null);
    const rec = etcd.record('h2');
    assert.ok(rec);
    assert.equal(rec.state, 'drained');
    assert.equal(rec.lastRun?.error, null);
    assert.deepEqual([...world.stopped], ['big']);
    assert.deepEqual(rec.vms.map((e) => [e.vm, e.status, e.error?.code ?? null]).sort(), [['a', 'moved', null], ['big', 'stopped', 'INSUFFICIENT_MEMORY']]);
  } finally {
    for (const j of world.jobs.values()) if (j.status === 'running') j.status = 'completed';
    world.here.clear();
  }
});
