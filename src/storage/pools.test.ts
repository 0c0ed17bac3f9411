import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { freeBytesAt, Pools, poolSpace } from './index.js';

test('poolOf: inside, outside, traversal and symlink escapes', () => {
  const root = mkdtempSync(join(tmpdir(), 'pools-'));
  try {
    const pools = new Pools([{ name: 'default', path: join(root, 'p1') }, { name: 'shared', path: join(root, 'p2'), sharedId: 's' }]);
    assert.equal(pools.poolOf(join(root, 'p1', 'vm', 'd.qcow2')).name, 'default');
    assert.equal(pools.poolOf(join(root, 'p2', 'x.qcow2')).name, 'shared');
    assert.throws(() => pools.poolOf('/etc/passwd'), { code: 'INVALID_PATH' });
    assert.throws(() => pools.poolOf(join(root, 'p1', '..', 'p1x', 'a')), { code: 'INVALID_PATH' });
    assert.throws(() => pools.poolOf('relative/path'), { code: 'INVALID_PATH' });
    symlinkSync('/etc', join(root, 'p1', 'escape'));
    assert.throws(() => pools.poolOf(join(root, 'p1', 'escape', 'passwd')), { code: 'INVALID_PATH' });
    assert.throws(() => pools.get('nope'), { code: 'UNKNOWN_POOL' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a pool whose folder cannot be made or read does not stop the host: poolSpace says STORAGE_FAILED naming it, poolOf still finds it', () => {
  const root = mkdtempSync(join(tmpdir(), 'pools-'));
  try {
    // A folder under a regular file can be neither made nor read, as with a mount that went away.
    writeFileSync(join(root, 'file'), '');
    const gone = { name: 'gone', path: join(root, 'file', 'pool') };
    const pools = new Pools([{ name: 'default', path: join(root, 'p1') }, gone]);
    assert.throws(() => poolSpace(gone), (e: unknown) => e instanceof FerryError && e.code === 'STORAGE_FAILED' && /The storage pool "gone" at .* cannot be read \(ENOTDIR\); is its folder there and its file system mounted\?/.test(e.message));
    assert.ok(poolSpace({ name: 'default', path: join(root, 'p1') }).totalBytes > 0);
    assert.equal(pools.poolOf(join(gone.path, 'vm', 'd.qcow2')).name, 'gone');
    // Free space under it is not taken from the file system above (only absent folders are climbed past).
    assert.throws(() => freeBytesAt(join(gone.path, 'vm')), (e: unknown) => e instanceof FerryError && e.code === 'STORAGE_FAILED');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
