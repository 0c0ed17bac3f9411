import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeQmp } from '../qmp/index.js';
import { expandCpuModel, readCpuModels, readMachines } from './cpu-models.js';

test('readCpuModels: names, the features this host lacks (sorted), migration safety and aliases', async () => {
  const qmp = new FakeQmp();
  qmp.handle('query-cpu-definitions', [
    { name: 'qemu64', typename: 'qemu64-x86_64-cpu', static: false, deprecated: false, 'migration-safe': true, 'unavailable-features': [] },
    { name: 'Icelake-Server', typename: 'Icelake-Server-x86_64-cpu', static: false, deprecated: false, 'alias-of': 'Icelake-Server-v1', 'unavailable-features': ['pku', 'avx512f'] },
    { name: 'base', typename: 'base-x86_64-cpu', static: true, deprecated: false },
  ]);
  assert.deepEqual(await readCpuModels(qmp), [
    { name: 'qemu64', unavailable: [], migrationSafe: true },
    { name: 'Icelake-Server', unavailable: ['avx512f', 'pku'], migrationSafe: false, aliasOf: 'Icelake-Server-v1' },
    { name: 'base', unavailable: [], migrationSafe: false },
  ]);
});

test('expandCpuModel: asks for a full expansion and keeps the true boolean features, without QEMU\'s x- knobs', async () => {
  const qmp = new FakeQmp();
  qmp.handle('query-cpu-model-expansion', (args) => {
    assert.deepEqual(args, { type: 'full', model: { name: 'qemu64' } });
    return { model: { name: 'qemu64', props: { sse2: true, lm: true, avx: false, 'x-migrate-smi-count': true, family: 15, 'model-id': 'QEMU' } } };
  });
  assert.deepEqual(await expandCpuModel(qmp, 'qemu64'), ['lm', 'sse2']);
});

test('readMachines: versioned names and their aliases, once each', async () => {
  const qmp = new FakeQmp();
  qmp.handle('query-machines', [
    { name: 'pc-q35-7.2', alias: 'q35', 'cpu-max': 288, 'hotpluggable-cpus': true, 'numa-mem-supported': false, deprecated: false, 'default-ram-id': 'pc.ram' },
    { name: 'pc-q35-7.1', 'cpu-max': 288, 'hotpluggable-cpus': true, 'numa-mem-supported': false, deprecated: false },
  ]);
  assert.deepEqual(await readMachines(qmp), ['pc-q35-7.1', 'pc-q35-7.2', 'q35']);
});
