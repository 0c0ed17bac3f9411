// Integration: an incoming migration is accepted only for a job its own agent prepared (issue 6,
// point 4) and garbage bytes to a prepared incoming port harm nothing but that job (point 5), on
// real QEMU in a 2-host lab, with unencrypted moves allowed on both hosts so that no TLS handshake
// stands between the garbage and the destination QEMU's migration stream. Also: QEMU refuses
// a stream for another VM under Ferry's source settings (validate-uuid).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clientNsName, labStatus, nsName } from '../src/lab/index.js';
import { DEFAULT_POLICY, sourceSettings } from '../src/migration/index.js';
import { QmpClient } from '../src/qmp/index.js';
import { labDir } from '../src/util/paths.js';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRolledBack, assertRunsOnce, beforeMove, guestState, waitGuest } from './support/invariants.js';

const run = promisify(execFile);
// The shared machine can be so loaded that an agent needs more than the default 20 s to start.
const suite = labSuite('si', { lab: { readyTimeoutMs: 120_000 } });
const LAB = suite.name;
const { track } = suite;
const H2_ADDRESS = '10.77.0.12';

interface MoveJson { id: string; status: string; encrypted: boolean | null; error?: { code: string; message: string } }

async function createVm(name: string, host: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', host, '--memory', '128M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

async function insecure(host: string, on: boolean): Promise<void> {
  const r = await ferry<{ allowInsecureMigration: boolean }>(['host', 'settings', host, '--insecure-migration', on ? 'on' : 'off', '--json']);
  assert.equal(r.code, 0, r.stderr);
}

/**
 * Waits (polling every 10 ms in h2's namespace) until a QEMU there listens on TCP, then sends
 * garbage to that port from the lab's client namespace, keeping the connection open for a second.
 * Resolves with the port.
 */
async function garbageToIncomingPort(): Promise<string> {
  const script = `for i in $(seq 1 12000); do
  p=$(ss -Hltnp | grep qemu-system | sed -E 's/^\\S+\\s+\\S+\\s+\\S+\\s+\\S+:([0-9]+)\\s.*/\\1/' | head -1)
  if [ -n "$p" ]; then
    ip netns exec ${clientNsName(LAB)} bash -c "exec 3<>/dev/tcp/${H2_ADDRESS}/$p && head -c 65536 /dev/urandom >&3; sleep 1" || true
    echo $p; exit 0
  fi
  sleep 0.01
done
exit 1`;
  const { stdout } = await run('ip', ['netns', 'exec', nsName(LAB, 'h2'), 'bash', '-c', script], { timeout: 200_000 });
  return stdout.trim();
}

/**
 * Throttles everything leaving h1 to 16 kbit/s (tbf on its uplink; the lab's kernel has no netem),
 * so that the source's perform-ready and its QEMU's connection trail the garbage by seconds; null
 * lifts it.
 */
async function throttleH1(on: boolean): Promise<void> {
  const args = on ? ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', '16kbit', 'burst', '4kb', 'latency', '30s'] : ['qdisc', 'del', 'dev', 'eth0', 'root'];
  await run('ip', ['netns', 'exec', nsName(LAB, 'h1'), 'tc', ...args]).catch((e: unknown) => { if (on) throw e; });
}

test('garbage to a prepared incoming port: that job fails with a code, the VM stays on the source, the destination and its VMs are unharmed', track(async () => {
  const bystander = await createVm('stay', 'h2');
  const vm = await createVm('victim', 'h1');
  const stayBefore = await assertRunsOnce(LAB, 'stay', 'h2');
  const stayGuest = await guestState(LAB, bystander.ip);
  await insecure('h1', true);
  await insecure('h2', true);
  try {
    const before = await beforeMove(LAB, 'victim', 'h2');
    await throttleH1(true);
    const garbage = garbageToIncomingPort();
    const moved = await ferry<MoveJson>(['move', 'victim', '--to', 'h2', '--json']);
    const port = await garbage;
    await throttleH1(false);
    assert.notEqual(moved.code, 0, `the move must fail: ${moved.stdout}`);
    const job = moved.json.id ? moved.json : (await ferry<MoveJson[]>(['migration', 'list', '--json'])).json.find((j) => j.status === 'failed');
    assert.ok(job, `a failed job is listed: ${moved.stdout} ${moved.stderr}`);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'MIGRATION_INCOMING_FAILED', `garbage on port ${port}: ${JSON.stringify(job)}`);
    // Invariant 2: same QEMU on h1, guest intact; on h2 no QEMU, no run folder, its memory back.
    await assertRolledBack(LAB, 'victim', before);
    const stay = await assertRunsOnce(LAB, 'stay', 'h2');
    assert.equal(stay.pid, stayBefore.pid, 'the VM already on h2 runs in the same QEMU');
    await assertGuestIntact(LAB, bystander.ip, stayGuest);
    // The destination agent still takes moves: the same VM moves now, unencrypted as allowed.
    const again = await ferry<MoveJson>(['move', 'victim', '--to', 'h2', '--json']);
    assert.equal(again.code, 0, again.stderr || again.stdout);
    assert.equal(again.json.status, 'completed');
    await assertRunsOnce(LAB, 'victim', 'h2');
    await assertGuestIntact(LAB, vm.ip, before.guest);
  } finally {
    await throttleH1(false);
    await insecure('h1', false);
    await insecure('h2', false);
  }
  assert.equal((await ferry(['vm', 'delete', 'victim'])).code, 0);
}));

