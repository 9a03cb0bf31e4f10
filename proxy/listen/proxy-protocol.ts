/**
 * PROXY protocol v1 and v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt), receiving side only,
 * behind a small interface: `readProxyHeader(socket)` resolves with the client address the header
 * announces and leaves every following byte unread on the socket.
 *
 * Trust is by peer address only (`--proxy-protocol-from CIDR`): from a trusted peer the header is
 * REQUIRED (as HAProxy's `accept-proxy`), so that a trusted load balancer cannot be bypassed by a
 * client connecting to it without one; from anyone else a PROXY header is not special and the HTTP
 * parser refuses it (400): identity is never taken from bytes an untrusted peer wrote.
 */
import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import { ProxyError } from '../errors.js';

export interface ProxiedPeer {
  readonly address: string;
  readonly port: number;
}

export class ProxyProtocolError extends ProxyError {
  constructor(detail: string) {
    super('L7G_ERR_PROXY_PROTOCOL', `invalid PROXY protocol header: ${detail}`);
  }
}

/** `CIDR` strings → a BlockList; throws on a malformed one (a startup error). */
export function trustedPeers(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const v4 = isIPv4(addr ?? '');
    if (!v4 && !isIPv6(addr ?? '')) throw new Error(`--proxy-protocol-from: not a CIDR: "${c}"`);
    const prefix = bits === undefined ? (v4 ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (v4 ? 32 : 128)) throw new Error(`--proxy-protocol-from: bad prefix in "${c}"`);
    list.addSubnet(addr!, prefix, v4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
/** v1 line limit from the spec (107 bytes including CRLF); v2: 16-byte header + at most 216 of addresses we read. */
const V1_MAX = 107;
const V2_MAX = 16 + 65535;

/** Reads one PROXY header; `undefined` address means LOCAL / UNKNOWN (use the real peer). */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedPeer | undefined> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => done(new ProxyProtocolError('timeout')), timeoutMs);
    timer.unref();
    const done = (err: Error | undefined, peer?: ProxiedPeer, used = 0): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (err !== undefined) return reject(err);
      if (used < buf.length) socket.unshift(buf.subarray(used));
      resolve(peer);
    };
    const onEnd = (): void => done(new ProxyProtocolError('connection ended'));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      try {
        const r = parse(buf);
        if (r !== null) done(undefined, r.peer, r.used);
      } catch (err) {
        done(err as Error);
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

/** null: need more bytes. Throws ProxyProtocolError on anything malformed. */
export function parse(buf: Buffer): { peer: ProxiedPeer | undefined; used: number } | null {
  const n = Math.min(buf.length, 12);
  if (buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) return n < 12 ? null : parseV2(buf);
  const p = Math.min(buf.length, 6);
  if (!buf.subarray(0, p).equals(Buffer.from('PROXY ').subarray(0, p))) throw new ProxyProtocolError('no PROXY signature');
  const end = buf.indexOf('\r\n');
  if (end === -1) {
    if (buf.length >= V1_MAX) throw new ProxyProtocolError('v1 line too long');
    return null;
  }
  if (end + 2 > V1_MAX) throw new ProxyProtocolError('v1 line too long');
  return { peer: parseV1(buf.toString('latin1', 0, end)), used: end + 2 };
}

/** `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN ...`: single spaces, decimal ports. */
function parseV1(line: string): ProxiedPeer | undefined {
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return undefined;
  if (parts.length !== 6) throw new ProxyProtocolError('v1 field count');
  const [, proto, src, , sport] = parts as [string, string, string, string, string, string];
  const ok = proto === 'TCP4' ? isIPv4(src) : proto === 'TCP6' ? isIPv6(src) : false;
  if (!ok) throw new ProxyProtocolError('v1 protocol/address');
  if (!/^\d{1,5}$/.test(sport) || Number(sport) > 65535) throw new ProxyProtocolError('v1 port');
  return { address: src, port: Number(sport) };
}

function parseV2(buf: Buffer): { peer: ProxiedPeer | undefined; used: number } | null {
  if (buf.length < 16) return null;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError('v2 version');
  const len = buf.readUInt16BE(14);
  if (16 + len > V2_MAX) throw new ProxyProtocolError('v2 length');
  if (buf.length < 16 + len) return null;
  const used = 16 + len;
  const cmd = verCmd & 0x0f;
  if (cmd === 0) return { peer: undefined, used }; // LOCAL: health check from the balancer itself
  if (cmd !== 1) throw new ProxyProtocolError('v2 command');
  const fam = buf[13]!;
  if (fam === 0x11) {
    if (len < 12) throw new ProxyProtocolError('v2 TCP4 length');
    return { peer: { address: [...buf.subarray(16, 20)].join('.'), port: buf.readUInt16BE(24) }, used };
  }
  if (fam === 0x21) {
    if (len < 36) throw new ProxyProtocolError('v2 TCP6 length');
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + i * 2).toString(16));
    const addr = groups.join(':');
    const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(addr);
    const v4 = mapped === null ? undefined : `${parseInt(mapped[1]!, 16) >> 8}.${parseInt(mapped[1]!, 16) & 255}.${parseInt(mapped[2]!, 16) >> 8}.${parseInt(mapped[2]!, 16) & 255}`;
    return { peer: { address: v4 ?? addr, port: buf.readUInt16BE(48) }, used };
  }
  if (fam === 0x00) return { peer: undefined, used }; // UNSPEC
  throw new ProxyProtocolError('v2 address family');
}
