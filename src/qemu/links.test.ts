import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * Runs `body` (an ES module's code, given links.js and tap.js of this build) with the real `ip` in
 * a network namespace of its own, and returns what it printed as JSON.
 */
function inNetns(body: string): unknown {
  const ns = `fylinks${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const links = new URL('./links.js', import.meta.url).href;
    const tap = new URL('./tap.js', import.meta.url).href;
    const script = `import * as links from '${links}'; import * as tap from '${tap}';\n`
      + `import { execFileSync } from 'node:child_process';\nconst ip = (...a) => execFileSync('ip', a);\n`
      + `const names = () => JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()).map((l) => l.ifname).sort();\n${body}`;
    return JSON.parse(execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script]).toString()) as unknown;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

test('a tap deleted in the background is made again only once its deletion ended: ensureTap of the same name waits for it', () => {
  const out = inNetns(`
    ip('link', 'add', 'br0', 'type', 'bridge');
    await tap.ensureTap('fy00000000aa', 'br0');
    const deleting = tap.deleteTap('fy00000000aa'); // not awaited, as a move's end leaves it
    await tap.ensureTap('fy00000000aa', 'br0');
    await deleting;
    const after = names();
    const made = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'fy00000000aa']).toString())[0];
    await links.deleteLinkSoon('fy00000000aa');
    await links.deleteLinkSoon('fy00000000aa'); // missing is fine
    console.log(JSON.stringify({ after, end: names(), master: made.master, up: made.flags.includes('UP') }));
  `) as { after: string[]; end: string[]; master: string; up: boolean };
  assert.ok(out.after.includes('fy00000000aa'), 'the new tap is there: the deletion ran before it, not after');
  assert.deepEqual([out.master, out.up], ['br0', true], 'on the bridge and up');
  assert.ok(!out.end.includes('fy00000000aa'));
});

test('an agent that starts deletes the Ferry taps and tunnels an earlier run left, and nothing else', () => {
  const out = inNetns(`
    ip('link', 'add', 'br0', 'type', 'bridge');
    for (const n of ['fy00000000aa', 'fy00000000bb']) ip('tuntap', 'add', 'dev', n, 'mode', 'tap');
    for (const [i, n] of ['fyx0000000001', 'fyx0000000002'].entries()) ip('link', 'add', n, 'type', 'vxlan', 'id', String(7 + i), 'local', '127.0.0.1', 'remote', '127.0.0.2', 'dstport', '4789');
    for (const n of ['fyzzz', 'keepme']) ip('link', 'add', n, 'type', 'bridge');
    const keep = new Set(['fy00000000bb', 'fyx0000000002']);
    const gone = await links.sweepLinks((n) => keep.has(n));
    for (const n of gone) await links.linkDeleted(n);
    console.log(JSON.stringify({ gone: gone.sort(), left: names() }));
  `) as { gone: string[]; left: string[] };
  assert.deepEqual(out.gone, ['fy00000000aa', 'fyx0000000001']);
  assert.deepEqual(out.left.filter((n) => n !== 'lo'), ['br0', 'fy00000000bb', 'fyx0000000002', 'fyzzz', 'keepme']);
});
