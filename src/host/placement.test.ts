import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDrain, type PlacementHost, type PlacementInput, type PlacementVm } from './placement.js';

const vm = (name: string, memoryMiB = 256, extra: Partial<PlacementVm> = {}): PlacementVm => ({ name, memoryMiB, cpus: 1, ...extra });
const host = (name: string, freeMemoryMiB: number, extra: Partial<PlacementHost> = {}): PlacementHost => ({
  name, freeMemoryMiB, cpus: 4, committedCpus: 0, groups: [], maintenance: null, reachable: true, ...extra,
});

interface Case {
  name: string;
  input: PlacementInput;
  /** vm → host, for the placed ones. */
  placed: Record<string, string>;
  /** vm → code, for the unplaced ones. */
  unplaced?: Record<string, string>;
  sharesGroup?: string[];
}

const cases: Case[] = [
  {
    name: 'one host with room takes every VM',
    input: { vms: [vm('a'), vm('b')], hosts: [host('h2', 1024)] },
    placed: { a: 'h2', b: 'h2' },
  },
  {
    name: 'the host with the most memory free wins, and placed VMs count against it',
    input: { vms: [vm('a', 512), vm('b', 512)], hosts: [host('h2', 1000), host('h3', 800)] },
    placed: { a: 'h2', b: 'h3' },
  },
  {
    name: 'biggest first: the big VM gets the only host it fits on before small ones fill it',
    input: { vms: [vm('small', 256), vm('big', 900)], hosts: [host('h2', 1000), host('h3', 300)] },
    placed: { big: 'h2', small: 'h3' },
  },
  {
    name: 'a VM too big for every host is unplaced with INSUFFICIENT_MEMORY; the others move',
    input: { vms: [vm('a'), vm('b'), vm('huge', 4096)], hosts: [host('h2', 1024)] },
    placed: { a: 'h2', b: 'h2' }, unplaced: { huge: 'INSUFFICIENT_MEMORY' },
  },
  {
    name: 'memory runs out after earlier placements',
    input: { vms: [vm('a', 600), vm('b', 600)], hosts: [host('h2', 1000)] },
    placed: { a: 'h2' }, unplaced: { b: 'INSUFFICIENT_MEMORY' },
  },
  {
    name: 'equal memory: the host with fewer vCPUs committed per CPU wins',
    input: { vms: [vm('a')], hosts: [host('h2', 1000, { committedCpus: 6 }), host('h3', 1000, { committedCpus: 1 })] },
    placed: { a: 'h3' },
  },
  {
    name: 'equal in everything: by name',
    input: { vms: [vm('a')], hosts: [host('h3', 1000), host('h2', 1000)] },
    placed: { a: 'h2' },
  },
  {
    name: 'too many vCPUs for a host: INSUFFICIENT_CPUS',
    input: { vms: [vm('wide', 256, { cpus: 8 })], hosts: [host('h2', 1000)] },
    placed: {}, unplaced: { wide: 'INSUFFICIENT_CPUS' },
  },
  {
    name: 'hosts in maintenance or unreachable take nothing',
    input: { vms: [vm('a')], hosts: [host('h2', 9000, { maintenance: 'draining' }), host('h3', 9000, { reachable: false }), host('h4', 300)] },
    placed: { a: 'h4' },
  },
  {
    name: 'only hosts in maintenance: HOST_IN_MAINTENANCE',
    input: { vms: [vm('a')], hosts: [host('h2', 9000, { maintenance: 'drained' })] },
    placed: {}, unplaced: { a: 'HOST_IN_MAINTENANCE' },
  },
  {
    name: 'no other host at all: NO_DRAIN_TARGET',
    input: { vms: [vm('a')], hosts: [] },
    placed: {}, unplaced: { a: 'NO_DRAIN_TARGET' },
  },
  {
    name: 'a problem in the compatibility report rules the host out',
    input: {
      vms: [vm('a'), vm('b')], hosts: [host('h2', 9000), host('h3', 500)],
      problems: { a: { h2: [{ code: 'CPU_MODEL_UNSUPPORTED', message: 'no.' }] } },
    },
    placed: { a: 'h3', b: 'h2' },
  },
  {
    name: 'incompatible everywhere: the report\'s code',
    input: { vms: [vm('a')], hosts: [host('h2', 9000)], problems: { a: { h2: [{ code: 'STORAGE_NOT_SHARED', message: 'local disk.' }] } } },
    placed: {}, unplaced: { a: 'STORAGE_NOT_SHARED' },
  },
  {
    name: 'different reasons on different hosts: NO_DRAIN_TARGET, each host\'s reason in the list',
    input: { vms: [vm('a', 4096)], hosts: [host('h2', 9000, { maintenance: 'drained' }), host('h3', 1000)] },
    placed: {}, unplaced: { a: 'NO_DRAIN_TARGET' },
  },
  {
    name: 'anti-affinity: VMs of one group go to different hosts even when one host has more room',
    input: { vms: [vm('g1', 256, { group: 'db' }), vm('g2', 256, { group: 'db' })], hosts: [host('h2', 8000), host('h3', 1000)] },
    placed: { g1: 'h2', g2: 'h3' },
  },
  {
    name: 'anti-affinity counts the group\'s VMs already on a host',
    input: { vms: [vm('g1', 256, { group: 'db' })], hosts: [host('h2', 8000, { groups: ['db'] }), host('h3', 1000)] },
    placed: { g1: 'h3' },
  },
  {
    name: 'anti-affinity is a preference: with one host left the VM still goes, and the plan says so',
    input: { vms: [vm('g1', 256, { group: 'db' }), vm('g2', 256, { group: 'db' })], hosts: [host('h2', 8000)] },
    placed: { g1: 'h2', g2: 'h2' }, sharesGroup: ['g2'],
  },
];

for (const c of cases) {
  test(`drain placement: ${c.name}`, () => {
    const plan = planDrain(c.input);
    assert.deepEqual(Object.fromEntries(plan.placements.map((p) => [p.vm, p.host])), c.placed);
    assert.deepEqual(Object.fromEntries(plan.unplaced.map((u) => [u.vm, u.code])), c.unplaced ?? {});
    assert.deepEqual(plan.placements.filter((p) => p.sharesGroup).map((p) => p.vm), c.sharesGroup ?? []);
    for (const u of plan.unplaced) assert.match(u.message, new RegExp(u.vm), 'the sentence names the VM');
  });
}

test('drain placement: the reasons list every candidate host', () => {
  const plan = planDrain({ vms: [vm('a', 4096)], hosts: [host('h2', 9000, { maintenance: 'drained' }), host('h3', 1000)] });
  assert.deepEqual(plan.unplaced[0]?.reasons.map((r) => [r.host, r.code]), [['h2', 'HOST_IN_MAINTENANCE'], ['h3', 'INSUFFICIENT_MEMORY']]);
});
