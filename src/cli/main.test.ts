// The CLI's own handling of command lines it cannot parse (no agent needed): CLI.md's error contract.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, FERRY_HOME: '/nonexistent-ferry-home', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('a command line the CLI cannot parse is INVALID_INPUT with exit 2: on stderr, or as the JSON error document with --json', async () => {
  const unknown = await ferry(['compare', 'x', '--to', 'h2', '--bogus']);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stdout, '');
  assert.match(unknown.stderr, /^error INVALID_INPUT: unknown option '--bogus'; --help lists the commands and their options\.\n$/);
  const missing = await ferry(['compare', 'x', '--json']);
  assert.equal(missing.code, 2, 'not 1, which compare means as "incompatible"');
  assert.deepEqual(JSON.parse(missing.stdout), { error: { code: 'INVALID_INPUT', message: 'required option \'--to <host>\' not specified; --help lists the commands and their options.' } });
  const command = await ferry(['nope']);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /^error INVALID_INPUT: unknown command 'nope' \(Did you mean move\?\); /);
  const sub = await ferry(['vm']);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /Usage: ferry vm[\s\S]*error INVALID_INPUT: this command needs one of its subcommands/);
});

test('--help and --version still end with exit 0', async () => {
  const help = await ferry(['move', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: ferry move \[options\] <vm>/);
  const version = await ferry(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('FERRY_URL that is not an agent URL is INVALID_INPUT naming it; a 502 page without an error document from what stands before an agent is AGENT_UNREACHABLE', async () => {
  const bad = await ferry(['token', 'list', '--json'], { FERRY_URL: '10.0.0.1:8080' });
  assert.equal(bad.code, 2);
  assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'INVALID_INPUT');
  assert.match(bad.stdout, /FERRY_URL holds \\"10.0.0.1:8080\\"/);
  const proxy = createServer((_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<h1>Bad Gateway</h1>'); });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const r = await ferry(['token', 'list', '--json'], { FERRY_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
    assert.equal(r.code, 2);
    const e = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'AGENT_UNREACHABLE');
    assert.match(e.message, /answered 502 from what stands in front of it/);
  } finally {
    proxy.close();
  }
});

test('a list from every host says on stderr which did not answer, with --json too (stdout holds only the document)', async () => {
  const r = await ferry(['vm', 'list', '--json'], { FERRY_URL: 'http://127.0.0.1:1' });
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), []);
  assert.equal(r.stderr, 'warning: left out, no answer or an error: host1\n');
});
