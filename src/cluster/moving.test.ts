import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ClusterHost, LocalHaVm } from './host.js';
import type { HaEntry, HaRecord } from './model.js';
import { fenceTargets, settleMoves, strandedIncoming, strandedOutgoing, type SettleMemory } from './moving.js';

const vm = (name: string, o: Partial<LocalHaVm> = {}): LocalHaVm => ({ name, uuid: name, running: false, busy: false, qemu: false, ...o });
const entry = (name: string, owner: string): HaEntry => ({
  rev: '1',
  rec: { name, owner, home: owner, priority: 0, restart: 'always', failback: 'none', state: 'running', restarts: 0, updatedAt: '', spec: { uuid: name } as HaRecord['spec'] },
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
    { name: 'the record is another VM of that name (another uuid): not this VM\'s business', local: [vm('a', { uuid: 'other', qemu: true, busy: true, incomingFrom: 'h1' })], entries: [entry('a', 'h1')], want: [] },
    { name: 'the VM ran here already (not incoming): never given up', local: [vm('a', { qemu: true, running: true, busy: true })], entries: [entry('a', 'h1')], want: [] },
    { name: 'the source of a move from here: not this rule', local: [vm('a', { qemu: true, busy: true })], entries: [entry('a', 'h2')], want: [] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(strandedIncoming(c.local, c.entries, members).map((s) => `${s.vm} from ${s.source}`), c.want));
});

describe('strandedOutgoing: moves from this host whose stream completed and whose destination holds no lease', () => {
  const members = new Set(['h1', 'h3']);
  const cases: { name: string; local: LocalHaVm[]; entries: HaEntry[]; want: string[] }[] = [
    { name: 'the destination is a live member: wait for its word', local: [vm('a', { qemu: true, busy: true, sentTo: 'h3' })], entries: [entry('a', 'h3')], want: [] },
    { name: 'the destination lost its lease: give up the paused copy', local: [vm('a', { qemu: true, busy: true, sentTo: 'h2' })], entries: [entry('a', 'h2')], want: ['a to h2'] },
    { name: 'the destination never wrote its ownership: the same', local: [vm('a', { qemu: true, busy: true, sentTo: 'h2' })], entries: [entry('a', 'h1')], want: ['a to h2'] },
    { name: 'a move still copying (no completed stream): not this rule', local: [vm('a', { qemu: true, busy: true })], entries: [entry('a', 'h1')], want: [] },
    { name: 'not an HA VM in etcd', local: [vm('a', { qemu: true, busy: true, sentTo: 'h2' })], entries: [], want: [] },
    { name: 'the record is another VM of that name (another uuid)', local: [vm('a', { uuid: 'other', qemu: true, busy: true, sentTo: 'h2' })], entries: [entry('a', 'h2')], want: [] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(strandedOutgoing(c.local, c.entries, members).map((s) => `${s.vm} to ${s.destination}`), c.want));
});

describe('settleMoves', () => {
  const mem = (): SettleMemory => ({ busy: new Set(), goneSince: new Map() });
  const fake = (local: LocalHaVm[], asked: string[]): ClusterHost => ({
    name: 'h2', log: pino({ level: 'silent' }), localHa: () => local,
    abandonIncoming: (name: string, why: string) => { asked.push(`in ${name}: ${why}`); return Promise.resolve(); },
    abandonOutgoing: (name: string, why: string) => { asked.push(`out ${name}: ${why}`); return Promise.resolve(); },
    settleArrival: (name: string) => { asked.push(`settle ${name}`); return Promise.resolve(); },
  }) as unknown as ClusterHost;

  it('rolls back a stranded incoming move, gives up a stranded outgoing one, settles a lost arrival; each with a sentence', async () => {
    const asked: string[] = [];
    const local = [
      vm('a', { qemu: true, busy: true, incomingFrom: 'h1' }), vm('b', { qemu: true, running: true }),
      vm('c', { qemu: true, busy: true, sentTo: 'h3' }), vm('d', { busy: true, lostArrivalFrom: 'h1' }),
    ];
    settleMoves(fake(local, asked), [entry('a', 'h1'), entry('b', 'h2'), entry('c', 'h2'), entry('d', 'h1')], [{ name: 'h2' }], mem(), 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(asked.length, 3, asked.join('\n'));
    assert.match(asked[0] ?? '', /^in a: The source h1 lost its cluster lease during the move of "a".*h2 rolled back its half/);
    assert.match(asked[1] ?? '', /^out c: The destination h3 lost its cluster lease after the switch-over of "c".*h2 powered off its own copy/);
    assert.equal(asked[2], 'settle d');
  });
  it('asks once per VM while the first ask runs', async () => {
    const asked: string[] = [];
    const m = mem();
    const host = fake([vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })], asked);
    const slow = { ...host, abandonIncoming: (name: string) => { asked.push(name); return new Promise<void>((r) => setTimeout(r, 20)); } } as ClusterHost;
    settleMoves(slow, [entry('a', 'h1')], [], m, 0);
    settleMoves(slow, [entry('a', 'h1')], [], m, 0);
    assert.deepEqual(asked, ['a']);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(m.busy.size, 0);
  });
  it('does nothing for an agent that cannot settle moves', () => {
    const host = { name: 'h2', log: pino({ level: 'silent' }), localHa: () => [vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })] } as unknown as ClusterHost;
    settleMoves(host, [entry('a', 'h1')], [], mem(), 0);
  });
  it('gives up an outgoing move only once its destination has been without a lease for the fence margin, as the manager waits before placing', async () => {
    const asked: string[] = [];
    const m = mem();
    const host = fake([vm('c', { qemu: true, busy: true, sentTo: 'h3' })], asked);
    const tick = async (members: string[], now: number): Promise<void> => {
      settleMoves(host, [entry('c', 'h1')], members.map((name) => ({ name })), m, 5_000, now);
      await new Promise((r) => setImmediate(r));
    };
    await tick(['h2'], 10_000); // h3's key just expired: its fence may still be under way
    await tick(['h2'], 14_999);
    assert.deepEqual(asked, [], 'not before the margin');
    await tick(['h2', 'h3'], 15_500); // back: the wait starts again next time it is gone
    await tick(['h2'], 16_000);
    await tick(['h2'], 20_999);
    assert.deepEqual(asked, []);
    await tick(['h2'], 21_000);
    assert.equal(asked.length, 1);
    assert.match(asked[0] ?? '', /^out c: The destination h3 lost its cluster lease/);
    // The incoming rule does not wait: it starts nothing (the manager's own placement waits the margin).
    const inAsked: string[] = [];
    settleMoves(fake([vm('a', { qemu: true, busy: true, incomingFrom: 'h1' })], inAsked), [entry('a', 'h1')], [{ name: 'h2' }], mem(), 5_000, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(inAsked.length, 1);
  });
});
