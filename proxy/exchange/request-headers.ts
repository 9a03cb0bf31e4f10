/**
 * The request head a backend gets, built by named passes in one fixed order, as node-http-proxy's
 * and httpxy's web-incoming passes build theirs.
 *
 * Why this order:
 * - Hop-by-hop removal comes first because it is the pass that copies: the received list stays the
 *   client's (the L7 check judged it, and a retry builds its head from it again), every later pass
 *   edits the copy in place. Also, a field the client's Connection names (an X-Forwarded-For, say)
 *   is then gone before the forwarding fields are computed.
 * - Content-Length next: the framing the backend reads is the one the front end read, in one field.
 * - Host and the X-Forwarded-* fields come next, replacing whatever the client wrote in their place.
 * - The policy's header edits come last, so a rule has the final word on any field, ours included.
 */
import type { HeaderEdit, HeaderList } from '../../policy/model.js';
import type { FrontRequest } from '../http1/types.js';
import { isAlwaysHopByHop, stripRequestHopByHop } from '../http1/hop-by-hop.js';
import { equalsLower } from '../http1/chars.js';

/** What the passes read of one exchange (exchange.ts implements it; tests pass plain objects). */
export interface ForwardedRequest {
  readonly req: Pick<FrontRequest, 'headers' | 'host' | 'remoteAddress' | 'contentLength'>;
  /** The authority the request was routed and judged by. */
  readonly authority: string;
  /** Received on a TLS listener. */
  readonly tls: boolean;
  /** The allowing L7 rule's header edits; undefined: none. */
  readonly edits: readonly HeaderEdit[] | undefined;
}

/** The first pass: builds the upstream list from the received one, which it leaves untouched. */
export type CopyingPass = (received: HeaderList, x: ForwardedRequest) => string[];
/** Every later pass: edits the upstream list in place. */
export type RequestHeaderPass = (headers: string[], x: ForwardedRequest) => void;

/** RFC 9110 §7.6.1: fields about the client's connection, and those its Connection names, stop at the proxy. */
export function removeHopByHop(received: HeaderList): string[] {
  return stripRequestHopByHop(received);
}

/**
 * RFC 9110 §8.6: a Content-Length sent as a list (`5, 5`) or repeated with the same value is
 * accepted by the front end, and a recipient that accepts it MAY replace it with a single field of
 * that decimal value — which is what the backend gets. Forwarded as received it is refused by the
 * upstream client (undici: "duplicate content-length header") and a 502 would answer a request the
 * front end accepted. A single field already in canonical form is left as it is (no allocation).
 */
export function singleContentLength(headers: string[], x: ForwardedRequest): void {
  const n = x.req.contentLength;
  // Chunked (hop-by-hop removal took Transfer-Encoding; the parser refused it with Content-Length) or no body field.
  if (n === undefined) return;
  const value = String(n);
  let first = -1;
  let fields = 0;
  let canonical = true;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== 14 || !equalsLower(name, 'content-length')) continue;
    if (first < 0) first = i;
    fields++;
    if (headers[i + 1] !== value) canonical = false;
  }
  if (fields === 1 && canonical) return;
  if (first < 0) {
    // The body's length is known but its field is gone: send it, rather than let the client re-frame.
    headers.push('content-length', value);
    return;
  }
  for (let i = headers.length - 2; i > first; i -= 2) {
    const name = headers[i]!;
    if (name.length === 14 && equalsLower(name, 'content-length')) headers.splice(i, 2);
  }
  headers[first + 1] = value;
}

/** RFC 9112 §3.2.2: the backend gets the authority that was routed and judged, not a Host that disagrees with it. */
export function setRoutedHost(headers: string[], x: ForwardedRequest): void {
  // Differs for an absolute-form target (whose authority a proxy MUST use over the received Host),
  // and for a request without Host that was routed by its original destination.
  if (x.authority === x.req.host) return;
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === 4 && headers[i]!.toLowerCase() === 'host') headers.splice(i, 2);
  }
  headers.unshift('host', x.authority);
}

