import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_HOST_SETTINGS, DEFAULT_MAX_BANDWIDTH, DEFAULT_POLICY, destinationSettings, HELD_THROTTLE_PERCENT, movesInPlain, resolveMoveOptions, sourceSettings,
  tlsParameters,
  type PerformanceOption,
} from './index.js';

const on = (caps: { capability: string; state: boolean }[]): string[] => caps.filter((c) => c.state).map((c) => c.capability).sort();

test('source settings: capabilities fixed before migrate, auto-converge held low', () => {
  const s = sourceSettings({ ...DEFAULT_POLICY, allowAutoConverge: true, allowPostcopy: false });
  assert.deepEqual(on(s.capabilities), ['auto-converge', 'events', 'pause-before-switchover', 'return-path', 'validate-uuid']);
  assert.ok(s.capabilities.some((c) => c.capability === 'postcopy-ram' && !c.state), 'post-copy explicitly off');
  assert.equal(s.parameters['downtime-limit'], 50);
  assert.equal(s.parameters['max-cpu-throttle'], HELD_THROTTLE_PERCENT);
  assert.ok((s.parameters['max-cpu-throttle'] ?? 0) >= (s.parameters['cpu-throttle-initial'] ?? 0), 'QEMU refuses max < initial');
  const p = sourceSettings({ ...DEFAULT_POLICY, allowAutoConverge: false, allowPostcopy: true }, 1000);
  assert.deepEqual(on(p.capabilities), ['events', 'pause-before-switchover', 'postcopy-ram', 'return-path', 'validate-uuid']);
  assert.equal(p.parameters['max-bandwidth'], 1000);
  assert.equal(p.parameters['max-cpu-throttle'], undefined);
});

test('destination settings: both-ends capabilities and announce pacing', () => {
  const d = destinationSettings({ ...DEFAULT_POLICY, allowPostcopy: true });
  assert.deepEqual(on(d.capabilities), ['events', 'postcopy-ram', 'return-path']);
  assert.equal(d.parameters['announce-rounds'], 5);
});


test('performance options: the same multifd capability and parameters at both ends', () => {
  const cases: [PerformanceOption, boolean, number | undefined, string | undefined][] = [
    ['tcp', false, undefined, undefined],
    ['multichannel', true, 4, 'none'],
    ['compression', true, 2, 'zstd'],
  ];
  for (const [opt, multifd, channels, compression] of cases) {
    const src = sourceSettings(DEFAULT_POLICY, undefined, opt);
    const dst = destinationSettings(DEFAULT_POLICY, opt);
    for (const [side, s] of [['source', src], ['destination', dst]] as const) {
      const cap = s.capabilities.find((c) => c.capability === 'multifd');
      assert.equal(cap?.state, multifd, `${opt} ${side}: multifd is set explicitly (${multifd})`);
      assert.equal(s.parameters['multifd-channels'], channels, `${opt} ${side}: channels`);
      assert.equal(s.parameters['multifd-compression'], compression, `${opt} ${side}: compression`);
    }
  }
  assert.equal(sourceSettings(DEFAULT_POLICY).parameters['max-bandwidth'], DEFAULT_MAX_BANDWIDTH, 'no cap: effectively unlimited');
});

test('resolveMoveOptions: post-copy, performance and bandwidth as the source records them', () => {
  const host = { ...DEFAULT_HOST_SETTINGS, performance: 'multichannel' as const, maxBandwidthBytesPerSec: 1000 };
  const r = resolveMoveOptions({ includeStorage: false }, host);
  assert.deepEqual(r, { includeStorage: false, allowPostcopy: false, performance: 'multichannel', maxBandwidthBytesPerSec: 1000 });
  assert.equal(resolveMoveOptions({ includeStorage: false, maxBandwidthBytesPerSec: 500 }, host).maxBandwidthBytesPerSec, 500, 'the smaller cap wins');
  assert.equal(resolveMoveOptions({ includeStorage: false, maxBandwidthBytesPerSec: 5000 }, host).maxBandwidthBytesPerSec, 1000, 'the smaller cap wins');
  assert.equal(resolveMoveOptions({ includeStorage: false }, DEFAULT_HOST_SETTINGS).maxBandwidthBytesPerSec, undefined, 'no caps: none');
  const pc = resolveMoveOptions({ includeStorage: false, allowPostcopy: true }, host);
  assert.equal(pc.performance, 'tcp', 'a move that may switch to post-copy uses one TCP stream (no multifd post-copy in QEMU 7.2)');
  assert.equal(resolveMoveOptions({ includeStorage: false }, { ...DEFAULT_HOST_SETTINGS, allowPostcopy: true }).allowPostcopy, true, 'the host allows it');
});

test('transport security: TLS parameters per end, cleared when unencrypted; plain only when both hosts allow it', () => {
  assert.deepEqual(tlsParameters({ creds: 'c', hostname: 'h2' }, 'source'), { 'tls-creds': 'c', 'tls-hostname': 'h2' });
  assert.deepEqual(tlsParameters({ creds: 'c', authz: 'a' }, 'destination'), { 'tls-creds': 'c', 'tls-authz': 'a' });
  assert.deepEqual(tlsParameters(undefined, 'source'), { 'tls-creds': '', 'tls-hostname': '' });
  assert.deepEqual(tlsParameters(undefined, 'destination'), { 'tls-creds': '', 'tls-authz': '' });
  for (const [s, d, plain] of [[false, false, false], [true, false, false], [false, true, false], [true, true, true]] as const) {
    assert.equal(movesInPlain(s, d), plain, `source ${s}, destination ${d}`);
  }
  assert.equal(DEFAULT_HOST_SETTINGS.allowInsecureMigration, false, 'encrypted by default');
});
