import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { FakeQmp } from '../qmp/index.js';
import { GREETING } from '../qmp/test-server.js';
import { expandCpuModel, readCpuModels, readMachines, withProbeQemu } from './cpu-models.js';

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

/**
 * A stand-in for QEMU as the probe starts it: serves QMP on the `-qmp unix:PATH,…` socket, answering
 * every command with `{}` (an expansion with `lm`). While `badFile` does not exist it is created
 * and the connection gets a reply instead of the greeting: a monitor that broke its session.
 */
function fakeQemu(dir: string, badTimes: 'once' | 'always'): string {
  const js = join(dir, 'fake-qemu.mjs');
  writeFileSync(js, `
import { createServer } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
const arg = process.argv[process.argv.indexOf('-qmp') + 1];
const path = arg.slice('unix:'.length).split(',')[0];
const bad = ${badTimes === 'always'} || !existsSync(${JSON.stringify(join(dir, 'bad-once'))});
writeFileSync(${JSON.stringify(join(dir, 'bad-once'))}, '1');
createServer((s) => {
  if (bad) { s.write('{"return": {}}\\r\\n'); return; }
  s.write(${JSON.stringify(`${GREETING}\r\n`)});
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      const ret = m.execute === 'query-cpu-model-expansion' ? { model: { name: 'qemu64', props: { lm: true } } } : {};
      s.write(JSON.stringify({ return: ret, id: m.id }) + '\\r\\n');
    }
  });
}).listen(path);
`);
  const sh = join(dir, 'qemu');
  writeFileSync(sh, `#!/bin/sh\nexec ${process.execPath} ${js} "$@"\n`);
  chmodSync(sh, 0o755);
  return sh;
}

test('withProbeQemu: a probe QEMU whose monitor breaks the protocol is replaced once; twice is an error naming what came', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cpu-test-'));
  try {
    const once = fakeQemu(dir, 'once');
    assert.deepEqual(await withProbeQemu('tcg', (q) => expandCpuModel(q, 'qemu64'), { qemuBin: once, timeoutMs: 5000 }), ['lm']);
    assert.ok(existsSync(join(dir, 'bad-once')), 'the first QEMU did break the protocol');
    const always = fakeQemu(dir, 'always');
    await assert.rejects(withProbeQemu('tcg', (q) => expandCpuModel(q, 'qemu64'), { qemuBin: always, timeoutMs: 5000 }),
      (e: unknown) => e instanceof FerryError && e.code === 'QMP_PROTOCOL' && /not the greeting but a reply/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
