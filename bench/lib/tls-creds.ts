/**
 * How long QEMU takes to add the server-side TLS credentials every incoming move adds (the
 * `tls-creds-x509` object, src/security/tls.ts): with the host TLS folder as Ferry writes it
 * (dh-params.pem holding RFC 7919 ffdhe3072, src/security/dh-params.ts), and the same folder
 * without that file, where QEMU has GnuTLS generate Diffie-Hellman parameters instead. No guest:
 * a bare QEMU (`-machine none`) and one QMP client; the two kinds alternate.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../src/qmp/index.js';
import { DH_PARAMS_FILE, initCa, issueHostCert } from '../../src/security/index.js';
import { spread } from './stats.js';

/** object-add times, ms, of each kind. */
export interface TlsCredsTimes { withDhParams: number[]; withoutDhParams: number[] }

export async function measureTlsCreds(repeat: number): Promise<TlsCredsTimes> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-tls-'));
  const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`], { stdio: 'ignore' });
  const out: TlsCredsTimes = { withDhParams: [], withoutDhParams: [] };
  try {
    await initCa(join(dir, 'ca'));
    const tls = await issueHostCert({ caDir: join(dir, 'ca'), name: 'bench', addresses: ['10.99.0.1'], outDir: join(dir, 'with') });
    const without = join(dir, 'without');
    cpSync(tls.dir, without, { recursive: true });
    rmSync(join(without, DH_PARAMS_FILE));
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'), { retryUntilMs: 10_000, timeoutMs: 60_000 });
    try {
      for (let i = 0; i < repeat; i++) {
        for (const kind of (i % 2 === 0 ? ['with', 'without'] : ['without', 'with']) as ('with' | 'without')[]) {
          const t = performance.now();
          await qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'creds', dir: join(dir, kind), endpoint: 'server', 'verify-peer': true });
          (kind === 'with' ? out.withDhParams : out.withoutDhParams).push(Math.round((performance.now() - t) * 10) / 10);
          await qmp.execute('object-del', { id: 'creds' });
        }
      }
    } finally {
      await qmp.close();
    }
  } finally {
    // Only the QEMU started here, by its PID.
    if (qemu.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) process.kill(qemu.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The migrate benchmark's section on it. */
export function tlsCredsSection(t: TlsCredsTimes | undefined): string {
  if (!t) return '';
  return [
    '## QEMU\'s server TLS credentials',
    '',
    'Every incoming move adds a `tls-creds-x509` object with `endpoint=server` to the destination QEMU (prepare phase). A bare QEMU '
      + '(`-machine none`), `object-add` timed from one QMP client, the two folders alternating; measured in this run, before the cases.',
    '',
    '| host TLS folder | runs | object-add ms |',
    '|---|--:|--:|',
    `| as Ferry writes it: with \`dh-params.pem\` (RFC 7919 ffdhe3072) | ${t.withDhParams.length} | ${spread(t.withDhParams, 1)} |`,
    `| the same without \`dh-params.pem\` (baseline: QEMU has GnuTLS generate parameters) | ${t.withoutDhParams.length} | ${spread(t.withoutDhParams, 1)} |`,
    '',
  ].join('\n');
}
