// The dashboard's only way to the agent: its HTTP API, with the user's bearer token.
import type { ApiErrorBody, Overview, StreamEvent } from './types';

const KEY = 'ferry.token';

/** The token of this browser tab (sessionStorage: it goes when the tab closes). */
export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string): void => sessionStorage.setItem(KEY, t),
  clear: (): void => sessionStorage.removeItem(KEY),
};

/** An error answer of the API, or a failure to reach it: code, sentence and HTTP status. */
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) { super(message); }
}

/** `CODE: sentence`, how every error is shown. */
export const describe = (e: unknown): { code: string; message: string } =>
  e instanceof ApiError ? { code: e.code, message: e.message } : { code: 'CLIENT', message: e instanceof Error ? e.message : String(e) };

/** One API call; an error answer becomes an ApiError with the API's code and sentence. */
export async function call<T>(method: string, path: string, body?: unknown, tok = token.get()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (tok) headers.authorization = `Bearer ${tok}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError('AGENT_UNREACHABLE', `The agent did not answer (${e instanceof Error ? e.message : String(e)}).`, 0);
  }
  const text = await res.text();
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  if (!res.ok) {
    const err = (json as ApiErrorBody | undefined)?.error;
    throw new ApiError(err?.code ?? 'INTERNAL', err?.message ?? `The agent answered ${res.status}.`, res.status);
  }
  return json as T;
}

export const overview = (tok?: string): Promise<Overview> => call<Overview>('GET', '/v1/overview', undefined, tok ?? token.get());

/**
 * Follows the agent's event stream (/v1/events, server-sent events). EventSource cannot send an
 * Authorization header, so this reads the stream with fetch; it reconnects after 2 s when the
 * stream ends, until `signal` aborts.
 */
export async function followEvents(onEvent: (e: StreamEvent) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await fetch('/v1/events', { headers: { accept: 'text/event-stream', authorization: `Bearer ${token.get() ?? ''}` }, signal });
      if (res.ok && res.body) {
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data) { try { onEvent(JSON.parse(data) as StreamEvent); } catch { /* a malformed event is skipped */ } }
          }
        }
      }
    } catch { /* aborted or dropped: retry below */ }
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
  }
}