/** X-Forwarded-For: the client's address appended to the chain it sent, its fields folded into one (RFC 9110 §5.3). */
export function appendForwardedFor(headers: string[], x: ForwardedRequest): void {
  let chain: string | undefined;
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i]!;
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') {
      chain = chain === undefined ? headers[i + 1]! : `${headers[i + 1]!}, ${chain}`;
      headers.splice(i, 2);
    }
  }
  const client = x.req.remoteAddress;
  headers.push('x-forwarded-for', chain === undefined ? client : `${chain}, ${client}`);
}

/** X-Forwarded-Proto: the scheme of our own listener; the client's claim is never passed on. */
export function setForwardedProto(headers: string[], x: ForwardedRequest): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i]!;
    if (name.length === 17 && name.toLowerCase() === 'x-forwarded-proto') headers.splice(i, 2);
  }
  headers.push('x-forwarded-proto', x.tls ? 'https' : 'http');
}

/** headerMatches mismatch actions (docs/semantics.md#header-match-actions): the allowing rule's ADD / DELETE / REPLACE. */
export function applyPolicyEdits(headers: string[], x: ForwardedRequest): void {
  if (x.edits !== undefined) applyEdits(headers, x.edits);
}

/** The edits in the rule's order; names are lower-case, fields match whatever case they were sent in. */
export function applyEdits(headers: string[], edits: readonly HeaderEdit[]): void {
  for (const e of edits) {
    if (e.op === 'add') {
      headers.push(e.name, e.value);
      continue;
    }
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (headers[i]!.toLowerCase() === e.name) headers.splice(i, 2);
    }
    if (e.op === 'replace') headers.push(e.name, e.value);
  }
}

/** In order; the tuple type keeps the copying pass first. */
export const REQUEST_HEADER_PASSES: readonly [CopyingPass, ...RequestHeaderPass[]] = Object.freeze([
  removeHopByHop,
  singleContentLength,
  setRoutedHost,
  appendForwardedFor,
  setForwardedProto,
  applyPolicyEdits,
] as const);

/**
 * True when every pass above would leave the client's fields as they are and only append the
 * forwarding fields: no hop-by-hop field (not even a Connection naming nothing), no field of ours
 * to replace (X-Forwarded-*), one canonical Content-Length if any, the routed Host, no policy edit.
 * The pod may then get the field lines as received (`rawFields`) followed by forwardingFields():
 * the same fields, in the same order, as upstreamHeaders() builds — only their bytes are not copied
 * through strings and back. One pass over the names, matched by length first.
 */
export function fieldsPassUnchanged(x: ForwardedRequest): boolean {
  if (x.edits !== undefined || x.authority !== x.req.host) return false;
  const h = x.req.headers;
  let lengths = 0;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (isAlwaysHopByHop(name, true)) return false;
    switch (name.length) {
      case 14:
        if (equalsLower(name, 'content-length') && (++lengths > 1 || h[i + 1] !== String(x.req.contentLength))) return false;
        break;
      case 15:
        if (equalsLower(name, 'x-forwarded-for')) return false;
        break;
      case 17:
        if (equalsLower(name, 'x-forwarded-proto')) return false;
        break;
    }
  }
  return true;
}

/** What the passes append to fields that pass unchanged (appendForwardedFor, setForwardedProto). */
export function forwardingFields(x: ForwardedRequest): string[] {
  return ['x-forwarded-for', x.req.remoteAddress, 'x-forwarded-proto', x.tls ? 'https' : 'http'];
}

/** The request head for the backend: every pass, in order, over one new array. */
export function upstreamHeaders(x: ForwardedRequest): string[] {
  const passes = REQUEST_HEADER_PASSES;
  const headers = passes[0](x.req.headers, x);
  for (let i = 1; i < passes.length; i++) (passes[i] as RequestHeaderPass)(headers, x);
  return headers;
}
