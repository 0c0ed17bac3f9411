import { FerryError, isErrorCode } from '../errors/index.js';
import {
  envelopeFor, PEER_BASE, PROTOCOL_VERSION, type CancelReply, type CompareReply, type CompareRequest, type ConfirmReply, type ConfirmRequest, type CutoverReply, type CutoverRequest,
  type FinishReply, type FinishRequest, type PerformReadyReply, type PrepareReply, type PrepareRequest, type StatusReply,
} from './protocol.js';

type Body<T> = Omit<T, 'protocol' | 'jobId'>;

/** How long a rollback waits for the destination to clean up before it goes on (and keeps asking in the background). */
export const CLEANUP_TIMEOUT_MS = 20_000;

/**
 * The source's side of peer RPC (protocol.ts): one method per message. A network failure is
 * HOST_UNREACHABLE (retryable: recovery asks again); an error answer keeps the peer's code.
 */
export class PeerClient {
  constructor(private readonly baseUrl: string, private readonly peer: string, private readonly timeoutMs = 60_000) {}

  prepare(jobId: string, b: Body<PrepareRequest>): Promise<PrepareReply> { return this.post(jobId, 'prepare', b, 180_000); }
  performReady(jobId: string): Promise<PerformReadyReply> { return this.post(jobId, 'perform-ready', {}); }
  cutover(jobId: string, b: Body<CutoverRequest>): Promise<CutoverReply> { return this.post(jobId, 'cutover', b, 5_000); }
  finish(jobId: string, b: Body<FinishRequest>, timeoutMs = this.timeoutMs): Promise<FinishReply> { return this.post(jobId, 'finish', b, timeoutMs); }
  confirm(jobId: string, b: Body<ConfirmRequest>): Promise<ConfirmReply> { return this.post(jobId, 'confirm', b); }
  /** Clean-up on the destination is quick (kill QEMU, delete what prepare made): a short timeout. */
  cancel(jobId: string, reason: string): Promise<CancelReply> { return this.post(jobId, 'cancel', { reason }, CLEANUP_TIMEOUT_MS); }
  status(jobId: string): Promise<StatusReply> { return this.call('GET', `${PEER_BASE}/${jobId}`, undefined, 10_000); }

  /** POST /v1/peer/compare: the destination's problems with a move of this VM (no job). */
  compare(b: Omit<CompareRequest, 'protocol'>): Promise<CompareReply> {
    return this.call('POST', '/v1/peer/compare', { protocol: PROTOCOL_VERSION, ...b }, 60_000);
  }

  /** GET /v1/peer/ping: is the peer's agent up? */
  ping(): Promise<{ host: string; protocol: number; migrationSlotsFree?: number }> { return this.call('GET', '/v1/peer/ping', undefined, 5_000); }

  private post<T>(jobId: string, msg: string, body: object, timeoutMs = this.timeoutMs): Promise<T> {
    return this.call('POST', `${PEER_BASE}/${jobId}/${msg}`, { ...envelopeFor(jobId), ...body }, timeoutMs);
  }

  private async call<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method, signal: AbortSignal.timeout(timeoutMs),
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
    } catch (e) {
      throw new FerryError('HOST_UNREACHABLE', `The agent of host ${this.peer} did not answer ${method} ${path}.`, { cause: e });
    }
    const json = (await res.json().catch(() => undefined)) as { error?: { code?: unknown; message?: string } } | undefined;
    if (!res.ok) {
      const e = json?.error;
      throw new FerryError(isErrorCode(e?.code) ? e.code : 'MIGRATION_FAILED', e?.message ?? `The agent of host ${this.peer} answered ${res.status}.`);
    }
    return json as T;
  }
}
