import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { deleteImage } from '../storage/index.js';
import { writeCache } from '../util/index.js';
import { startQemu } from './process.js';

test('a run folder that cannot be made is QEMU_START_FAILED saying so, an image that cannot be deleted STORAGE_FAILED (not a raw file-system error); a cache that cannot be written is skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runfolder-'));
  try {
    writeFileSync(join(dir, 'file'), '');
    const runDir = join(dir, 'file', 'vm');
    await assert.rejects(startQemu({
      name: 'v', uuid: '00000000-0000-4000-8000-000000000001', machine: 'q35', accel: 'tcg', cpuModel: 'qemu64', memoryMiB: 64, cpus: 1,
      boot: { kernel: '/nonexistent', initrd: '/nonexistent', append: '' }, nic: { tap: 'none', mac: '52:54:00:00:00:01' }, disks: [], runDir,
    }), (e: unknown) => e instanceof FerryError && e.code === 'QEMU_START_FAILED' && /run folder of "v" .* cannot be prepared: ENOTDIR/.test(e.message));
    await assert.rejects(deleteImage(join(dir, 'file', 'img.qcow2')), (e: unknown) => e instanceof FerryError && e.code === 'STORAGE_FAILED' && /cannot be deleted: ENOTDIR/.test(e.message));
    await deleteImage(join(dir, 'missing.qcow2'));
    // A probe's cache that cannot be written costs only the cache.
    assert.equal(writeCache(join(dir, 'file', 'cache.json'), { a: 1 }), false);
    assert.equal(writeCache(join(dir, 'cache', 'cache.json'), { a: 1 }), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
