/**
 * The backend's response head as the front end writes it to the client: the hop-by-hop fields of
 * the backend's connection stop here (RFC 9110 §7.6.1).
 */
import { equalsLower } from '../http1/chars.js';
import { stripResponseHopByHop } from '../http1/hop-by-hop.js';

/**
 * The pod's fields minus its connection's hop-by-hop ones, in order, as received. `server`
 * (`serve --server-name`): the pod's `server` fields give way to one of ours, last, as Envoy's
 * default `server_header_transformation: OVERWRITE` does.
 */
export function downstreamHeaders(h: readonly string[], server?: string): string[] {
  const out = stripResponseHopByHop(h);
  if (server === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i + 1 < out.length; i += 2) if (!(out[i]!.length === 6 && equalsLower(out[i]!, 'server'))) kept.push(out[i]!, out[i + 1]!);
  kept.push('server', server);
  return kept;
}

/** The backend's reason phrase, or the status's usual one when it sent none (RFC 9112 §4 allows that). */
export function reasonPhrase(status: number, reason: string): string {
  return reason || (STATUS_TEXT[status] ?? 'Unknown');
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request',
  401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Content Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
