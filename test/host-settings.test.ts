// Integration: host migration settings (issue 5, point 1) on real QEMU in a 2-host lab, through the
// CLI: they round-trip and survive an agent restart; migration turned off refuses a move with
// MIGRATION_DISABLED and leaves the VM untouched on its source; the multifd performance options
// (multichannel, compression) move a VM there and back with its memory intact, which only works
// when both QEMUs agree on the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labStatus } from '../src/lab/index.js';
import type { HostView, VmView } from '../src/agent/views.js';
import type { HostSettings } from '../src/migration/index.js';
import { labSuite } from './support/suite.js';
import { ferry, processAlive, waitFor } from './support/cli.js';
import {
  agentGet, assertGuestIntact, assertRolledBack, assertRunsOnce, beforeMove, freeMemoryMiB, guestState, waitGuest,
} from './support/invariants.js';

const suite = labSuite('hs');
const LAB = suite.name;
const { lab, track } = suite;

interface MoveJson { id: string; status: string; totalMs: number | null; downtimeMs: number | null; transferredBytes: number | null; error?: { code: string; message: string } }
/** `ferry migration show --json`. */
interface JobJson extends MoveJson { performance: string; maxBandwidthBytesPerSec: number | null }

async function settings(host: string, flags: string[] = []): Promise<HostSettings> {
  const r = await ferry<HostSettings>(['host', 'settings', host, ...flags, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

async function createVm(name: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

const RESET = ['--enable-migration', '--performance', 'tcp', '--any-network', '--max-bandwidth', 'none', '--downtime-target', '50', '--max-migrations', '2', '--postcopy', 'off'];

test('settings round-trip through the CLI and survive an agent restart', track(async () => {
  const s = await settings('h1', ['--max-migrations', '3', '--max-storage-migrations', '4', '--performance', 'compression',
    '--migration-network', '10.99.0.0/16:5', '--migration-network', '10.98.0.0/24', '--max-bandwidth', '1gbit', '--downtime-target', '80', '--outgoing', 'off']);
  const want: HostSettings = {
    incomingEnabled: true, outgoingEnabled: false, maxMigrations: 3, maxStorageMigrations: 4, performance: 'compression',
    networks: [{ cidr: '10.99.0.0/16', priority: 5 }, { cidr: '10.98.0.0/24', priority: 2 }],
    maxBandwidthBytesPerSec: 125_000_000, downtimeTargetMs: 80, allowPostcopy: false, allowInsecureMigration: false,
  };
  assert.deepEqual(s, want, 'the command answers the settings it made');
  const shown = await ferry<HostView>(['host', 'show', 'h1', '--json']);
  assert.deepEqual(shown.json.settings, want, 'ferry host show carries them');
  assert.equal((await settings('h2')).performance, 'tcp', 'h2 keeps its own settings');

  const bad = await ferry(['host', 'settings', 'h1', '--max-migrations', '0']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^error INVALID_INPUT: maxMigrations must be a whole number from 1 to 64/);
  const combo = await ferry(['host', 'settings', 'h1', '--postcopy', 'on']);
  assert.match(combo.stderr, /INVALID_INPUT: Post-copy cannot be allowed with the compression performance option/);

  const pid = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.agentPid;
  assert.ok(pid, 'h1 has an agent');
  process.kill(pid, 'SIGKILL');
  await waitFor('h1\'s agent gone', async () => !processAlive(pid), 15_000);
  const up = await lab(['up', '--json']);
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(await settings('h1'), want, 'the settings survive an agent restart');
  assert.deepEqual(await settings('h1', RESET),
    { ...want, outgoingEnabled: true, maxMigrations: 2, performance: 'tcp', networks: [], maxBandwidthBytesPerSec: null, downtimeTargetMs: 50 });
}));

test('migration turned off: a move is refused with MIGRATION_DISABLED and the VM stays untouched on h1', track(async (t) => {
  const vm = await createVm('hs-off');
  try {
    await settings('h2', ['--disable-migration']);
    const b = await beforeMove(LAB, vm.name, 'h2');
    const r = await ferry<MoveJson>(['move', vm.name, '--to', 'h2', '--json']);
    t.diagnostic(`move to a host with incoming off: exit ${r.code} ${r.stdout.replace(/\s+/g, ' ').slice(0, 300)}`);
    assert.notEqual(r.code, 0, 'the move fails');
    // The compatibility report every move runs first names it (INCOMPATIBLE with the MIGRATION_DISABLED line), or prepare refuses it.
    assert.match(r.stdout + r.stderr, /MIGRATION_DISABLED/);
    assert.match(r.stdout + r.stderr, /h2/);
    await assertRolledBack(LAB, vm.name, b);

    await settings('h2', ['--enable-migration']);
    await settings('h1', ['--outgoing', 'off']);
    const out = await ferry(['move', vm.name, '--to', 'h2']);
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /^error MIGRATION_DISABLED: Host h1 does not allow outgoing live migrations/);
    await assertRunsOnce(LAB, vm.name, 'h1');
  } finally {
    await settings('h1', RESET);
    await settings('h2', RESET);
    await ferry(['vm', 'delete', vm.name]);
  }
}));

test('incoming turned off while a move waits in the queue: prepare refuses it, the source rolls back, the VM is untouched', track(async (t) => {
  const a = await createVm('hs-qa');
  const b = await createVm('hs-qb');
  try {
    await settings('h1', ['--max-migrations', '1']);
    const pb = await assertRunsOnce(LAB, b.name, 'h1');
    const guestB = await guestState(LAB, b.ip);
    const h2Free = await freeMemoryMiB('h2');
    // The first move holds h1's only slot for a few seconds (capped at 20 MiB/s); the second passes its
    // compatibility report (h2 still takes moves) and waits in the queue.
    const first = await ferry<{ id: string }>(['move', a.name, '--to', 'h2', '--max-bandwidth', '20M/s', '--no-wait', '--json']);
    assert.equal(first.code, 0, first.stderr || first.stdout);
    const second = await ferry<{ id: string; status: string }>(['move', b.name, '--to', 'h2', '--no-wait', '--json']);
    assert.equal(second.code, 0, second.stderr || second.stdout);
    assert.equal(second.json.status, 'queued', 'the second move waits for the slot');
    await settings('h2', ['--incoming', 'off']);
    const ended = async (id: string): Promise<JobJson> => waitFor(`job ${id} ended`, async () => {
      const j = await ferry<JobJson>(['migration', 'show', id, '--json']);
      return j.code === 0 && ['completed', 'failed', 'cancelled'].includes(j.json.status) ? j.json : undefined;
    }, 120_000);
    const ja = await ended(first.json.id);
    assert.equal(ja.status, 'completed', JSON.stringify(ja.error));
    assert.equal(ja.maxBandwidthBytesPerSec, 20 * 1024 ** 2, 'the move recorded its own cap');
    t.diagnostic(`capped move: total ${ja.totalMs} ms for ${ja.transferredBytes} bytes`);
    const jb = await ended(second.json.id);
    t.diagnostic(`queued move: ${jb.status} ${jb.error?.code}: ${jb.error?.message}`);
    assert.equal(jb.status, 'failed');
    assert.equal(jb.error?.code, 'MIGRATION_DISABLED');
    assert.match(jb.error?.message ?? '', /h2 does not accept incoming live migrations/);
    await assertRolledBack(LAB, b.name, {
      host: 'h1', pid: pb.pid, ip: b.ip, guest: guestB, destination: 'h2', destFreeMiB: h2Free - a.memoryMiB,
    });
  } finally {
    await settings('h1', RESET);
    await settings('h2', RESET);
    await ferry(['vm', 'delete', a.name]);
    await ferry(['vm', 'delete', b.name]);
  }
}));

// tcp as the baseline the two multifd options are read against (the diagnostics print each move's times).
for (const option of ['tcp', 'multichannel', 'compression'] as const) {
  test(`performance ${option}: a VM moves h1→h2 and back with its memory intact`, track(async (t) => {
    const vm = await createVm(`hs-${option.slice(0, 5)}`);
    try {
      for (const h of ['h1', 'h2']) assert.equal((await settings(h, ['--performance', option])).performance, option);
      let g = await guestState(LAB, vm.ip);
      for (const [from, to] of [['h1', 'h2'], ['h2', 'h1']] as const) {
        const r = await ferry<MoveJson>(['move', vm.name, '--to', to, '--json']);
        assert.equal(r.code, 0, r.stderr || r.stdout);
        assert.equal(r.json.status, 'completed', JSON.stringify(r.json.error));
        t.diagnostic(`${option} ${from}→${to}: total ${r.json.totalMs} ms, downtime ${r.json.downtimeMs} ms, ${r.json.transferredBytes} bytes`);
        // The destination's own record: it prepared its QEMU for the same option.
        const sock = (await labStatus(LAB)).hosts.find((h) => h.name === to)?.socket ?? '';
        const rec = await agentGet<{ performance: string; role: string }>(sock, `/v1/migrations/${r.json.id}`);
        assert.deepEqual([rec.role, rec.performance], ['destination', option]);
        await assertRunsOnce(LAB, vm.name, to);
        g = await assertGuestIntact(LAB, vm.ip, g);
      }
    } finally {
      for (const h of ['h1', 'h2']) await settings(h, RESET);
      await ferry(['vm', 'delete', vm.name]);
    }
  }));
}
