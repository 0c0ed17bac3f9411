import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { FerryError, isErrorCode } from '../errors/index.js';
import { expectHost, type TlsMaterial } from '../security/index.js';
import {
  ADDRESSES_ROUTE, envelopeFor, PEER_BASE, PROTOCOL_VERSION, type AddressesReply, type CancelReply, type CompareReply, type CompareRequest, type ConfirmReply, type ConfirmRequest, type CutoverReply, type CutoverRequest,
  type FinishReply, type FinishRequest, type PerformReadyReply, type PrepareReply, type PrepareRequest, type StatusReply,
} from './protocol.js';

type Body<T> = Omit<T, 'protocol' | 'jobId'>;

/** How long a rollback waits for the destination to clean up before it goes on (and keeps asking in the background). */
export const CLEANUP_TIMEOUT_MS = 20_000;

/** One HTTPS agent per host certificate: connections to peers are kept alive and reused between calls. */
const agents = new WeakMap<TlsMaterial, Map<string, HttpsAgent>>();

/**
 * The connection pool for calls to `peer` with this host's certificate: it presents the
 * certificate (mutual TLS), trusts only the hosts' CA, and accepts only a server certificate that
 * names `peer`, whatever address its URL uses.
 */
function agentFor(tls: TlsMaterial, peer: string): HttpsAgent {
  let byPeer = agents.get(tls);
  if (!byPeer) agents.set(tls, byPeer = new Map());
  let a = byPeer.get(peer);
  if (!a) {
    a = new HttpsAgent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key, checkServerIdentity: expectHost(peer), minVersion: 'TLSv1.2' });
    byPeer.set(peer, a);
  }
  return a;
}

/** A request lost on a reused keep-alive connection the peer had closed; safe to send again. */
class StaleSocketError extends Error {
  constructor(cause: Error) { super(cause.message, { cause }); }
}

/** What the peer answered: its status and its body as JSON (undefined when it was not JSON). */
interface RawReply { status: number; json: unknown }

/**
 * The source's side of peer RPC (protocol.ts): one method per message. A network failure is
 * HOST_UNREACHABLE (retryable: recovery asks again); an error answer keeps the peer's code. Over
 * `https:` URLs it authenticates with this host's certificate `tls` and checks the peer's.
 */
export class PeerClient {
  /**
   * `secretOf` gives the one-time secret of a job this host sends (protocol.ts); every request about
   * a job after its prepare carries it.
   */
  constructor(
    private readonly baseUrl: string, private readonly peer: string, private readonly timeoutMs = 60_000, private readonly tls?: TlsMaterial,
    private readonly secretOf: (jobId: string) => string | null = () => null,
  ) {}

  prepare(jobId: string, b: Body<PrepareRequest>): Promise<PrepareReply> { return this.post(jobId, 'prepare', b, 180_000); }
  performReady(jobId: string): Promise<PerformReadyReply> { return this.post(jobId, 'perform-ready', {}); }
  cutover(jobId: string, b: Body<CutoverRequest>): Promise<CutoverReply> { return this.post(jobId, 'cutover', b, 5_000); }
  finish(jobId: string, b: Body<FinishRequest>, timeoutMs = this.timeoutMs): Promise<FinishReply> { return this.post(jobId, 'finish', b, timeoutMs); }
  confirm(jobId: string, b: Body<ConfirmRequest>): Promise<ConfirmReply> { return this.post(jobId, 'confirm', b); }
  /** Clean-up on the destination is quick (kill QEMU, delete what prepare made): a short timeout. */
  cancel(jobId: string, reason: string): Promise<CancelReply> { return this.post(jobId, 'cancel', { reason }, CLEANUP_TIMEOUT_MS); }
  /** 10 s unless `timeoutMs` says (the client's own timeout is not used: a peer answers its status at once or not at all). */
  status(jobId: string, timeoutMs = 10_000): Promise<StatusReply> { return this.call('GET', `${PEER_BASE}/${jobId}`, undefined, timeoutMs); }

  /** POST /v1/peer/compare: the destination's problems with a move of this VM (no job). */
  compare(b: Omit<CompareRequest, 'protocol'>): Promise<CompareReply> {
    return this.call('POST', '/v1/peer/compare', { protocol: PROTOCOL_VERSION, ...b }, 60_000);
  }

  /** GET /v1/peer/overview: the peer's host, VMs and recent jobs, for a dashboard on this host. */
  overview<T>(): Promise<T> { return this.call('GET', '/v1/peer/overview', undefined, this.timeoutMs); }

  /** GET /v1/peer/cluster: is the peer renewing its cluster lease? (a host deciding whether to fence asks every peer) */
  clusterLease(): Promise<{ host: string; renewing: boolean; sinceRenewMs?: number; cluster: string | null }> { return this.call('GET', '/v1/peer/cluster', undefined, this.timeoutMs); }

