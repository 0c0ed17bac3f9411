// Integration: host identity and the encrypted data path (issue 6, points 1 and 2) on real QEMU in a
// 2-host lab: moves travel over TLS by default, a capture of one shows no guest memory, a peer
// with a certificate of another CA is refused, garbage on a TLS migration port harms nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clientNsName, labStatus, nsName } from '../src/lab/index.js';
import { initCa, issueHostCert } from '../src/security/index.js';
import { labDir } from '../src/util/paths.js';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRunsOnce, guestState, waitGuest } from './support/invariants.js';

const run = promisify(execFile);
const suite = labSuite('tl');
const LAB = suite.name;
const { lab, track } = suite;

interface MoveJson { id: string; status: string; encrypted: boolean | null; totalMs: number | null; downtimeMs: number | null; error?: { code: string } }

async function createVm(name: string, host: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', host, '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

async function move(name: string, to: string): Promise<MoveJson> {
  const r = await ferry<MoveJson>(['move', name, '--to', to, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json;
}

async function insecure(host: string, on: boolean): Promise<void> {
  const r = await ferry<{ allowInsecureMigration: boolean }>(['host', 'settings', host, '--insecure-migration', on ? 'on' : 'off', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.allowInsecureMigration, on);
}

/** Runs `fn` while tcpdump records host `host`'s uplink; resolves with the capture's bytes. */
async function captured(host: string, fn: () => Promise<void>): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cap-'));
  const file = join(dir, 'cap.pcap');
  const dump = spawn('ip', ['netns', 'exec', nsName(LAB, host), 'tcpdump', '-i', 'eth0', '-U', '-s', '0', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  dump.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  try {
    await waitFor('tcpdump listening', async () => /listening on/.test(err), 15_000);
    await fn();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    if (dump.exitCode === null && dump.signalCode === null) {
      const exited = new Promise((r) => dump.once('exit', r));
      dump.kill('SIGINT');
      await exited;
    }
  }
  const bytes = readFileSync(file);
  rmSync(dir, { recursive: true, force: true });
  return bytes;
}

test('a default move is encrypted, and its capture holds no plaintext of the guest\'s memory; an insecure one does', track(async () => {
  // The VM's name is on the guest kernel's command line, so it lies in guest memory.
  const marker = `mk7q9z${process.pid % 100_000}`;
  const vm = await createVm(marker, 'h1');
  const before = await guestState(LAB, vm.ip);

  let moved: MoveJson | undefined;
  const tls = await captured('h2', async () => { moved = await move(marker, 'h2'); });
  assert.equal(moved?.status, 'completed', JSON.stringify(moved));
  assert.equal(moved?.encrypted, true, 'the summary says the move was encrypted');
  const shown = await ferry<MoveJson>(['migration', 'show', moved?.id ?? '', '--json']);
  assert.equal(shown.json.encrypted, true, 'so does the job');
  assert.ok(tls.length > 50 * 1024 * 1024, `the capture holds the stream (${tls.length} bytes)`);
  assert.equal(tls.includes(marker), false, 'no plaintext of the marker in a default move');
  await assertRunsOnce(LAB, marker, 'h2');
  const mid = await assertGuestIntact(LAB, vm.ip, before);

  await insecure('h2', true);
  const oneSided = await ferry<MoveJson>(['move', marker, '--to', 'h1', '--json']);
  assert.equal(oneSided.code, 0, oneSided.stderr);
  assert.equal(oneSided.json.encrypted, true, 'one host allowing plain TCP is not enough');
  await insecure('h1', true);
  let plain: MoveJson | undefined;
  const cap = await captured('h1', async () => { plain = await move(marker, 'h2'); });
  assert.equal(plain?.status, 'completed');
  assert.equal(plain?.encrypted, false, 'both allow it: the summary says unencrypted');
  // h1 is the source here; its uplink carries the stream too.
  assert.equal(cap.includes(marker), true, 'the marker travels in plain sight when both hosts allow it');
  await insecure('h1', false);
  await insecure('h2', false);
  await assertRunsOnce(LAB, marker, 'h2');
  await assertGuestIntact(LAB, vm.ip, mid);
  console.log(`tls move: total ${moved?.totalMs} ms, downtime ${moved?.downtimeMs} ms; plain: total ${plain?.totalMs} ms, downtime ${plain?.downtimeMs} ms`);
  assert.equal((await ferry(['vm', 'delete', marker])).code, 0);
}));

test('a peer with a certificate from another CA is refused before anything happens', track(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-rogue-'));
  try {
    await initCa(join(dir, 'ca'));
    const rogue = await issueHostCert({ caDir: join(dir, 'ca'), name: 'h2', addresses: ['10.77.0.2'], outDir: join(dir, 'h2') });
    const good = join(labDir(LAB), 'h2', 'tls');
    const ca = join(labDir(LAB), 'ca', 'ca-cert.pem');
    const h1 = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1');
    assert.ok(h1);
    const curl = async (cert: string, key: string, path: string, body?: string): Promise<{ status: string; body: string }> => {
      const args = ['netns', 'exec', clientNsName(LAB), 'curl', '-s', '--max-time', '10', '--cacert', ca, '--cert', cert, '--key', key,
        '-w', '\n%{http_code}', ...(body ? ['-H', 'content-type: application/json', '-d', body] : []), `${h1.url}${path}`];
      const r = await run('ip', args).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
      const lines = r.stdout.trimEnd().split('\n');
      return { status: lines.pop() ?? '', body: lines.join('\n') };
    };
    const ping = await curl(rogue.cert, rogue.key, '/v1/peer/ping');
    assert.equal(ping.status, '403', ping.body);
    assert.match(ping.body, /PEER_UNTRUSTED/);
    const prep = await curl(rogue.cert, rogue.key, '/v1/peer/migrations/rogue-1/prepare', '{"protocol":1,"jobId":"rogue-1"}');
    assert.equal(prep.status, '403', prep.body);
    assert.match(prep.body, /PEER_UNTRUSTED/);
    const cancel = await curl(rogue.cert, rogue.key, '/v1/peer/migrations/rogue-1/cancel', '{"protocol":1,"jobId":"rogue-1","reason":"x"}');
    assert.equal(cancel.status, '403', 'before any handler runs');
    // The same request with h2's real certificate is a peer's.
    const ok = await curl(join(good, 'client-cert.pem'), join(good, 'client-key.pem'), '/v1/peer/ping');
    assert.equal(ok.status, '200', ok.body);
    const jobs = await ferry<unknown[]>(['migration', 'list', '--json']);
    assert.ok(Array.isArray(jobs.json) && !JSON.stringify(jobs.json).includes('rogue-1'), 'no job was recorded');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}));

/**
 * In host `host`'s namespace, waits (polling every 10 ms) until a QEMU listens on TCP, then writes
 * plain bytes to each of its ports at once, before the source connects; resolves with the ports.
 */
async function garbageToQemuPorts(host: string, address: string): Promise<string[]> {
  const script = `for i in $(seq 1 12000); do
  ports=$(ss -Hltnp | grep qemu-system | sed -E 's/^\\S+\\s+\\S+\\s+\\S+\\s+\\S+:([0-9]+)\\s.*/\\1/')
  if [ -n "$ports" ]; then
    for p in $ports; do (exec 3<>/dev/tcp/${address}/$p && printf 'GET / HTTP/1.0\\r\\n\\r\\n%0512d' 0 >&3; sleep 1) & done
    wait; echo $ports; exit 0
  fi
  sleep 0.01
done
exit 1`;
  const { stdout } = await run('ip', ['netns', 'exec', nsName(LAB, host), 'bash', '-c', script], { timeout: 200_000 });
  return stdout.trim().split(/\s+/);
}

test('plain bytes to a TLS migration port: refused by QEMU, the move completes, the VM runs once and intact', track(async () => {
  const vm = await createVm('garbage', 'h1');
  const before = await guestState(LAB, vm.ip);
  const up = await lab(['up', '--bandwidth', '100mbit', '--json']);
  assert.equal(up.code, 0, up.stderr);
  try {
    // The incoming QEMU listens from prepare on; garbage reaches each of its ports as soon as it does.
    const garbage = garbageToQemuPorts('h2', '10.77.0.12');
    const started = await ferry<{ id: string }>(['move', 'garbage', '--to', 'h2', '--no-wait', '--json']);
    assert.equal(started.code, 0, started.stderr);
    const ports = await garbage;
    const end = await waitFor('the move ended', async () => {
      const j = await ferry<MoveJson>(['migration', 'show', started.json.id, '--json']);
      return ['completed', 'failed', 'cancelled'].includes(j.json.status) ? j.json : undefined;
    }, 180_000);
    const where = end.status === 'completed' ? 'h2' : 'h1';
    await assertRunsOnce(LAB, 'garbage', where);
    await assertGuestIntact(LAB, vm.ip, before);
    assert.equal(end.status, 'completed', `garbage on ${ports.join(', ')} did not disturb the move: ${JSON.stringify(end)}`);
  } finally {
    await lab(['up', '--bandwidth', 'none', '--json']);
  }
}));
