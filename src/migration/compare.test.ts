import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmSpec } from '../vm/index.js';
import { compare, reportLines, type DestinationFacts } from './compare.js';

const vm: VmSpec = {
  name: 'web', uuid: 'u', memoryMiB: 512, cpus: 2, cpuModel: 'qemu64', machine: 'pc-q35-7.2', mac: '52:54:00:00:00:01',
  ip: '10.0.0.5', prefixLength: 24, disks: [], ha: false,
};
const good: DestinationFacts = {
  host: 'h2', incomingEnabled: true, freeMemoryMiB: 1024, cpus: 2, machines: ['pc-q35-7.1', 'pc-q35-7.2', 'q35'],
  cpuModel: { name: 'qemu64', unavailable: [] }, cpuFeatures: ['lm', 'sse2'], bridge: 'br0', bridgeExists: true, vmExists: false, storage: [],
};

const codes = (d: Partial<DestinationFacts>, extra: { outgoing?: boolean; sourceCpuFeatures?: string[] } = {}): string[] =>
  compare({
    vm, source: { host: 'h1', outgoingEnabled: extra.outgoing ?? true }, destination: { ...good, ...d },
    ...(extra.sourceCpuFeatures ? { sourceCpuFeatures: extra.sourceCpuFeatures } : {}),
  }).map((p) => p.code);

test('compare: one code per problem, each side judged on its facts', () => {
  const table: [string, Partial<DestinationFacts>, { outgoing?: boolean; sourceCpuFeatures?: string[] }, string[]][] = [
    ['compatible', {}, { sourceCpuFeatures: ['lm', 'sse2'] }, []],
    ['outgoing off on the source', {}, { outgoing: false }, ['MIGRATION_DISABLED']],
    ['incoming off on the destination', { incomingEnabled: false }, {}, ['MIGRATION_DISABLED']],
    ['a VM of that name there', { vmExists: true }, {}, ['VM_EXISTS']],
    ['older QEMU', { machines: ['pc-q35-7.1'] }, {}, ['MACHINE_TYPE_UNSUPPORTED']],
    ['unknown CPU model', { cpuModel: undefined, cpuFeatures: undefined }, {}, ['CPU_MODEL_UNSUPPORTED']],
    ['model with unavailable features', { cpuModel: { name: 'qemu64', unavailable: ['avx512f'] } }, {}, ['CPU_MODEL_UNSUPPORTED']],
    ['same model, fewer features', { cpuFeatures: ['lm'] }, { sourceCpuFeatures: ['lm', 'sse2'] }, ['CPU_FEATURES_MISSING']],
    ['not enough memory', { freeMemoryMiB: 511 }, {}, ['INSUFFICIENT_MEMORY']],
    ['not enough CPUs', { cpus: 1 }, {}, ['INSUFFICIENT_CPUS']],
    ['no bridge', { bridgeExists: false }, {}, ['BRIDGE_MISSING']],
    ['destination in maintenance', { maintenance: 'drained' }, {}, ['HOST_IN_MAINTENANCE']],
    ['storage problems pass through', { storage: [{ code: 'STORAGE_NOT_SHARED', message: 'Disk 0 …' }] }, {}, ['STORAGE_NOT_SHARED']],
    ['several at once, source first', { incomingEnabled: false, freeMemoryMiB: 0 }, { outgoing: false }, ['MIGRATION_DISABLED', 'MIGRATION_DISABLED', 'INSUFFICIENT_MEMORY']],
  ];
  for (const [name, d, extra, want] of table) assert.deepEqual(codes(d, extra), want, name);
});

test('compare: a VM with its whole RAM is refused by a TCG host on QEMU < 9; trimmed or unrecorded, it is taken', () => {
  const to = (ramTrimKiB: number | undefined, tcgDirtyBug: boolean): string[] =>
    compare({ vm: { ...vm, ...(ramTrimKiB !== undefined ? { ramTrimKiB } : {}) }, destination: { ...good, tcgDirtyBug } }).map((p) => p.code);
  assert.deepEqual(to(0, true), ['QEMU_TOO_OLD']);
  assert.deepEqual(to(8, true), []);
  assert.deepEqual(to(undefined, true), [], 'no trim recorded: the older rule, 8 KiB under TCG');
  assert.deepEqual(to(0, false), []);
});

test('compare: sentences name the host and the facts; report lines are CODE: sentence', () => {
  const p = compare({ vm, destination: { ...good, freeMemoryMiB: 100, cpuModel: { name: 'qemu64', unavailable: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] } } });
  assert.deepEqual(reportLines(p), [
    'CPU_MODEL_UNSUPPORTED: Host h2 cannot offer the CPU model qemu64; it lacks the features a, b, c, d, e, f and 2 more.',
    'INSUFFICIENT_MEMORY: Host h2 has 100 MiB free for VMs, less than the 512 MiB of "web".',
  ]);
  for (const x of p) assert.match(x.message, /\.$/);
});
