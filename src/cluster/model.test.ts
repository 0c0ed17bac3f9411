import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../errors/index.js';
import { checkNoCopyElsewhere } from './model.js';

const code = (c: string) => (e: unknown): boolean => e instanceof FerryError && e.code === c;

test('checkNoCopyElsewhere: a host that did not answer, or one with a VM of that name in any state but stopped or failed, refuses a --register; stopped or failed ones, other names and this host do not', () => {
  const vms = (...l: [string, string][]): { name: string; state: string }[] => l.map(([name, state]) => ({ name, state }));
  assert.throws(() => checkNoCopyElsewhere('a', 'h1', [{ host: 'h2', vms: [] }, { host: 'h3', vms: null }]), (e: unknown) => code('AGENT_UNREACHABLE')(e) && /^h3 did not answer/.test((e as Error).message));
  // What a peer said instead of its VMs is in the message: a refusal does not pass with time.
  assert.throws(() => checkNoCopyElsewhere('a', 'h1', [{ host: 'h3', vms: null, error: 'PEER_UNTRUSTED: no' }]), (e: unknown) => code('AGENT_UNREACHABLE')(e) && /^h3 \(PEER_UNTRUSTED: no\) did not answer/.test((e as Error).message));
  // A state this release does not know (a newer peer's) counts as a copy.
  for (const state of ['running', 'paused', 'migrating', 'some-new-state']) {
    assert.throws(() => checkNoCopyElsewhere('a', 'h1', [{ host: 'h2', vms: vms(['a', state]) }]), (e: unknown) => code('VM_BAD_STATE')(e) && /runs on h2/.test((e as Error).message), state);
  }
  checkNoCopyElsewhere('a', 'h1', [
    { host: 'h1', vms: vms(['a', 'running']) },
    { host: 'h2', vms: vms(['a', 'stopped'], ['b', 'running']) },
    { host: 'h3', vms: vms(['a', 'failed']) },
  ]);
  checkNoCopyElsewhere('a', 'h1', []);
});
