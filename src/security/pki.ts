/**
 * Host identity: a CA per set of hosts and one certificate per host, made with the `openssl`
 * command line (no native dependency). A host's folder is laid out the way QEMU's
 * `tls-creds-x509` object reads it, so the same files serve ferryd's HTTPS (server and mutual-TLS
 * client) and QEMU's encrypted migration and NBD streams (docs/security.md):
 *
 * ```
 * DIR/ca-cert.pem                        the CA's certificate
 * DIR/server-cert.pem  DIR/server-key.pem   the host's certificate and key (0600)
 * DIR/client-cert.pem  DIR/client-key.pem   the same certificate and key again (QEMU's client endpoint)
 * DIR/dh-params.pem                      a published Diffie-Hellman group for QEMU's TLS servers (dh-params.ts)
 * ```
 *
 * The host certificate's subject is only `CN=<host>`, so the distinguished name QEMU reports for
 * a peer (and that an `authz-simple` object names) is exactly `CN=<host>`.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { runTool } from '../qemu/index.js';
import { FerryError } from '../errors/index.js';
import { errnoWhy } from '../util/files.js';
import { ensureDhParams } from './dh-params.js';

/** File names in a CA folder. */
export const CA_FILES = Object.freeze({ cert: 'ca-cert.pem', key: 'ca-key.pem' });

/** File names in a host's TLS folder (QEMU's tls-creds-x509 layout). */
export const HOST_FILES = Object.freeze({
  ca: 'ca-cert.pem', serverCert: 'server-cert.pem', serverKey: 'server-key.pem', clientCert: 'client-cert.pem', clientKey: 'client-key.pem',
});

/** Where a host's TLS files are, as the agent config names them. */
export interface HostTlsPaths { caCert: string; cert: string; key: string; dir: string }

/** The paths of the host TLS folder `dir`. */
export function hostTlsPaths(dir: string): HostTlsPaths {
  return { caCert: join(dir, HOST_FILES.ca), cert: join(dir, HOST_FILES.serverCert), key: join(dir, HOST_FILES.serverKey), dir };
}

/** The distinguished name QEMU reports for a host's certificate (what `authz-simple` compares). */
export const hostIdentity = (host: string): string => `CN=${host}`;

/** A host name as a certificate may name it: letters, digits, dots and dashes (also a JSON-schema `pattern`, which takes no flags). */
export const HOST_NAME_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$';
const HOST_NAME = new RegExp(HOST_NAME_PATTERN);
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Throws INVALID_INPUT unless `name` can be a certificate's DNS name. */
export function checkCertName(name: string): string {
  if (!HOST_NAME.test(name)) throw new FerryError('INVALID_INPUT', `The host name "${name}" cannot name a certificate: use letters, digits, dots and dashes.`);
  return name;
}

/** Throws INVALID_INPUT unless `a` is an IPv4 address. */
export function checkAddress(a: string): string {
  const m = IPV4.exec(a);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new FerryError('INVALID_INPUT', `"${a}" is not an IPv4 address.`);
  return a;
}

/**
 * The OpenSSL extension section of a host certificate: an end entity (not a CA) for TLS servers
 * and clients both (QEMU checks keyUsage and extendedKeyUsage), named by its host name and addresses.
 */
export function hostExtensions(name: string, addresses: readonly string[]): string {
  const san = [`DNS:${checkCertName(name)}`, ...addresses.map((a) => `IP:${checkAddress(a)}`)].join(',');
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    `subjectAltName=${san}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n');
}

const openssl = (args: string[]): Promise<void> => runTool('openssl', args, 'CERT_FAILED');

/** Options of {@link initCa}. */
export interface CaOptions { commonName?: string; days?: number; force?: boolean }

/**
 * Makes a CA in `dir`: an RSA key (0600) and a self-signed certificate. Refuses with CA_EXISTS
 * when `dir` already holds one, unless `force` (which makes every host certificate invalid).
 */
export async function initCa(dir: string, opts: CaOptions = {}): Promise<{ cert: string; key: string }> {
  const cert = join(dir, CA_FILES.cert);
  const key = join(dir, CA_FILES.key);
  if (!opts.force && (existsSync(cert) || existsSync(key))) {
    throw new FerryError('CA_EXISTS', `${dir} already holds a CA; rotating it means issuing every host a new certificate (docs/security.md).`);
  }
  await certStep(`Making the CA folder ${dir}`, async () => { mkdirSync(dir, { recursive: true, mode: 0o700 }); });
  await openssl(['req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', String(opts.days ?? 3650),
    '-sha256', '-subj', `/CN=${opts.commonName ?? 'Ferry CA'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  chmodSync(key, 0o600);
  return { cert, key };
}

/** Options of {@link issueHostCert}. */
export interface IssueOptions {
  /** The CA folder ({@link initCa}). */
  caDir: string;
  name: string;
  /** The host's addresses (its API and migration addresses), put in the SAN as IP entries. */
  addresses: readonly string[];
  /** The host's TLS folder to write. */
  outDir: string;
  days?: number;
}

/**
 * Gives host `name` a key and a certificate signed by the CA in `caDir`, written to `outDir` in
 * QEMU's layout (see the file's comment). Keys are 0600. Replaces what `outDir` held.
 */
export function issueHostCert(o: IssueOptions): Promise<HostTlsPaths> {
  return certStep(`Writing ${o.name}'s key and certificate into ${o.outDir}`, () => issue(o));
}

/** A step of making keys and certificates: its FerryErrors as they are, a raw one (a folder the user cannot write) as CERT_FAILED saying which step. */
async function certStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof FerryError ? e : new FerryError('CERT_FAILED', `${what} failed: ${errnoWhy(e)}.`, { cause: e });
  }
}

