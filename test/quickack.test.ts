// Integration: the quick-ACK route of a move (src/qemu/quickack.ts) on the real `ip`, in a network
// namespace of this test's own: added with the peer's device, source address and table, shared by
// two moves to the same peer, removed by the last one; a host route someone else made is left alone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const NS = `ferryqa-${process.pid}`;
const ns = (...args: string[]): Promise<{ stdout: string }> => run('ip', ['netns', 'exec', NS, ...args]);
const module = fileURLToPath(new URL('../src/qemu/quickack.js', import.meta.url));

before(async () => {
  await run('ip', ['netns', 'add', NS]);
  for (const cmd of [['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'], ['addr', 'add', '10.99.0.1/24', 'dev', 'd0'],
    ['link', 'set', 'd1', 'up'], ['link', 'set', 'd0', 'up'],
    ['route', 'add', '10.98.0.0/24', 'via', '10.99.0.254', 'dev', 'd0'],
    ['route', 'add', '10.95.0.0/24', 'via', '10.99.0.254', 'dev', 'd0', 'mtu', '1400', 'advmss', '1360'],
    ['route', 'add', '10.94.0.0/24', 'via', '10.99.0.254', 'dev', 'd0', 'congctl', 'cubic']]) await ns('ip', ...cmd);
});

after(async () => { await run('ip', ['netns', 'del', NS]).catch(() => undefined); });

/** Runs `body` (the inside of an async function with holdQuickAck and sh in scope) in the namespace; returns what it printed. */
async function inNs(body: string): Promise<string> {
  const script = `const { holdQuickAck, sweepQuickAck } = await import(${JSON.stringify(module)});
const { execFileSync } = await import('node:child_process');
const sh = () => execFileSync('ip', ['route', 'show', 'table', 'main'], { encoding: 'utf8' }).trim();
const warn = (m) => console.log('WARN ' + m);
${body}`;
  return (await ns(process.execPath, '--input-type=module', '-e', script)).stdout;
}

test('a move holds a quick-ACK /32 to its peer for as long as it runs; two moves share it', async () => {
  const out = await inNs(`
const a = await holdQuickAck('10.99.0.2', warn); console.log('A ' + sh());
const b = await holdQuickAck('10.98.0.7', warn); const c = await holdQuickAck('10.99.0.2', warn);
console.log('B ' + sh());
await a(); await a(); console.log('C ' + sh());
await c(); await b(); console.log('D ' + sh());`);
  const at = (k: string): string => out.split('\n').filter((l) => l.startsWith(`${k} `) || !/^[A-Z] /.test(l)).join('\n');
  assert.doesNotMatch(out, /WARN/);
  assert.match(at('A'), /10\.99\.0\.2 dev d0 proto 243 scope link src 10\.99\.0\.1 quickack 1/);
  assert.match(out.split('\nC ')[0]!, /10\.98\.0\.7 via 10\.99\.0\.254 dev d0 proto 243 src 10\.99\.0\.1 quickack 1/);
  // The first move ended (its release twice: a no-op), the second still streams to 10.99.0.2.
  assert.match(out.split('\nC ')[1]!.split('\nD ')[0]!, /10\.99\.0\.2 dev d0 proto 243/);
  assert.doesNotMatch(out.split('\nD ')[1]!, /proto 243/);
});

test("a host route someone else made is neither changed nor removed", async () => {
  await ns('ip', 'route', 'add', '10.99.0.3/32', 'dev', 'd0', 'proto', 'static');
  const out = await inNs(`const r = await holdQuickAck('10.99.0.3', warn); console.log('A ' + sh()); await r(); console.log('B ' + sh());`);
  assert.doesNotMatch(out, /quickack/);
  assert.match(out.split('\nB ')[1]!, /10\.99\.0\.3 dev d0 proto static/);
});

test('no route for an address of this host', async () => {
  const out = await inNs(`const r = await holdQuickAck('10.99.0.1', warn); console.log('A ' + sh()); await r();`);
  assert.doesNotMatch(out, /proto 243|WARN/);
});

test('the copy keeps the MTU of the route it follows; a route with a metric it cannot copy gets none', async () => {
  const out = await inNs(`const a = await holdQuickAck('10.95.0.9', warn); const b = await holdQuickAck('10.94.0.9', warn);
console.log('A ' + execFileSync('ip', ['route', 'show', 'table', 'main', 'proto', '243'], { encoding: 'utf8' }).trim()); await a(); await b();`);
  assert.doesNotMatch(out, /WARN/);
  assert.match(out, /10\.95\.0\.9 via 10\.99\.0\.254 dev d0 src 10\.99\.0\.1 mtu 1400 advmss 1360 quickack 1/);
  assert.doesNotMatch(out, /10\.94\.0\.9/);
});

test("an agent that starts removes the quick-ACK routes a crashed one left, and nobody else's", async () => {
  await ns('ip', 'route', 'add', '10.99.0.41/32', 'dev', 'd0', 'proto', '243', 'quickack', '1');
  await ns('ip', 'route', 'add', '10.99.0.42/32', 'dev', 'd0', 'proto', 'static', 'quickack', '1');
  const out = await inNs(`console.log('N ' + await sweepQuickAck()); console.log('A ' + sh());`);
  assert.match(out, /^N 1$/m);
  assert.doesNotMatch(out, /10\.99\.0\.41/);
  assert.match(out, /10\.99\.0\.42 dev d0 proto static/);
});
