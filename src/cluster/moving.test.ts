import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ClusterHost, LocalHaVm } from './host.js';
import type { HaEntry, HaRecord } from './model.js';
import { abandonStranded, fenceTargets, strandedIncoming } from './moving.js';

const vm = (name: string, o: Partial<LocalHaVm> = {}): LocalHaVm => ({ name, running: false, busy: false, qemu: false, ...o });
const entry = (name: string, owner: string): HaEntry => ({
  rev: '1',
  rec: { name, owner, home: owner, priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '', spec: {} as HaRecord['spec'] },
});

describe('fenceTargets: every HA VM with a QEMU here, whatever it does', () => {
  const cases: { name: string; local: LocalHaVm[]; want: string[] }[] = [
    { name: 'a running VM', local: [vm('a', { running: true, qemu: true })], want: ['a'] },
    { name: 'the source of a move (migrating, busy)', local: [vm('a', { busy: true, qemu: true })], want: ['a'] },
    { name: 'the destination of a move (incoming QEMU)', local: [vm('a', { busy: true, qemu: true, incomingFrom: 'h1' })], want: ['a'] },
    { name: 'paused by a user', local: [vm('a', { running: true, qemu: true })], want: ['a'] },
    { name: 'stopped, failed, or a record without QEMU', local: [vm('a'), vm('b', { busy: true })], want: [] },
    { name: 'a mix', local: [vm('a', { running: true, qemu: true }), vm('b'), vm('c', { busy: true, qemu: true, incomingFrom: 'h2' })], want: ['a', 'c'] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(fenceTargets(c.local), c.want));
});

describe('strandedIncoming: moves into this host whose source holds no lease', () => {
  const members = new Set(['h2', 'h3']);
  const cases: { name: string; local: LocalHaVm[]; entries: HaEntry[]; want: string[] }[] = [
    { name: 'the source is a live member: the move goes on', local: [vm('a', { qemu: true, busy: true, incomingFrom: 'h3' })], entries: [entry('a', 'h3')], want: [] },
    { name: 'the source lost its lease: give up', local: [vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })], entries: [entry('a', 'h1')], want: ['a from h1'] },
    { name: 'the manager placed it here meanwhile: give up too (this host starts it once the move is gone)', local: [vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })], entries: [entry('a', 'h2')], want: ['a from h1'] },
    { name: 'not an HA VM in etcd: not the cluster\'s business', local: [vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })], entries: [], want: [] },
    { name: 'the VM ran here already (not incoming): never given up', local: [vm('a', { qemu: true, running: true, busy: true })], entries: [entry('a', 'h1')], want: [] },
    { name: 'the source of a move from here: not this rule', local: [vm('a', { qemu: true, busy: true })], entries: [entry('a', 'h2')], want: [] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(strandedIncoming(c.local, c.entries, members).map((s) => `${s.vm} from ${s.source}`), c.want));
});

describe('abandonStranded', () => {
  it('asks the agent to roll back each stranded move, with a sentence naming the source', async () => {
    const asked: [string, string][] = [];
    const host = {
      name: 'h2', log: pino({ level: 'silent' }),
      localHa: () => [vm('a', { qemu: true, busy: true, incomingFrom: 'h1' }), vm('b', { qemu: true, running: true })],
      abandonIncoming: (name: string, why: string) => { asked.push([name, why]); return Promise.resolve(); },
    } as unknown as ClusterHost;
    abandonStranded(host, [entry('a', 'h1'), entry('b', 'h2')], [{ name: 'h2' }]);
    await new Promise((r) => setImmediate(r));
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.[0], 'a');
    assert.match(asked[0]?.[1] ?? '', /^The source h1 lost its cluster lease during the move of "a".*h2 rolled back its half/);
  });
  it('does nothing for an agent that cannot roll back', () => {
    const host = { name: 'h2', log: pino({ level: 'silent' }), localHa: () => { throw new Error('not asked'); } } as unknown as ClusterHost;
    abandonStranded(host, [entry('a', 'h1')], []);
  });
});