/** curl in the client namespace with h1's host certificate against h2's peer API. */
async function asH1(path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const h2 = (await labStatus(LAB)).hosts.find((h) => h.name === 'h2');
  assert.ok(h2);
  const tls = join(labDir(LAB), 'h1', 'tls');
  const args = ['netns', 'exec', clientNsName(LAB), 'curl', '-s', '--max-time', '120', '--cacert', join(labDir(LAB), 'ca', 'ca-cert.pem'),
    '--cert', join(tls, 'client-cert.pem'), '--key', join(tls, 'client-key.pem'), '-w', '\n%{http_code}',
    ...(body ? ['-H', 'content-type: application/json', '-d', JSON.stringify(body)] : []), `${h2.url}${path}`];
  const r = await run('ip', args).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(lines.join('\n')) as Record<string, unknown>; } catch { /* not JSON */ }
  return { status, json };
}

test('a prepared job answers only its secret; garbage to its port makes the destination roll it back on its own', track(async () => {
  const model = (await ferry<VmView[]>(['vm', 'list', '--json'])).json.find((v) => v.host === 'h2');
  assert.ok(model?.machine && model.cpuModel, 'a VM on h2 gives the machine type and CPU model');
  const uuid = randomUUID();
  const id = `si-${uuid.slice(0, 8)}`;
  const spec = {
    name: 'ghost', uuid, memoryMiB: 128, cpus: 1, cpuModel: model.cpuModel, machine: model.machine,
    mac: `52:54:00:${uuid.slice(0, 2)}:${uuid.slice(2, 4)}:${uuid.slice(4, 6)}`, ip: '10.77.1.240', prefixLength: 16, disks: [], ha: false,
  };
  await insecure('h2', true);
  try {
    const prep = await asH1(`/v1/peer/migrations/${id}/prepare`, {
      protocol: 1, jobId: id, vm: spec, source: 'h1', destination: 'h2', options: { includeStorage: false }, allowInsecure: true,
    });
    assert.equal(prep.status, 200, JSON.stringify(prep.json));
    assert.match(String(prep.json.secret), /^[A-Za-z0-9_-]{43}$/, 'the reply carries the job secret');
    assert.equal(prep.json.encrypted, false);
    for (const secret of [undefined, 'A'.repeat(43)]) {
      const r = await asH1(`/v1/peer/migrations/${id}/perform-ready`, { protocol: 1, jobId: id, ...(secret ? { secret } : {}) });
      assert.equal(r.status, 403, JSON.stringify(r.json));
      assert.equal((r.json.error as { code: string }).code, 'JOB_SECRET_INVALID');
      const c = await asH1(`/v1/peer/migrations/${id}/cancel`, { protocol: 1, jobId: id, reason: 'not mine', ...(secret ? { secret } : {}) });
      assert.equal((c.json.error as { code: string } | undefined)?.code, 'JOB_SECRET_INVALID', 'nor can anyone else cancel it');
    }
    const port = /:(\d+)$/.exec(String(prep.json.migrationUri))?.[1];
    assert.ok(port);
    await run('ip', ['netns', 'exec', clientNsName(LAB), 'bash', '-c', `exec 3<>/dev/tcp/${H2_ADDRESS}/${port} && head -c 65536 /dev/urandom >&3; sleep 1`]).catch(() => undefined);
    const st = await waitFor('h2 rolled the job back', async () => {
      const r = await asH1(`/v1/peer/migrations/${id}`);
      const j = r.json.job as { status: string; error?: { code: string } } | null;
      return j && j.status === 'failed' ? r.json : undefined;
    }, 30_000);
    assert.equal((st.job as { error: { code: string } }).error.code, 'MIGRATION_INCOMING_FAILED');
    assert.equal((st.qemu as { alive: boolean }).alive, false, 'the incoming QEMU is gone');
    const vms = await ferry<VmView[]>(['vm', 'list', '--json']);
    assert.ok(!vms.json.some((v) => v.name === 'ghost'), 'h2 keeps no VM of the job');
  } finally {
    await insecure('h2', false);
  }
}));

