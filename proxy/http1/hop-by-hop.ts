/**
 * Hop-by-hop field removal (RFC 9110 §7.6.1): fields that describe one connection must not be
 * forwarded to the next. We re-frame every message ourselves, so the framing fields go too.
 *
 * Decisions:
 * - `Proxy-Connection` (never standardised, RFC 9112 §C.2.2 history) is stripped, as Envoy does.
 * - `Proxy-Authorization` / `Proxy-Authenticate` are **forwarded**: l7guard is transparent (Cilium
 *   redirects traffic to it; no client addresses it as a proxy), so these fields belong to some
 *   explicit proxy further along (e.g. a pod's configured egress proxy, reached through us).
 *   Envoy does not strip them either.
 * - `Expect` is stripped from requests: the front end answers `100-continue` itself (Envoy's
 *   default, `proxy_100_continue: false`), and undici refuses requests that carry it.
 * - `Trailer` is stripped: trailer fields are not forwarded (yet), so announcing them would lie.
 * - `HTTP2-Settings` is stripped even when `Connection` does not name it: it only means something
 *   with an h2c upgrade (RFC 9113 §3.2.1 makes it connection-specific), which we never perform.
 * - A `Connection` option naming `host` or `content-length` is ignored: RFC 9110 §7.6.1 forbids
 *   listing end-to-end fields there, and honouring it would let a client make the request
 *   unroutable upstream, or strip the framing of the body it sends.
 */
import type { HeaderList } from '../../policy/model.js';
import { equalsLower } from './chars.js';
import { parseConnectionTokens } from './request-parser.js';

/**
 * RFC 9110 §7.6.1 (request direction): remove Connection and every field it names, Keep-Alive,
 * Proxy-Connection, TE (§10.1.4), Transfer-Encoding, Upgrade, Trailer, Expect and HTTP2-Settings (see above).
 * Always returns a new array (callers append forwarding fields to it).
 */
export function stripRequestHopByHop(headers: HeaderList): string[] {
  return strip(headers, true);
}

/**
 * RFC 9110 §7.6.1 (response direction): remove Connection and every field it names, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, Trailer, TE. Always returns a new array.
 */
export function stripResponseHopByHop(headers: HeaderList): string[] {
  return strip(headers, false);
}

function strip(headers: HeaderList, request: boolean): string[] {
  const named = connectionOptions(headers);
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (isAlwaysHopByHop(name, request)) continue;
    if (named !== undefined && isNamed(name, named)) continue;
    out.push(name, headers[i + 1]!);
  }
  return out;
}

/** The fixed hop-by-hop set, matched by length first so the common header costs one switch. */
export function isAlwaysHopByHop(name: string, request: boolean): boolean {
  switch (name.length) {
    case 2:
      return equalsLower(name, 'te');
    case 6:
      return request && equalsLower(name, 'expect');
    case 7:
      return equalsLower(name, 'upgrade') || equalsLower(name, 'trailer');
    case 10:
      return equalsLower(name, 'connection') || equalsLower(name, 'keep-alive');
    case 14:
      return request && equalsLower(name, 'http2-settings');
    case 16:
      return equalsLower(name, 'proxy-connection');
    case 17:
      return equalsLower(name, 'transfer-encoding');
    default:
      return false;
  }
}

function connectionOptions(headers: HeaderList): string[] | undefined {
  let values: string[] | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 10 && equalsLower(name, 'connection')) (values ??= []).push(headers[i + 1]!);
  }
  if (values === undefined) return undefined;
  const tokens = parseConnectionTokens(values).filter((t) => t !== 'host' && t !== 'content-length');
  return tokens.length === 0 ? undefined : tokens;
}

function isNamed(name: string, tokens: readonly string[]): boolean {
  for (const t of tokens) if (equalsLower(name, t)) return true;
  return false;
}
