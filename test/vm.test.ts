// Integration: the VM lifecycle on real QEMU in a 2-host lab, driven through the CLI as a user would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { labStatus } from '../src/lab/index.js';
import { nsName } from '../src/lab/plan.js';
import { tapName } from '../src/vm/index.js';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, processAlive, waitFor } from './support/cli.js';

const suite = labSuite('vmt');
const LAB = suite.name;
const { home, lab, track } = suite;

const show = async (name: string) => (await ferry<VmView>(['vm', 'show', name, '--json'])).json;
const qemuAlive = processAlive;

test('create a VM: running with an IP, answering from the client namespace', track(async () => {
  const r = await ferry<VmView>(['vm', 'create', 't1', '--host', 'h1', '--memory', '256M', '--disk', '64M', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const vm = await show('t1');
  assert.equal(vm.state, 'running');
  assert.equal(vm.host, 'h1');
  assert.match(vm.ip, /^10\.77\.1\.\d+$/);
  assert.ok(vm.pid && qemuAlive(vm.pid));
  assert.equal(vm.disks.length, 1);
  assert.equal(await waitFor('health', async () => (await guestGet(LAB, vm.ip, '/health')).trim() === 'ok'), true);
  assert.equal((await guestGet(LAB, vm.ip, '/disk/verify')).trim(), 'ok');
}));

test('SIGKILL of the agent: the VM keeps running with the same PID and is adopted again; the restarted agent deletes taps and tunnels nobody uses', track(async () => {
  const before1 = await show('t1');
  // What an agent killed while it deleted a tap and a tunnel in the background leaves (src/qemu/links.ts).
  const ns = nsName(LAB, 'h1');
  const links = (): string => execFileSync('ip', ['netns', 'exec', ns, 'ip', '-br', 'link', 'show'], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'tuntap', 'add', 'dev', 'fy00000000ab', 'mode', 'tap']);
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'fyx00000000ab', 'type', 'bridge']);
  const bootId = (await guestGet(LAB, before1.ip, '/boot-id')).trim();
  const c1 = Number(await guestGet(LAB, before1.ip, '/counter'));
  const st = await labStatus(LAB);
  const agentPid = st.hosts.find((h) => h.name === 'h1')?.agentPid;
  assert.ok(agentPid);
  process.kill(agentPid, 'SIGKILL');
  await waitFor('agent gone', async () => !qemuAlive(agentPid));
  assert.ok(before1.pid && qemuAlive(before1.pid), 'QEMU outlives its agent');
  const up = await lab(['up', '--json']);
  assert.equal(up.code, 0, up.stderr);
  const after1 = await show('t1');
  assert.equal(after1.state, 'running');
  assert.equal(after1.pid, before1.pid);
  const c2 = Number(await guestGet(LAB, after1.ip, '/counter'));
  assert.ok(c2 > c1, `counter kept growing (${c1} → ${c2})`);
  assert.equal((await guestGet(LAB, after1.ip, '/boot-id')).trim(), bootId);
  await waitFor('the leftover tap and tunnel deleted', async () => !/fyx?00000000ab/.test(links()), 10_000);
  assert.match(links(), new RegExp(tapName(after1.uuid)), 't1\'s own tap is kept');
}));

test('bad input gets its documented code and leaves nothing behind', track(async () => {
  const listBefore = (await ferry<VmView[]>(['vm', 'list', '--json'])).json;
  const pool = join(home, 'labs', LAB, 'h1', 'pools', 'default');
  const filesBefore = readdirSync(pool).sort();
  const cases: [string[], string][] = [
    [['vm', 'create', 'big', '--host', 'h1', '--memory', '999G'], 'INSUFFICIENT_MEMORY'],
    [['vm', 'create', 'Bad_Name', '--host', 'h1', '--memory', '256M'], 'INVALID_NAME'],
    [['vm', 'create', 'x1', '--host', 'h9', '--memory', '256M'], 'UNKNOWN_HOST'],
    [['vm', 'create', 'x2', '--host', 'h1', '--memory', 'lots'], 'INVALID_SIZE'],
    [['vm', 'create', 'x3', '--host', 'h1', '--memory', '256M', '--cpus', '99'], 'INVALID_CPUS'],
    [['vm', 'create', 't1', '--host', 'h1', '--memory', '256M'], 'VM_EXISTS'],
    [['vm', 'show', 'ghost'], 'VM_NOT_FOUND'],
  ];
  for (const [args, code] of cases) {
    const r = await ferry(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, new RegExp(`^error ${code}: .+\\.\\n$`), `${args.join(' ')}: ${r.stderr}`);
    const j = await ferry<{ error: { code: string } }>([...args, '--json']);
    assert.equal(j.json.error.code, code);
  }
  assert.deepEqual((await ferry<VmView[]>(['vm', 'list', '--json'])).json.map((v) => v.name), listBefore.map((v) => v.name));
  assert.deepEqual(readdirSync(pool).sort(), filesBefore);
}));

test('stop, start, a QEMU that dies is marked failed, delete removes everything', track(async () => {
  const v0 = await show('t1');
  const boot0 = (await guestGet(LAB, v0.ip, '/boot-id')).trim();
  const stopped = await ferry<VmView>(['vm', 'stop', 't1', '--json']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(stopped.json.state, 'stopped');
  assert.ok(v0.pid && !qemuAlive(v0.pid));
  const started = await ferry<VmView>(['vm', 'start', 't1', '--json']);
  assert.equal(started.json.state, 'running', started.stderr);
  const v1 = await show('t1');
  await waitFor('health after start', async () => (await guestGet(LAB, v1.ip, '/health')).trim() === 'ok');
  assert.notEqual((await guestGet(LAB, v1.ip, '/boot-id')).trim(), boot0, 'a fresh boot');
  assert.equal((await guestGet(LAB, v1.ip, '/disk/verify')).trim(), 'ok', 'disk records survive a restart');
  assert.ok(v1.pid);
  process.kill(v1.pid, 'SIGKILL');
  const failedVm = await waitFor('failed state', async () => { const v = await show('t1'); return v.state === 'failed' ? v : undefined; });
  assert.match(failedVm.reason ?? '', /QEMU/);
  const del = await ferry(['vm', 'delete', 't1']);
  assert.equal(del.code, 0, del.stderr);
  assert.equal((await ferry(['vm', 'show', 't1'])).code !== 0, true);
  for (const d of v1.disks) assert.equal(existsSync(d.path), false, `${d.path} deleted`);
}));