  /** GET /v1/peer/addresses: the addresses the peer's VMs hold and those it reserves (an older peer: NOT_FOUND). */
  addresses(): Promise<AddressesReply> { return this.call('GET', ADDRESSES_ROUTE.url, undefined, this.timeoutMs); }

  /** GET /v1/peer/ping: is the peer's agent up? */
  ping(): Promise<{ host: string; protocol: number; migrationSlotsFree?: number }> { return this.call('GET', '/v1/peer/ping', undefined, 5_000); }

  /** GET /v1/peer/host: the peer's capacity, maintenance state and VMs, for a drain's placement (src/agent/maintenance.ts PeerHostSummary). */
  hostSummary<T>(): Promise<T> { return this.call('GET', '/v1/peer/host', undefined, this.timeoutMs); }

  /** POST /v1/peer/failback: asks the peer to move `vm` back to the caller, which is leaving maintenance; answers the job id. */
  failback<T>(b: { protocol: number; vm: string; destination: string }): Promise<T> { return this.call('POST', '/v1/peer/failback', b, 60_000); }

  /** POST /v1/peer/drain-step: the cluster manager asks the drained host for a report, a move or a clean stop of one VM (src/agent/cluster-drain.ts). */
  drainStep<T>(b: { protocol: number; action: string; vm: string; destination?: string }): Promise<T> { return this.call('POST', '/v1/peer/drain-step', b, 180_000); }

  private post<T>(jobId: string, msg: string, body: object, timeoutMs = this.timeoutMs): Promise<T> {
    const secret = msg === 'prepare' ? null : this.secretOf(jobId);
    return this.call('POST', `${PEER_BASE}/${jobId}/${msg}`, { ...envelopeFor(jobId), ...body, ...(secret !== null ? { secret } : {}) }, timeoutMs);
  }

  private async call<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    let res: RawReply;
    try {
      res = await this.send(method, new URL(path, this.baseUrl), body === undefined ? undefined : JSON.stringify(body), timeoutMs);
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new FerryError('HOST_UNREACHABLE', `The agent of host ${this.peer} did not answer ${method} ${path}.`, { cause: e });
    }
    const json = res.json as { error?: { code?: unknown; message?: string } } | undefined;
    if (res.status >= 400) {
      const e = json?.error;
      throw new FerryError(isErrorCode(e?.code) ? e.code : 'MIGRATION_FAILED', e?.message ?? `The agent of host ${this.peer} answered ${res.status}.`);
    }
    return json as T;
  }

  /**
   * One request, sent again once when it failed on a kept-alive connection the peer had just
   * closed (ECONNRESET/EPIPE on a reused socket: the request never reached the peer; Node's
   * documented race between an idle socket's reuse and the server's keep-alive timeout).
   */
  private async send(method: string, url: URL, payload: string | undefined, timeoutMs: number): Promise<RawReply> {
    try {
      return await this.sendOnce(method, url, payload, timeoutMs);
    } catch (e) {
      if (!(e instanceof StaleSocketError)) throw e;
      return this.sendOnce(method, url, payload, timeoutMs);
    }
  }

  private sendOnce(method: string, url: URL, payload: string | undefined, timeoutMs: number): Promise<RawReply> {
    const secure = url.protocol === 'https:';
    if (secure && !this.tls) {
      return Promise.reject(new FerryError('TLS_UNAVAILABLE', `The agent of host ${this.peer} speaks HTTPS but this host has no certificate to present (no tls in its agent config).`));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const opts = {
      method, hostname: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, headers, signal: AbortSignal.timeout(timeoutMs),
      ...(secure && this.tls ? { agent: agentFor(this.tls, this.peer) } : {}),
    };
    return new Promise<RawReply>((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(opts, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let json: unknown;
          try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { json = undefined; }
          resolve({ status: res.statusCode ?? 500, json });
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        reject(req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') ? new StaleSocketError(e) : e);
      });
      req.end(payload);
    });
  }
}

/** What {@link peerClient} reads of the host's job store: the secrets of the jobs it sends. */
interface SecretStore { find(id: string): { role: string } | undefined; secretOf(id: string): string | null }

/**
 * A client for peer `host` of `h`, with `h`'s certificate when it has one, and the one-time
 * secrets of the jobs `h` sends when it has a job store (the destination's store keeps only hashes).
 */
export function peerClient(h: { peerUrl(host: string): string; readonly tls?: { material: TlsMaterial }; readonly jobs?: SecretStore }, host: string, timeoutMs?: number): PeerClient {
  const secretOf = (id: string): string | null => (h.jobs?.find(id)?.role === 'source' ? h.jobs.secretOf(id) : null);
  return new PeerClient(h.peerUrl(host), host, timeoutMs, h.tls?.material, secretOf);
}
