// Integration: the CPU model probe against this machine's real QEMU (no lab needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuModelProbe, expandCpuModel, readCpuModels, readMachines, withProbeQemu, type Accel } from '../src/qemu/index.js';

// TCG runs everywhere; KVM's answers depend on the machine's processor.
const accel: Accel = 'tcg';

test('probe QEMU: definitions, machines and the full expansion of qemu64 under TCG', async () => {
  const r = await withProbeQemu(accel, async (qmp) => ({
    models: await readCpuModels(qmp), machines: await readMachines(qmp), qemu64: await expandCpuModel(qmp, 'qemu64'),
  }));
  process.stderr.write(`${r.models.length} CPU models, ${r.models.filter((m) => m.unavailable.length === 0).length} runnable here; qemu64: ${r.qemu64.join(' ')}\n`);
  const q = r.models.find((m) => m.name === 'qemu64');
  assert.deepEqual(q?.unavailable, [], 'the default baseline runs under TCG');
  assert.ok((r.models.find((m) => m.name === 'Icelake-Server')?.unavailable.length ?? 0) > 0, 'TCG cannot offer Icelake-Server');
  assert.ok(r.machines.some((m) => /^pc-q35-\d/.test(m)) && r.machines.includes('q35'));
  for (const f of ['lm', 'sse2', 'nx']) assert.ok(r.qemu64.includes(f), f);
});

test('CpuModelProbe: probes once, caches per host, QEMU version and accelerator; expansions are cached too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-probe-'));
  try {
    const file = join(dir, 'cpu-models.json');
    const p = new CpuModelProbe(() => Promise.resolve(accel), 'test', file);
    assert.equal((await p.model('qemu64'))?.unavailable.length, 0);
    assert.equal(await p.model('no-such-cpu'), undefined);
    assert.equal(await p.features('no-such-cpu'), undefined);
    assert.ok((await p.features('qemu64'))?.includes('sse2'));
    assert.ok(existsSync(file));
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { key: string; features: Record<string, string[]> };
    assert.match(cached.key, /\/qemu-test\/tcg$/);
    assert.ok(cached.features.qemu64);
    // A second probe reads the file: a QEMU that cannot start is never run.
    const again = new CpuModelProbe(() => Promise.resolve(accel), 'test', file, { qemuBin: '/nonexistent/qemu' });
    assert.deepEqual(await again.features('qemu64'), cached.features.qemu64);
    const fresh = new CpuModelProbe(() => Promise.resolve(accel), 'other', file, { qemuBin: '/nonexistent/qemu', timeoutMs: 2000 });
    await assert.rejects(fresh.probe(), { code: 'QEMU_START_FAILED' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
