import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeKey, resolveAccel } from './index.js';

// The probe with stand-ins: a file as the KVM device, shell scripts as QEMU. One stand-in hangs
// like a Linux kernel under nested KVM here; one prints the guest's ready line like a good boot.
const dir = mkdtempSync(join(tmpdir(), 'accel-'));
const guest = { kernel: '/k', initrd: '/i', marker: 'FERRY-GUEST-READY' };
const script = (name: string, body: string): string => {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
};
// The serial log path follows "-serial file:PATH" in the arguments.
const hangs = script('qemu-hangs', 'exec sleep 60');
const boots = script('qemu-boots', 'for a in "$@"; do case "$a" in file:*) f="${a#file:}";; esac; done; echo FERRY-GUEST-READY > "$f"; exec sleep 60');
const kvm = join(dir, 'kvm');
writeFileSync(kvm, '');

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('auto: a KVM device that cannot boot Linux ends on TCG within the timeout, and the answer is recorded', async () => {
  const cache = join(dir, 'hang.json');
  const t0 = Date.now();
  const r = await resolveAccel('auto', guest, cache, { kvmDevice: kvm, qemuBin: hangs, timeoutMs: 1500 });
  assert.equal(r.accel, 'tcg');
  assert.ok(Date.now() - t0 < 5000, 'no hang');
  assert.match(r.reason, /did not reach/);
  assert.equal(JSON.parse(readFileSync(cache, 'utf8')).key, probeKey());
  const again = await resolveAccel('auto', guest, cache, { kvmDevice: kvm, qemuBin: boots, timeoutMs: 1500 });
  assert.equal(again.accel, 'tcg', 'the recorded answer holds for this host and kernel');
});

test('auto: a probe boot that reaches the guest\'s init picks KVM; no device picks TCG; explicit modes win', async () => {
  assert.equal((await resolveAccel('auto', guest, join(dir, 'boots.json'), { kvmDevice: kvm, qemuBin: boots, timeoutMs: 5000 })).accel, 'kvm');
  assert.equal((await resolveAccel('auto', guest, join(dir, 'none.json'), { kvmDevice: join(dir, 'absent') })).accel, 'tcg');
  assert.equal((await resolveAccel('kvm', guest, join(dir, 'x.json'))).accel, 'kvm');
  assert.equal((await resolveAccel('tcg', guest, join(dir, 'y.json'))).accel, 'tcg');
});
