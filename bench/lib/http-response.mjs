/**
 * Just enough HTTP/1.1 response parsing for a load generator that checks every answer: status,
 * Content-Length or chunked framing, `Connection: close`. Works on the bytes received so far.
 */
const CRLFCRLF = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/**
 * @param {Buffer} buf bytes of one response (a prefix of it, or more)
 * @returns {null | { status: number, bodyStart: number, end: number, close: boolean }}
 *   null while incomplete; `end` is the offset just after the response.
 */
export function parseResponse(buf) {
  const headEnd = buf.indexOf(CRLFCRLF);
  if (headEnd === -1) return null;
  const status = (buf[9] - 48) * 100 + (buf[10] - 48) * 10 + (buf[11] - 48);
  const head = buf.latin1Slice(0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const close = head.includes('\nconnection: close');
  const cl = head.indexOf('\ncontent-length:');
  if (cl !== -1) {
    const len = parseInt(head.slice(cl + 16, head.indexOf('\r', cl + 16) >>> 0 || undefined), 10);
    const end = bodyStart + len;
    return buf.length >= end ? { status, bodyStart, end, close } : null;
  }
  if (head.includes('\ntransfer-encoding: chunked')) {
    // The bench's bodies never contain a bare "0\r\n\r\n"; good enough to find the last chunk.
    if (buf.length - bodyStart >= 5 && buf.indexOf(LAST_CHUNK, bodyStart) !== -1) {
      const last = buf.lastIndexOf(LAST_CHUNK);
      return { status, bodyStart, end: last + 5, close };
    }
    return null;
  }
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, bodyStart, end: bodyStart, close };
  // Close-delimited: complete only when the peer closes (the caller handles that).
  return null;
}

/** Outcomes a request may be meant to have. */
export const LANDED = 'landed';
export const DENIED = 'denied';
export const DROP = 'drop';

const LANDED_BODY = Buffer.from('Ship landed\n');
const DENIED_BODY = Buffer.from('Access denied');

/** What a complete response was: 'landed', 'denied', or `other:<status>`. */
export function classify(buf, r) {
  if (r.status === 200 && buf.indexOf(LANDED_BODY, r.bodyStart) !== -1) return LANDED;
  if (r.status === 403 && buf.indexOf(DENIED_BODY, r.bodyStart) !== -1) return DENIED;
  return `other:${r.status}`;
}
