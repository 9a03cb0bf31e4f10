/**
 * The pieces of RFC 9112 framing both directions share: field lines and chunk-size lines. The
 * request parser (front end) and the response parser (our upstream client) call the same code, so
 * they cannot drift apart on what a header or a chunk is.
 */
import { HttpParseError } from '../errors.js';
import { FIELD_VALUE, HEX_VALUE, TOKEN } from './chars.js';

const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const SEMI = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Max hex digits in a chunk-size: 13 already exceeds 2^52; 16 tolerates a few leading zeros. */
export const MAX_CHUNK_SIZE_DIGITS = 16;

/**
 * RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, in `buf[start, end)` (CRLF
 * excluded); pushes name and value onto `into`. Rejects obs-fold (§5.2 allows reject-with-400, and
 * a proxy MUST reject or unfold it in a response), whitespace before the colon (§5.1 MUST reject),
 * non-token names, and CTLs other than HTAB in values (RFC 9110 §5.5).
 */
export function parseFieldLine(buf: Buffer, start: number, end: number, into: string[], maxCount: number, trailer: boolean): void {
  const first = buf[start]!;
  if (first === SP || first === HTAB) throw new HttpParseError('L7G_ERR_OBS_FOLD');
  let i = start;
  while (i < end && TOKEN[buf[i]!] === 1) i++;
  const nameEnd = i;
  if (i === end) throw new HttpParseError('L7G_ERR_BAD_HEADER_NAME');
  if (buf[i] !== COLON) {
    const c = buf[i];
    throw new HttpParseError(
      c === SP || c === HTAB ? 'L7G_ERR_SPACE_BEFORE_COLON' : c === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_HEADER_NAME',
    );
  }
  if (nameEnd === start) throw new HttpParseError('L7G_ERR_BAD_HEADER_NAME');
  i++;
  while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
  const valueStart = i;
  let valueEnd = end;
  while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
  for (let j = valueStart; j < valueEnd; j++) {
    const c = buf[j]!;
    if (FIELD_VALUE[c] !== 1) throw new HttpParseError(c === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_HEADER_VALUE');
  }
  if (into.length >= maxCount * 2) {
    throw new HttpParseError(trailer ? 'L7G_ERR_TRAILERS_TOO_LARGE' : 'L7G_ERR_TOO_MANY_HEADERS');
  }
  into.push(buf.toString('latin1', start, nameEnd), buf.toString('latin1', valueStart, valueEnd));
}

/**
 * RFC 9112 §7.1: chunk-size = 1*HEXDIG, then optional chunk-ext (ignored, but its bytes are
 * returned so the caller can bound their total), in `buf[start, end)`. No BWS before ';' is
 * accepted: parsers disagree on it (a smuggling vector). Returns the size; `ext` gets the
 * extension's byte count.
 */
export function parseChunkSize(buf: Buffer, start: number, end: number, ext: { bytes: number }): number {
  let i = start;
  let size = 0;
  for (; i < end; i++) {
    const d = HEX_VALUE[buf[i]!]!;
    if (d === 255) break;
    size = size * 16 + d;
  }
  const digits = i - start;
  if (digits === 0 || digits > MAX_CHUNK_SIZE_DIGITS) throw new HttpParseError('L7G_ERR_BAD_CHUNK_SIZE');
  ext.bytes = 0;
  if (i < end) {
    if (buf[i] !== SEMI) throw new HttpParseError(buf[i] === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_CHUNK_SIZE');
    checkChunkExtensions(buf, i, end);
    ext.bytes = end - i;
  }
  return size;
}

/**
 * RFC 9112 §7.1.1: chunk-ext = *( ";" chunk-ext-name [ "=" chunk-ext-val ] ), name a token, value
 * a token or a quoted-string (RFC 9110 §5.6.4), read from the first ';' to the CR at `end`. The
 * grammar's BWS is refused, as before the first ';': a name without a token (`5;`), stray bytes
 * after a value, or an unterminated quote are what llhttp refuses too, and a parser further on that
 * read them differently would disagree about where the chunk data starts.
 */
function checkChunkExtensions(buf: Buffer, start: number, end: number): void {
  let i = start;
  while (i < end) {
    if (buf[i] !== SEMI) throw new HttpParseError(buf[i] === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_CHUNK_EXT');
    const name = ++i;
    while (i < end && TOKEN[buf[i]!] === 1) i++;
    if (i === name) throw new HttpParseError('L7G_ERR_BAD_CHUNK_EXT');
    if (i === end || buf[i] !== EQUALS) continue;
    i++;
    if (buf[i] === DQUOTE) {
      i = quotedStringEnd(buf, i + 1, end);
      continue;
    }
    const value = i;
    while (i < end && TOKEN[buf[i]!] === 1) i++;
    if (i === value) throw new HttpParseError('L7G_ERR_BAD_CHUNK_EXT');
  }
}

/** RFC 9110 §5.6.4: qdtext and quoted-pair up to the closing DQUOTE; the index after it. */
function quotedStringEnd(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const c = buf[i]!;
    if (c === DQUOTE) return i + 1;
    if (c === BACKSLASH) {
      i++;
      if (i === end || FIELD_VALUE[buf[i]!] !== 1) break;
      continue;
    }
    if (FIELD_VALUE[c] !== 1) break;
  }
  throw new HttpParseError('L7G_ERR_BAD_CHUNK_EXT');
}
