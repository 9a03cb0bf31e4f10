/**
 * Reads the SNI of a TLS ClientHello before any byte is answered, so that a connection policy
 * refuses (serverNames, unknown destination, no certificate) can be closed with zero bytes sent,
 * as an L3/L4 drop is, instead of with a TLS alert.
 */
import type { Socket } from 'node:net';

/** TLSPlaintext header (RFC 8446 §5.1): type(1) version(2) length(2). */
const RECORD_HEADER = 5;
/** RFC 8446 §5.1: a record's length MUST NOT exceed 2^14 (plus the header). */
const MAX_RECORD = RECORD_HEADER + 16_384;

export type HelloResult =
  | { readonly ok: true; readonly sni: string | undefined; readonly bytes: Buffer }
  | { readonly ok: false; readonly reason: string };

/**
 * The server_name (RFC 6066 §3, type host_name) of the first ClientHello record, or undefined when
 * it carries none. A ClientHello split over several records is refused (real clients send one).
 */
export function parseClientHello(buf: Buffer): { sni: string | undefined } | { error: string } | 'more' {
  if (buf.length < RECORD_HEADER) return 'more';
  if (buf[0] !== 0x16) return { error: 'not a TLS handshake record' };
  const recLen = buf.readUInt16BE(3);
  if (recLen > 16_384) return { error: 'record too long' };
  if (buf.length < RECORD_HEADER + recLen) return 'more';
  const rec = buf.subarray(RECORD_HEADER, RECORD_HEADER + recLen);
  if (rec.length < 4 || rec[0] !== 0x01) return { error: 'not a ClientHello' };
  const hsLen = rec.readUIntBE(1, 3);
  if (hsLen + 4 > rec.length) return { error: 'ClientHello split across records' };
  const h = rec.subarray(4, 4 + hsLen);
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > h.length) return { error: 'truncated ClientHello' };
  p += 1 + (h[p] as number); // session id
  if (p + 2 > h.length) return { error: 'truncated ClientHello' };
  p += 2 + h.readUInt16BE(p); // cipher suites
  if (p + 1 > h.length) return { error: 'truncated ClientHello' };
  p += 1 + (h[p] as number); // compression methods
  if (p === h.length) return { sni: undefined }; // no extensions
  if (p + 2 > h.length) return { error: 'truncated ClientHello' };
  const end = p + 2 + h.readUInt16BE(p);
  if (end > h.length) return { error: 'truncated extensions' };
  p += 2;
  while (p + 4 <= end) {
    const type = h.readUInt16BE(p);
    const len = h.readUInt16BE(p + 2);
    const body = h.subarray(p + 4, p + 4 + len);
    if (body.length !== len) return { error: 'truncated extension' };
    p += 4 + len;
    if (type !== 0) continue;
    // ServerNameList: length(2), then entries name_type(1) length(2) name.
    let q = 2;
    while (q + 3 <= body.length) {
      const nameType = body[q] as number;
      const nameLen = body.readUInt16BE(q + 1);
      const name = body.subarray(q + 3, q + 3 + nameLen);
      if (name.length !== nameLen) return { error: 'truncated server_name' };
      if (nameType === 0) {
        const s = name.toString('latin1');
        // RFC 6066: ASCII host name, no trailing dot; anything else cannot name a Service.
        if (!/^[A-Za-z0-9.-]{1,253}$/.test(s)) return { error: 'invalid server_name' };
        return { sni: s };
      }
      q += 3 + nameLen;
    }
    return { sni: undefined };
  }
  return { sni: undefined };
}

/** Collects the first ClientHello record from `socket` (paused afterwards), within `timeoutMs`. */
export function readClientHello(socket: Socket, timeoutMs: number): Promise<HelloResult> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (r: HelloResult) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseClientHello(buf);
      if (r === 'more') {
        if (buf.length >= MAX_RECORD) done({ ok: false, reason: 'ClientHello too long' });
        return;
      }
      done('error' in r ? { ok: false, reason: r.error } : { ok: true, sni: r.sni, bytes: buf });
    };
    const onEnd = () => done({ ok: false, reason: 'closed before a ClientHello' });
    const timer = setTimeout(() => done({ ok: false, reason: 'no ClientHello in time' }), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
