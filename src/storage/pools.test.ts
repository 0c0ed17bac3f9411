import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pools } from './index.js';

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
