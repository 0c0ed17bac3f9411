// A pool whose file system cannot be read (a folder gone, a stale NFS mount): the host still
// answers its view (the pool marked unavailable) and peer pings; what needs the pool says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testApi } from './test-agent.js';
import type { HostView } from '../agent/views.js';

test('a pool that cannot be read: GET /v1/host marks it with its error, GET /v1/peer/ping answers, vm create on it is STORAGE_FAILED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-gone-pool-'));
  writeFileSync(join(dir, 'file'), '');
  const t = await testApi('pools', { pools: [{ name: 'default', path: join(dir, 'ok') }, { name: 'gone', path: join(dir, 'file', 'pool') }] });
  try {
    const auth = { authorization: `Bearer ${t.agent.tokens.create('pools-test', 'operator').token}` };
    const h = await t.app.inject({ method: 'GET', url: '/v1/host', headers: auth });
    assert.equal(h.statusCode, 200, h.body);
    const pools = (h.json() as HostView).pools;
    assert.equal(pools.find((p) => p.name === 'default')?.error, null);
    const gone = pools.find((p) => p.name === 'gone');
    assert.deepEqual([gone?.freeBytes, gone?.totalBytes], [0, 0]);
    assert.match(gone?.error ?? '', /The storage pool "gone" .* cannot be read \(ENOTDIR\)/);
    const ping = await t.app.inject({ method: 'GET', url: '/v1/peer/ping' });
    assert.equal(ping.statusCode, 200, ping.body);
    const c = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: { name: 'v1', memoryMiB: 128, diskSizeBytes: 64 << 20, diskPool: 'gone' } });
    assert.equal(c.statusCode, 500, c.body);
    assert.equal((c.json() as { error: { code: string } }).error.code, 'STORAGE_FAILED');
    assert.equal(t.agent.inv.list().length, 0, 'nothing created');
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
