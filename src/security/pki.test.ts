import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { FerryError } from '../errors/index.js';
import {
  certFacts, checkAddress, hostCertCurrent, hostExtensions, hostIdentity, initCa, issueHostCert, loadTls, peerVerdict, serverTlsOptions,
} from './index.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ferry-pki-'));
const mode = (p: string): number => statSync(p).mode & 0o777;

void test('host certificate extensions: end entity, server and client use, named by host and addresses', () => {
  const ext = hostExtensions('h1', ['10.77.0.11', '10.78.0.11']);
  assert.match(ext, /^basicConstraints=critical,CA:FALSE$/m);
  assert.match(ext, /^extendedKeyUsage=serverAuth,clientAuth$/m);
  assert.match(ext, /^subjectAltName=DNS:h1,IP:10\.77\.0\.11,IP:10\.78\.0\.11$/m);
  assert.throws(() => hostExtensions('h 1', []), { code: 'INVALID_INPUT' });
  assert.throws(() => checkAddress('10.0.0.256'), { code: 'INVALID_INPUT' });
  assert.equal(hostIdentity('h2'), 'CN=h2');
});

void test('ca init and host cert issue: keys 0600, QEMU layout, signed by the CA, current until something changes', async () => {
  const dir = tmp();
  try {
    const ca = join(dir, 'ca');
    const r = await initCa(ca);
    assert.equal(mode(r.key), 0o600);
    await assert.rejects(initCa(ca), { code: 'CA_EXISTS' });
    await assert.rejects(issueHostCert({ caDir: join(dir, 'none'), name: 'h1', addresses: [], outDir: join(dir, 'x') }), { code: 'CA_NOT_FOUND' });
    const out = join(dir, 'h1');
    const p = await issueHostCert({ caDir: ca, name: 'h1', addresses: ['10.77.0.11'], outDir: out });
    for (const f of ['server-key.pem', 'client-key.pem']) assert.equal(mode(join(out, f)), 0o600, f);
    assert.equal(readFileSync(join(out, 'client-cert.pem'), 'utf8'), readFileSync(p.cert, 'utf8'), 'one certificate serves both ends');
    assert.equal(readFileSync(p.caCert, 'utf8'), readFileSync(r.cert, 'utf8'));
    const f = certFacts(p.cert);
    assert.equal(f.subject, 'CN=h1', 'the subject is only the CN: QEMU reports it as the identity authz-simple compares');
    assert.deepEqual([f.dnsNames, f.ipAddresses], [['h1'], ['10.77.0.11']]);
    assert.equal(hostCertCurrent(ca, 'h1', ['10.77.0.11'], out), true);
    assert.equal(hostCertCurrent(ca, 'h1', ['10.77.0.12'], out), false, 'another address');
    assert.equal(hostCertCurrent(ca, 'h2', ['10.77.0.11'], out), false, 'another name');
    await initCa(ca, { force: true });
    assert.equal(hostCertCurrent(ca, 'h1', ['10.77.0.11'], out), false, 'another CA');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('mutual TLS: a peer is admitted only with a certificate from the CA that names a known peer', async () => {
  const dir = tmp();
  try {
    await initCa(join(dir, 'ca'));
    await initCa(join(dir, 'other-ca'));
    const server = loadTls(await issueHostCert({ caDir: join(dir, 'ca'), name: 'h1', addresses: ['127.0.0.1'], outDir: join(dir, 'h1') }));
    const h2 = loadTls(await issueHostCert({ caDir: join(dir, 'ca'), name: 'h2', addresses: [], outDir: join(dir, 'h2') }));
    const h3 = loadTls(await issueHostCert({ caDir: join(dir, 'ca'), name: 'h3', addresses: [], outDir: join(dir, 'h3') }));
    const rogue = loadTls(await issueHostCert({ caDir: join(dir, 'other-ca'), name: 'h2', addresses: [], outDir: join(dir, 'rogue') }));
    const srv = createServer(serverTlsOptions(server), (req, res) => {
      const v = peerVerdict(req.socket as TLSSocket, ['h2']);
      res.end(JSON.stringify(v));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const ask = (client?: { cert: Buffer; key: Buffer }): Promise<{ ok: boolean; host?: string; reason?: string }> => new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', ca: server.ca, ...(client ? { cert: client.cert, key: client.key } : {}) }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => { b += c.toString(); });
        res.on('end', () => resolve(JSON.parse(b) as { ok: boolean }));
      });
      req.on('error', reject);
      req.end();
    });
    try {
      assert.deepEqual(await ask(h2), { ok: true, host: 'h2' });
      assert.match((await ask(h3)).reason ?? '', /not a peer/);
      assert.match((await ask(rogue)).reason ?? '', /not from this host's CA/);
      assert.match((await ask()).reason ?? '', /no client certificate/);
    } finally {
      srv.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('a CA or host folder that cannot be made is CERT_FAILED naming the step, not a raw file-system error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pki-dirs-'));
  try {
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(initCa(join(dir, 'file', 'ca')), (e: unknown) => e instanceof FerryError && e.code === 'CERT_FAILED' && /^Making the CA folder .* failed: ENOTDIR\.$/.test(e.message));
    await initCa(join(dir, 'ca'));
    await assert.rejects(issueHostCert({ caDir: join(dir, 'ca'), name: 'h1', addresses: ['127.0.0.1'], outDir: join(dir, 'file', 'h1') }),
      (e: unknown) => e instanceof FerryError && e.code === 'CERT_FAILED' && /^Writing h1's key and certificate into .* failed: ENOTDIR\.$/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
