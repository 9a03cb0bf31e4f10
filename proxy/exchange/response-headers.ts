/**
 * The backend's response head as the front end writes it to the client: undici hands it over as
 * an object, the front end takes a flat list, and the hop-by-hop fields of the backend's
 * connection stop here (RFC 9110 §7.6.1).
 */
import { stripResponseHopByHop } from '../http1/hop-by-hop.js';

/**
 * Multi-valued fields (undici gives arrays) become one entry per value, in order. `server`
 * (`serve --server-name`): the pod's `server` fields give way to one of ours, last, as Envoy's
 * default `server_header_transformation: OVERWRITE` does.
 */
export function downstreamHeaders(h: Record<string, string | string[]>, server?: string): string[] {
  const out = stripResponseHopByHop(flattenHeaders(h, server !== undefined));
  if (server !== undefined) out.push('server', server);
  return out;
}

/** The backend's reason phrase, or the status's usual one when it sent none (RFC 9112 §4 allows that). */
export function reasonPhrase(status: number, reason: string): string {
  return reason || (STATUS_TEXT[status] ?? 'Unknown');
}

function flattenHeaders(h: Record<string, string | string[]>, withoutServer: boolean): string[] {
  const out: string[] = [];
  for (const name in h) {
    // undici's names are lower-case.
    if (withoutServer && name === 'server') continue;
    const v = h[name]!;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request',
  401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Content Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
