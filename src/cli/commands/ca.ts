import type { Command } from 'commander';
import { join } from 'node:path';
import { certFacts, initCa, issueHostCert } from '../../security/index.js';
import { ferryHome } from '../../util/paths.js';
import { printJson, run } from '../output.js';

/** Where `ferry ca init` puts the CA when no --dir is given. */
export const defaultCaDir = (): string => join(ferryHome(), 'ca');

/** `ferry ca init [--dir DIR] [--force]`: a CA for a set of hosts (docs/security.md). */
export function registerCa(program: Command): void {
  const ca = program.command('ca').description('the certificate authority of a set of hosts');
  ca.command('init').description('make a CA: a key (0600) and a self-signed certificate')
    .option('--dir <dir>', 'where to put ca-key.pem and ca-cert.pem (default FERRY_HOME/ca)')
    .option('--name <cn>', 'the CA certificate\'s common name', 'Ferry CA')
    .option('--force', 'replace an existing CA (every host then needs a new certificate)')
    .option('--json', 'print JSON')
    .action((o: { dir?: string; name: string; force?: boolean; json?: boolean }) => run(o.json, async () => {
      const dir = o.dir ?? defaultCaDir();
      const r = await initCa(dir, { commonName: o.name, force: o.force === true });
      if (o.json) printJson({ dir, ...r });
      else process.stdout.write(`CA made in ${dir}: ${r.cert} (certificate), ${r.key} (key, keep it secret)\n`);
    }));
}

/** `ferry host cert issue NAME --address IP… [--ca DIR] --out DIR`. */
export function registerHostCert(host: Command): void {
  const cert = host.command('cert').description('host certificates');
  cert.command('issue <name>').description('give a host a key and a certificate signed by the CA (server and client use)')
    .requiredOption('--address <ip>', 'an address of the host, put in the certificate; repeat for more',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--ca <dir>', 'the CA folder (default FERRY_HOME/ca)')
    .requiredOption('--out <dir>', 'the host\'s TLS folder to write (QEMU tls-creds-x509 layout)')
    .option('--days <n>', 'validity in days', '825')
    .option('--json', 'print JSON')
    .action((name: string, o: { address: string[]; ca?: string; out: string; days: string; json?: boolean }) => run(o.json, async () => {
      const paths = await issueHostCert({ caDir: o.ca ?? defaultCaDir(), name, addresses: o.address, outDir: o.out, days: Number(o.days) });
      const f = certFacts(paths.cert);
      if (o.json) printJson({ name, ...paths, dnsNames: f.dnsNames, ipAddresses: f.ipAddresses, validTo: f.validTo, fingerprint256: f.fingerprint256 });
      else process.stdout.write(`certificate for ${name} (${[...f.dnsNames, ...f.ipAddresses].join(', ')}), valid to ${f.validTo}, in ${o.out}\n`);
    }));
}
