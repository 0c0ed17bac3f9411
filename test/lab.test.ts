// Integration: the lab's network in real namespaces (needs root), then its agents once ferryd is built.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  clientNsName, healHost, isolateHost, killHost, labDown, labExec, labStatus, labUp, nsName, probeAgent,
  readRecord, withLab,
} from '../src/lab/index.js';
import { contextFile, labDir, repoRoot } from '../src/util/paths.js';

const run = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), 'ferry-lab-'));
process.env.FERRY_HOME = home;
delete process.env.FERRY_URL;
after(() => rmSync(home, { recursive: true, force: true }));

const LAB = `labt${process.pid}`;
const AGENT = join(repoRoot(), 'dist', 'src', 'agent', 'main.js');

// iputils' ping where installed, else busybox's (Debian's busybox-static is always there).
const PING = existsSync('/usr/bin/ping') || existsSync('/bin/ping') ? ['ping'] : ['busybox', 'ping'];

/** True when `ns` reaches `addr` with one ping. */
async function pings(ns: string, addr: string): Promise<boolean> {
  try {
    await run('ip', ['netns', 'exec', ns, ...PING, '-c1', '-W1', addr]);
    return true;
  } catch {
    return false;
  }
}

async function namespaces(): Promise<string[]> {
  const out = (await run('ip', ['-j', 'netns', 'list'])).stdout.trim();
  return out === '' ? [] : (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

const ours = async (lab: string): Promise<string[]> => (await namespaces()).filter((n) => n.startsWith(`${lab}-`)).sort();

/** Interface indexes of every link in `ns`: they change when a link is made again. */
async function ifindexes(ns: string): Promise<string> {
  const links = JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as { ifname: string; ifindex: number }[];
  return links.map((l) => `${l.ifname}:${l.ifindex}`).sort().join(',');
}

async function qdisc(ns: string, dev: string): Promise<string> {
  return (await run('tc', ['-n', ns, 'qdisc', 'show', 'dev', dev, 'root'])).stdout;
}

void test('lab network: build, reach, idempotent up, shaping, isolate/heal, kill-host, down', { timeout: 120_000 }, async () => {
  try {
    const st = await labUp({ name: LAB, hosts: 2, agents: false });
    assert.deepEqual(st.hosts.map((h) => [h.name, h.address, h.namespace, h.agentPid, h.link]), [
      ['h1', '10.77.0.11', `${LAB}-h1`, null, 'up'],
      ['h2', '10.77.0.12', `${LAB}-h2`, null, 'up'],
    ]);
    assert.deepEqual(st.client, { namespace: `${LAB}-client`, address: '10.77.0.2' });
    assert.deepEqual(await ours(LAB), [`${LAB}-client`, `${LAB}-h1`, `${LAB}-h2`, `${LAB}-sw`].sort());
    assert.deepEqual(await labStatus(LAB), st);
    const ctx = JSON.parse(readFileSync(contextFile(), 'utf8')) as { name: string; lab: string; hosts: { socket: string }[] };
    assert.equal(ctx.name, `lab:${LAB}`);
    assert.equal(ctx.hosts[0]?.socket, join(labDir(LAB), 'h1', 'api.sock'));

    const client = clientNsName(LAB);
    assert.equal(await pings(client, '10.77.0.11'), true, 'client reaches h1');
    assert.equal(await pings(client, '10.77.0.12'), true, 'client reaches h2');
    assert.equal(await pings(nsName(LAB, 'h1'), '10.77.0.12'), true, 'h1 reaches h2');
    // Rule 5: the root namespace has no address on the lab network.
    assert.doesNotMatch((await run('ip', ['-4', 'addr', 'show'])).stdout, /10\.77\./);

    const before = await Promise.all((await ours(LAB)).map(ifindexes));
    assert.deepEqual(await labUp({ name: LAB, agents: false }), st, 'up again changes nothing');
    assert.deepEqual(await Promise.all((await ours(LAB)).map(ifindexes)), before, 'no link was made again');

    const shaped = await labUp({ name: LAB, bandwidth: '100mbit', agents: false });
    assert.equal(shaped.bandwidth, '100mbit');
    for (const [ns, dev] of [[`${LAB}-sw`, 'h1'], [`${LAB}-h2`, 'eth0']] as const) assert.match(await qdisc(ns, dev), /tbf .*rate 100Mbit/);
    assert.equal((await labUp({ name: LAB, agents: false })).bandwidth, '100mbit', 'up without --bandwidth keeps it');
    assert.equal((await labUp({ name: LAB, bandwidth: 'none', agents: false })).bandwidth, null);
    assert.doesNotMatch(await qdisc(`${LAB}-sw`, 'h1'), /tbf/);

    await isolateHost(LAB, 'h1');
    assert.equal((await labStatus(LAB)).hosts[0]?.link, 'down');
    assert.equal(await pings(client, '10.77.0.11'), false, 'isolated h1 is cut off');
    assert.equal(await pings(client, '10.77.0.12'), true, 'h2 is not');
    await healHost(LAB, 'h1');
    assert.equal(await pings(client, '10.77.0.11'), true, 'healed h1 answers again');
    await assert.rejects(isolateHost(LAB, 'h9'), { code: 'UNKNOWN_HOST' });

    const sleeper = spawn('ip', ['netns', 'exec', nsName(LAB, 'h2'), 'sleep', '600'], { stdio: 'ignore' });
    const gone = new Promise((r) => sleeper.on('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await killHost(LAB, 'h2'), [sleeper.pid]);
    await gone;
    assert.equal(await labExec(LAB, ['sh', '-c', 'exit 3']), 3, 'exec reports the status of its command');

    // A lab whose record is lost is adopted as it stands, not rebuilt or refused.
    rmSync(labDir(LAB), { recursive: true, force: true });
    assert.deepEqual((await labUp({ name: LAB, agents: false })).hosts.length, 2);
    assert.deepEqual(await Promise.all((await ours(LAB)).map(ifindexes)), before);
  } finally {
    const down = await labDown(LAB);
    assert.equal(down.namespaces.length, 4);
  }
  assert.deepEqual(await ours(LAB), []);
  assert.equal(existsSync(labDir(LAB)), false);
  assert.equal(existsSync(contextFile()), false, 'the context pointed at the lab, so it went too');
  await assert.rejects(labStatus(LAB), { code: 'LAB_NOT_FOUND' });
  assert.deepEqual((await labDown(LAB)).namespaces, [], 'down of a missing lab is no error');
});

void test('lab agents: started, reachable, restarted when dead, killed with their host', {
  timeout: 180_000,
  skip: existsSync(AGENT) ? false : 'ferryd is not built (dist/src/agent/main.js)',
}, async () => {
  const name = `${LAB}a`;
  await withLab(name, 2, async (lab) => {
    const [h1, h2] = lab.hosts;
    assert.ok(h1?.agentPid && h2?.agentPid, 'both agents run');
    assert.equal(await probeAgent(h1.socket), true, 'h1 answers on its unix socket');
    // HTTPS with the host's certificate from the lab's CA; peer RPC needs a peer's certificate (test/security-tls.test.ts).
    const ca = join(labDir(name), 'ca', 'ca-cert.pem');
    const ask = async (path: string): Promise<string | undefined> => {
      const { stdout } = await run('ip', ['netns', 'exec', clientNsName(name), 'curl', '-s', '--max-time', '5', '--cacert', ca, `${h2.url}${path}`]);
      return (JSON.parse(stdout) as { error?: { code?: string } }).error?.code;
    };
    assert.equal(await ask('/v1/host'), 'UNAUTHENTICATED', 'h2 answers the client over the lab network, and wants a token');
    assert.equal(await ask('/v1/peer/ping'), 'PEER_UNTRUSTED', 'and refuses it peer RPC: it has no host certificate');
    const cfg = JSON.parse(readFileSync(join(labDir(name), 'h1', 'ferryd.json'), 'utf8')) as { peers: unknown };
    assert.deepEqual(cfg.peers, [{ name: 'h2', url: 'https://10.77.0.12:7700' }]);

    assert.deepEqual((await labUp({ name })).hosts.map((h) => h.agentPid), [h1.agentPid, h2.agentPid], 'up keeps running agents');
    await killHost(name, 'h1');
    assert.equal((await labStatus(name)).hosts[0]?.agentPid, null);
    const again = await labUp({ name });
    assert.ok(again.hosts[0]?.agentPid && again.hosts[0].agentPid !== h1.agentPid, 'up restarted the dead agent');
    assert.equal(again.hosts[1]?.agentPid, h2.agentPid);
    assert.equal(readRecord(name)?.hosts, 2);
  });
  assert.deepEqual(await ours(name), []);
});
