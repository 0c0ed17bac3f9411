import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../util/index.js';
import { DEFAULT_HOST_SETTINGS, type HostSettings } from '../migration/index.js';
import { checkHostSettings, HostSettingsStore, parseCidr, settingsDefaults } from './settings-store.js';

test('settings store: defaults for unset fields, partial updates persist across reopening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-settings-'));
  try {
    const path = join(dir, 'ferry.db');
    const db = openDb(path);
    const s = new HostSettingsStore(db, settingsDefaults({ maxStorageMigrations: 3 }));
    assert.deepEqual(s.get(), { ...DEFAULT_HOST_SETTINGS, maxStorageMigrations: 3 }, 'the config seeds maxStorageMigrations');
    const after = s.update({ outgoingEnabled: false, performance: 'multichannel', networks: [{ cidr: '10.9.0.0/16', priority: 1 }] });
    assert.equal(after.outgoingEnabled, false);
    assert.equal(after.incomingEnabled, true, 'fields not in the patch keep their value');
    db.close();
    const again = new HostSettingsStore(openDb(path), settingsDefaults({ maxStorageMigrations: 5 }));
    assert.equal(again.get().performance, 'multichannel', 'stored fields survive a restart');
    assert.deepEqual(again.get().networks, [{ cidr: '10.9.0.0/16', priority: 1 }]);
    assert.equal(again.get().maxStorageMigrations, 5, 'an unset field follows its (new) default');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('settings store: a bad patch is refused with INVALID_INPUT and stores nothing', () => {
  const s = new HostSettingsStore(openDb(':memory:'));
  const bad: [Partial<HostSettings>, RegExp][] = [
    [{ maxMigrations: 0 }, /maxMigrations must be a whole number from 1 to 64/],
    [{ maxMigrations: 65 }, /maxMigrations/],
    [{ maxStorageMigrations: 1.5 }, /maxStorageMigrations/],
    [{ downtimeTargetMs: 0 }, /downtimeTargetMs must be a whole number from 1 to 10000 ms/],
    [{ downtimeTargetMs: 10_001 }, /downtimeTargetMs/],
    [{ maxBandwidthBytesPerSec: 0 }, /maxBandwidthBytesPerSec/],
    [{ maxBandwidthBytesPerSec: -5 }, /maxBandwidthBytesPerSec/],
    [{ performance: 'smb' as HostSettings['performance'] }, /performance must be one of tcp, compression, multichannel/],
    [{ networks: [{ cidr: '10.0.0.0/33', priority: 1 }] }, /not an IPv4 prefix/],
    [{ networks: [{ cidr: '10.0.0.5/24', priority: 1 }] }, /did you mean 10\.0\.0\.0\/24/],
    [{ networks: [{ cidr: '10.0.0.0/24', priority: 1.5 }] }, /priority/],
    [{ networks: [{ cidr: '10.0.0.0/24', priority: 1 }, { cidr: '10.0.0.0/24', priority: 2 }] }, /listed twice/],
    [{ performance: 'compression', allowPostcopy: true }, /QEMU cannot run post-copy over multifd channels/],
    [{ nonsense: 1 } as unknown as Partial<HostSettings>, /no host setting named nonsense/],
  ];
  for (const [patch, msg] of bad) {
    assert.throws(() => s.update(patch), (e: unknown) => (e as { code?: string }).code === 'INVALID_INPUT' && msg.test((e as Error).message), JSON.stringify(patch));
  }
  assert.deepEqual(s.get(), DEFAULT_HOST_SETTINGS, 'nothing was stored');
  assert.equal(s.update({ maxBandwidthBytesPerSec: 1000 }).maxBandwidthBytesPerSec, 1000);
  assert.equal(s.update({ maxBandwidthBytesPerSec: null }).maxBandwidthBytesPerSec, null, 'null clears the cap');
  assert.throws(() => s.update({ allowInsecureMigration: 'yes' as unknown as boolean }), /allowInsecureMigration must be true or false/);
  assert.equal(s.update({ allowInsecureMigration: true }).allowInsecureMigration, true, 'unencrypted moves are allowed only when set');
  assert.equal(s.update({ allowInsecureMigration: false }).allowInsecureMigration, false);
  s.update({ allowPostcopy: true });
  assert.throws(() => s.update({ performance: 'multichannel' }), /post-copy/, 'the combination is refused from either side');
});

test('checkHostSettings accepts the defaults; parseCidr edges', () => {
  checkHostSettings({ ...DEFAULT_HOST_SETTINGS });
  assert.equal(parseCidr('0.0.0.0/0'), '0.0.0.0/0');
  assert.equal(parseCidr('192.168.1.7/32'), '192.168.1.7/32');
  for (const x of ['10.0.0.0', '256.0.0.0/8', '10.0.0/8', 'a.b.c.d/8', 42]) assert.throws(() => parseCidr(x), { code: 'INVALID_INPUT' }, String(x));
});
