import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_POLICY, destinationSettings, HELD_THROTTLE_PERCENT, sourceSettings,
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