test('QEMU under Ferry\'s source settings refuses a stream for another VM (validate-uuid)', track(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-uuid-'));
  const qemu = (uuid: string, extra: string[]) => spawn('qemu-system-x86_64', [
    '-machine', 'none', '-nodefaults', '-display', 'none', '-uuid', uuid, '-qmp', `unix:${join(dir, `${uuid}.qmp`)},server=on,wait=off`, ...extra,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const src = qemu(randomUUID(), []);
  const dst = qemu(randomUUID(), ['-incoming', `unix:${join(dir, 'mig.sock')}`]);
  let dstErr = '';
  dst.stderr.on('data', (c: Buffer) => { dstErr += c.toString(); });
  const dstExit = new Promise<number | null>((r) => dst.once('exit', r));
  try {
    const qmpPath = join(dir, `${String(src.spawnargs[src.spawnargs.indexOf('-uuid') + 1])}.qmp`);
    const qmp = await waitFor('the source QMP socket', async () => QmpClient.connect(qmpPath).catch(() => undefined), 10_000);
    const caps = await qmp.execute('query-migrate-capabilities');
    assert.ok(caps.some((c) => c.capability === 'validate-uuid'), 'QEMU (7.2 and later) has validate-uuid');
    const s = sourceSettings(DEFAULT_POLICY);
    assert.ok(s.capabilities.some((c) => c.capability === 'validate-uuid' && c.state), 'Ferry turns it on for every move');
    await qmp.execute('migrate-set-capabilities', { capabilities: s.capabilities.filter((c) => c.capability === 'validate-uuid') });
    // Both QEMUs start at once: the destination must listen before the source connects.
    await waitFor('the destination listening', async () => existsSync(join(dir, 'mig.sock')), 10_000);
    await qmp.execute('migrate', { uri: `unix:${join(dir, 'mig.sock')}` });
    const code = await Promise.race([dstExit, new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000))]);
    assert.equal(code, 1, `the destination QEMU gives up the incoming migration (${dstErr.trim()})`);
    assert.match(dstErr, /UUID received is .* and local is/);
    await qmp.close();
  } finally {
    src.kill();
    dst.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}));
