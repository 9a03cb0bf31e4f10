import type { FrontResponse } from '../http1/types.js';
import { imfDate } from '../http1/response-writer.js';

/**
 * Responses the proxy writes itself (never from a backend). The L7 denial must be byte-exact with
 * cilium-envoy's (docs/semantics.md#what-the-proxy-answers), so it is pre-serialised by the HTTP/1 writer; these are
 * the other local replies, each with a fixed text body as Envoy's local replies have.
 */
export interface LocalReply {
  readonly status: number;
  readonly reason: string;
  readonly body: Buffer;
}

function reply(status: number, reason: string, text: string): LocalReply {
  return { status, reason, body: Buffer.from(text + '\r\n', 'latin1') };
}

export const replies = {
  badRequest: reply(400, 'Bad Request', 'Bad Request'),
  /** The authority names nothing l7guard knows (RFC 9110 §15.5.20). */
  misdirected: reply(421, 'Misdirected Request', 'Misdirected Request'),
  /** A Service without ready pods: Envoy's wording. */
  noHealthyUpstream: reply(503, 'Service Unavailable', 'no healthy upstream'),
  upstreamConnect: reply(503, 'Service Unavailable', 'upstream connect error'),
  badGateway: reply(502, 'Bad Gateway', 'upstream error'),
  gatewayTimeout: reply(504, 'Gateway Timeout', 'upstream request timeout'),
} as const;

export function replyForUpstreamStatus(status: 502 | 503 | 504): LocalReply {
  return status === 503 ? replies.upstreamConnect : status === 504 ? replies.gatewayTimeout : replies.badGateway;
}

/**
 * `close`: what follows on the connection cannot be trusted (a bad request head, a body the upstream
 * left unread). `server` (`serve --server-name`): Envoy's local reply fields, in its order —
 * content-length, content-type, date, server.
 */
export function sendLocalReply(res: FrontResponse, r: LocalReply, close: boolean, server?: string): void {
  if (close) res.closeAfterResponse();
  const length = String(r.body.length);
  res.writeHead(
    r.status,
    r.reason,
    server === undefined
      ? ['content-length', length, 'content-type', 'text/plain']
      : ['content-length', length, 'content-type', 'text/plain', 'date', imfDate(), 'server', server],
    { contentLength: r.body.length },
  );
  res.end(r.body);
}

/** RFC 9110 §15.4.8: the 307 to the path with its escaped slashes undone (normalize-path.ts). */
export function sendRedirect(res: FrontResponse, location: string, server?: string): void {
  res.writeHead(
    307,
    'Temporary Redirect',
    server === undefined
      ? ['location', location, 'content-length', '0']
      : ['location', location, 'content-length', '0', 'date', imfDate(), 'server', server],
    { contentLength: 0 },
  );
  res.end();
}