async function issue(o: IssueOptions): Promise<HostTlsPaths> {
  checkCertName(o.name);
  const caCert = join(o.caDir, CA_FILES.cert);
  const caKey = join(o.caDir, CA_FILES.key);
  if (!existsSync(caCert) || !existsSync(caKey)) throw new FerryError('CA_NOT_FOUND', `${o.caDir} holds no CA: run \`ferry ca init --dir ${o.caDir}\`.`);
  mkdirSync(o.outDir, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(o.outDir, '.issue-'));
  try {
    const key = join(tmp, 'key.pem');
    const csr = join(tmp, 'req.csr');
    const ext = join(tmp, 'ext.cnf');
    const cert = join(tmp, 'cert.pem');
    writeFileSync(ext, hostExtensions(o.name, o.addresses));
    await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${o.name}`]);
    await openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-days', String(o.days ?? 825), '-sha256', '-extfile', ext, '-out', cert]);
    const p = (f: string): string => join(o.outDir, f);
    copyFileSync(caCert, p(HOST_FILES.ca));
    for (const [from, to, mode] of [[cert, HOST_FILES.serverCert, 0o644], [cert, HOST_FILES.clientCert, 0o644],
      [key, HOST_FILES.serverKey, 0o600], [key, HOST_FILES.clientKey, 0o600]] as const) {
      rmSync(p(to), { force: true });
      writeFileSync(p(to), readFileSync(from), { mode });
      chmodSync(p(to), mode);
    }
    const dh = ensureDhParams(o.outDir);
    if (dh.kind === 'failed') throw dh.error;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return hostTlsPaths(o.outDir);
}

/** The facts of a certificate file that matter here: its subject's CN, its SAN, its issuer. */
export interface CertFacts { subject: string; issuer: string; dnsNames: string[]; ipAddresses: string[]; validTo: string; fingerprint256: string }

/** Reads a PEM certificate with node:crypto. */
export function certFacts(path: string): CertFacts {
  const c = new X509Certificate(readFileSync(path));
  const san = (c.subjectAltName ?? '').split(', ').filter(Boolean);
  return {
    subject: c.subject, issuer: c.issuer, validTo: c.validTo, fingerprint256: c.fingerprint256,
    dnsNames: san.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ipAddresses: san.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11)),
  };
}

/**
 * True when host folder `outDir` holds a certificate for `name` and `addresses` signed by the CA
 * in `caDir` (the lab reissues otherwise).
 */
export function hostCertCurrent(caDir: string, name: string, addresses: readonly string[], outDir: string): boolean {
  const paths = hostTlsPaths(outDir);
  if (![paths.caCert, paths.cert, paths.key, join(outDir, HOST_FILES.clientCert), join(outDir, HOST_FILES.clientKey)].every((f) => existsSync(f))) return false;
  const ca = readFileSync(join(caDir, CA_FILES.cert), 'utf8');
  if (readFileSync(paths.caCert, 'utf8') !== ca) return false;
  const cert = new X509Certificate(readFileSync(paths.cert));
  if (!cert.verify(new X509Certificate(ca).publicKey)) return false;
  const f = certFacts(paths.cert);
  return f.dnsNames.includes(name) && addresses.every((a) => f.ipAddresses.includes(a)) && Date.parse(f.validTo) > Date.now() + 86_400_000;
}
