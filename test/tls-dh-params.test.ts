// Integration: the Diffie-Hellman group Ferry puts in a host's TLS folder (src/security/dh-params.ts)
// is what a real QEMU's tls-creds-x509 server object loads: issued with every host certificate,
// accepted by QEMU, and really read by it (a broken file makes object-add fail). What it saves is
// measured by bench:migrate ("QEMU's server TLS credentials"), not here.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { QmpClient } from '../src/qmp/index.js';
import { DH_PARAMS_FILE, FFDHE3072_PEM, initCa, issueHostCert } from '../src/security/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-dh-it-'));
const sock = join(dir, 'qmp.sock');
let qemu: ChildProcess | undefined;
let qmp: QmpClient;

before(async () => {
  qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000, timeoutMs: 30_000 });
});

after(async () => {
  await qmp?.close().catch(() => undefined);
  // Only the QEMU this file started, by its PID.
  if (qemu?.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) process.kill(qemu.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

void test('a host certificate comes with ffdhe3072 in dh-params.pem, and QEMU\'s TLS server loads it; a broken one is refused', async () => {
  await initCa(join(dir, 'ca'));
  const tls = await issueHostCert({ caDir: join(dir, 'ca'), name: 'h1', addresses: ['10.77.0.11'], outDir: join(dir, 'h1') });
  const file = join(tls.dir, DH_PARAMS_FILE);
  assert.equal(readFileSync(file, 'utf8'), FFDHE3072_PEM);
  assert.match(execFileSync('openssl', ['pkeyparam', '-in', file, '-text', '-noout']).toString(), /GROUP: ffdhe3072/);

  await qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'good', dir: tls.dir, endpoint: 'server', 'verify-peer': true });

  const broken = join(dir, 'broken');
  cpSync(tls.dir, broken, { recursive: true });
  writeFileSync(join(broken, DH_PARAMS_FILE), '-----BEGIN DH PARAMETERS-----\nbm90IGEgZ3JvdXA=\n-----END DH PARAMETERS-----\n');
  await assert.rejects(qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'broken', dir: broken, endpoint: 'server', 'verify-peer': true }),
    (e: Error) => /DH|param|import/i.test(e.message));
});
