import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ContextHost } from '../util/index.js';
import { bearerToken, httpsTrust } from './client.js';

/** One server-sent event of an agent's /v1/events stream. */
export interface StreamEvent { type: string; data: Record<string, unknown> }

/**
 * Follows an agent's event stream (SSE) and calls `onEvent` for each event. Resolves once the
 * stream is open, so a caller can subscribe before it starts the action it wants to watch.
 * Returns the function that closes the stream.
 */
export function followEvents(host: ContextHost, onEvent: (e: StreamEvent) => void): Promise<() => void> {
  const url = new URL('/v1/events', host.url);
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  const token = bearerToken(host);
  if (token) headers.authorization = `Bearer ${token}`;
  const opts = host.socket ? { socketPath: host.socket, path: '/v1/events', headers } : { hostname: url.hostname, port: url.port, path: '/v1/events', headers, ...httpsTrust() };
  const req: ClientRequest = (url.protocol === 'https:' && !host.socket ? httpsRequest : httpRequest)(opts);
  return new Promise((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (type && data) {
            try { onEvent({ type, data: JSON.parse(data) as Record<string, unknown> }); } catch { /* a malformed event is skipped */ }
          }
        }
      });
      resolve(() => { req.destroy(); });
    });
    req.end();
  });
}
