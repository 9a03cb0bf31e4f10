/**
 * IP and CIDR arithmetic for fromCIDR/toCIDR/ipBlock and CIDR-derived identities. Addresses become
 * bigints (IPv4 in the low 32 bits, tagged by family) so containment is two shifts. Load time and
 * per connection only, never per request.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix {
  readonly family: 4 | 6;
  readonly bits: number;
  /** Network address (host bits cleared). */
  readonly addr: bigint;
  /** Canonical text, e.g. "10.0.0.0/8". */
  readonly text: string;
}

function v4ToBig(ip: string): bigint {
  let n = 0n;
  for (const part of ip.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function v6ToBig(ip: string): bigint | undefined {
  let s = ip;
  let tail: bigint[] = [];
  const lastColon = s.lastIndexOf(':');
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    if (!isIPv4(maybeV4)) return undefined;
    const v = v4ToBig(maybeV4);
    tail = [v >> 16n, v & 0xffffn];
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...Array<string>(Math.max(fill, 0)).fill('0'), ...r];
  if (groups.length !== 8) return undefined;
  let n = 0n;
  groups.forEach((g, i) => {
    const t = tail.length > 0 && i >= 6 ? (tail[i - 6] as bigint) : BigInt(parseInt(g, 16));
    n = (n << 16n) | t;
  });
  return n;
}

function bigToV6(n: bigint): string {
  const g: string[] = [];
  for (let i = 7; i >= 0; i--) g.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // compress the longest run of zeros (RFC 5952)
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return g.slice(0, best).join(':') + '::' + g.slice(best + bestLen).join(':');
}

function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

/** Canonical IP text: IPv4-mapped IPv6 becomes IPv4; IPv6 compressed lower-case; undefined if not an IP. */
export function canonicalIP(ip: string): string | undefined {
  // isIPv4 rejects leading zeros and out-of-range parts: what it accepts is already canonical.
  if (isIPv4(ip)) return ip;
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (!isIPv6(bare)) return undefined;
  const n = v6ToBig(bare.toLowerCase());
  if (n === undefined) return undefined;
  if (n >> 32n === 0xffffn) return bigToV4(n & 0xffffffffn);
  return bigToV6(n);
}

export function parseIP(ip: string): { family: 4 | 6; addr: bigint } | undefined {
  const c = canonicalIP(ip);
  if (c === undefined) return undefined;
  return isIPv4(c) ? { family: 4, addr: v4ToBig(c) } : { family: 6, addr: v6ToBig(c) as bigint };
}

/** Parses "a.b.c.d/n" or "x::/n" (a bare address is a host prefix). Undefined when invalid. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const fam = isIPv4(ipText) ? 4 : isIPv6(ipText) ? 6 : 0;
  if (fam === 0) return undefined;
  const max = fam === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    if (bits > max) return undefined;
  }
  const raw = fam === 4 ? v4ToBig(ipText) : (v6ToBig(ipText.toLowerCase()) as bigint);
  const hostBits = BigInt(max - bits);
  const addr = (raw >> hostBits) << hostBits;
  const family = fam as 4 | 6;
  return { family, bits, addr, text: `${family === 4 ? bigToV4(addr) : bigToV6(addr)}/${bits}` };
}

/** True when address `addr` of `family` lies in prefix `p`. */
export function prefixContainsAddr(p: Prefix, family: 4 | 6, addr: bigint): boolean {
  if (p.family !== family) return false;
  const shift = BigInt((family === 4 ? 32 : 128) - p.bits);
  return addr >> shift === p.addr >> shift;
}

/** True when prefix `inner` lies inside prefix `outer`. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return inner.bits >= outer.bits && prefixContainsAddr(outer, inner.family, inner.addr);
}
