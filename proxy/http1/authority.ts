/**
 * Validity of the authority a request is routed by (the absolute-form target's, else Host).
 */
import { isIPv6 } from 'node:net';
import { splitAuthority } from '../../policy/resolve.js';

/**
 * RFC 9112 §3.2: a server MUST answer 400 to a request whose Host is invalid. RFC 3986 §3.2:
 * authority = host [":" port], host = IP-literal / IPv4address / reg-name; no userinfo for http
 * (RFC 9110 §4.2.4). Stricter than RFC 3986 on purpose: reg-name is limited to unreserved
 * characters (no sub-delims, no percent-encoding), because no DNS name we could route to contains
 * anything else, and `,` or `;` in a Host is where other hops split it into two (host confusion).
 * An empty Host is valid syntax for origin-form, but a proxy routing by it has no destination: 400.
 */
export function isValidAuthority(authority: string): boolean {
  const a = splitAuthority(authority);
  if (a === undefined || a.host.length === 0) return false;
  if (authority.charCodeAt(0) === 0x5b /* [ */) return isIPv6(a.host);
  const h = a.host;
  for (let i = 0; i < h.length; i++) {
    if (REG_NAME[h.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const REG_NAME = (() => {
  const t = new Uint8Array(256);
  for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~') t[c.charCodeAt(0)] = 1;
  return t;
})();
