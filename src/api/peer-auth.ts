import { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { FerryError } from '../errors/index.js';
import { peerVerdict } from '../security/index.js';

/** Where peer RPC lives; mutual TLS, not tokens, decides who may call it. */
const PEER_PATH = '/v1/peer/';

declare module 'fastify' {
  interface FastifyRequest {
    /** The peer host whose certificate a peer route's caller presented (null: a local or non-TLS request). */
    peerHost: string | null;
  }
}

/**
 * Guards peer routes with the callers' certificates: over the HTTPS listener a caller must present
 * a certificate that chains to the hosts' CA and whose CN is one of `peers()`, else 403
 * PEER_UNTRUSTED before the body is read. Requests that did not come over TLS reach here only
 * from the agent's root-only unix socket or in-process tests, when the listener is HTTPS.
 */
export function addPeerAuth(app: FastifyInstance, peers: () => readonly string[]): void {
  app.decorateRequest('peerHost', null);
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith(PEER_PATH)) return;
    const sock = req.raw.socket;
    if (!(sock instanceof TLSSocket)) return;
    const v = peerVerdict(sock, peers());
    if (!v.ok) throw new FerryError('PEER_UNTRUSTED', `Peer RPC is refused: ${v.reason}.`);
    req.peerHost = v.host;
  });
}
