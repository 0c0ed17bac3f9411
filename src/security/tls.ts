/**
 * TLS contexts of ferryd: the HTTPS server (mutual TLS for peer RPC), the peer client, and the
 * QEMU objects that encrypt the migration and NBD streams. docs/security.md explains the model.
 */
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { FerryError } from '../errors/index.js';
import type { Qmp } from '../qmp/index.js';
import { hostIdentity } from './pki.js';

/** A host's TLS material in memory: the CA's certificate, the host's certificate and key (PEM). */
export interface TlsMaterial { ca: Buffer; cert: Buffer; key: Buffer }

/** Reads the files an agent config's `tls` names; CONFIG_INVALID when one cannot be read. */
export function loadTls(paths: { caCert: string; cert: string; key: string }): TlsMaterial {
  const read = (what: string, p: string): Buffer => {
    try {
      return readFileSync(p);
    } catch (e) {
      throw new FerryError('CONFIG_INVALID', `The ${what} ${p} named in the agent config's tls could not be read.`, { cause: e });
    }
  };
  return { ca: read('CA certificate', paths.caCert), cert: read('host certificate', paths.cert), key: read('host key', paths.key) };
}

/**
 * Options for the HTTPS listener. Every caller is asked for a certificate but none is refused at
 * the handshake: users' routes need none (bearer tokens guard them); peer routes check it
 * themselves ({@link peerVerdict}) and answer 403 PEER_UNTRUSTED with a body a client can read.
 */
export function serverTlsOptions(m: TlsMaterial): { ca: Buffer; cert: Buffer; key: Buffer; requestCert: true; rejectUnauthorized: false; minVersion: 'TLSv1.2' } {
  return { ca: m.ca, cert: m.cert, key: m.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** What a TLS socket tells about its peer (node:tls TLSSocket has these). */
export interface TlsPeerInfo {
  authorized: boolean;
  authorizationError?: Error | string | null;
  getPeerCertificate(): PeerCertificate | Record<string, never>;
}

/**
 * May the caller on this TLS connection use peer routes? Only when its certificate chains to the
 * hosts' CA (`authorized`) and its CN names one of `peers` (the agent's configured peers).
 */
export function peerVerdict(sock: TlsPeerInfo, peers: readonly string[]): { ok: true; host: string } | { ok: false; reason: string } {
  const cert = sock.getPeerCertificate();
  const cn = 'subject' in cert ? cert.subject?.CN : undefined;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (!name) return { ok: false, reason: 'it presented no client certificate' };
  if (!sock.authorized) return { ok: false, reason: `its certificate for ${name} is not from this host's CA (${String(sock.authorizationError ?? 'not trusted')})` };
  if (!peers.includes(name)) return { ok: false, reason: `its certificate names ${name}, which is not a peer of this host` };
  return { ok: true, host: name };
}

/**
 * The peer client's check of the server's certificate: beyond the CA (node checks the chain), it
 * must name the host we meant to call, whatever address the URL uses.
 */
export function expectHost(host: string): (servername: string, cert: PeerCertificate) => Error | undefined {
  return (_servername, cert) => checkServerIdentity(host, cert);
}

/** QOM ids of the TLS objects Ferry adds to a QEMU. */
export const QEMU_TLS_IDS = Object.freeze({ server: 'ferry-tls-server', client: 'ferry-tls-client', authz: 'ferry-tls-authz' });

/**
 * Adds (or replaces, so that renewed certificates apply) a `tls-creds-x509` object reading the
 * host's TLS folder `dir`, verifying the peer. Returns its id.
 */
export async function addTlsCreds(qmp: Qmp, endpoint: 'server' | 'client', dir: string): Promise<string> {
  const id = QEMU_TLS_IDS[endpoint];
  await qmp.execute('object-del', { id }).catch(() => undefined);
  await qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id, dir, endpoint, 'verify-peer': true });
  return id;
}

/** Adds (or replaces) the `authz-simple` object that admits only host `peer`'s certificate. Returns its id. */
export async function addPeerAuthz(qmp: Qmp, peer: string): Promise<string> {
  const id = QEMU_TLS_IDS.authz;
  await qmp.execute('object-del', { id }).catch(() => undefined);
  await qmp.execute('object-add', { 'qom-type': 'authz-simple', id, identity: hostIdentity(peer) });
  return id;
}
