/**
 * HTTP/1.1 response serialisation (RFC 9112 §4, §7.1) and the byte-exact local replies.
 * Everything constant is built once; per response we only concatenate strings.
 */
import type { HeaderList } from '../../policy/model.js';
import { FrontEndError } from '../errors.js';
import { FIELD_VALUE, TOKEN } from './chars.js';

/** Our `server` header value on local replies (cilium-envoy says `envoy`; `serve --server-name` changes it). */
export const SERVER_NAME = 'l7guard';

const DENIED_BODY = 'Access denied\r\n';

let dateSecond = -1;
let dateValue = '';

/**
 * RFC 9110 §5.6.7 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for the `date` header.
 * Formatting is recomputed at most once per wall-clock second, as Node's and nginx's caches do;
 * `Date.now()` per call is far cheaper than `toUTCString()`.
 */
export function imfDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

interface DeniedCache {
  second: number;
  bytes: Buffer;
}

/** One per server name in use: a process serves one name, so this holds one or two entries. */
const deniedByServer = new Map<string, DeniedCache>();

/**
 * The L7 policy denial, byte-for-byte cilium-envoy's local reply (docs/semantics.md#what-the-proxy-answers):
 * lower-case names in Envoy's order, 15-byte body, no `connection` header (the connection stays
 * open); `server: envoy` there, `server` here. Rebuilt only when the date second changes. Hot path:
 * do not mutate the returned Buffer.
 */
export function deniedResponse(server: string = SERVER_NAME): Buffer {
  const date = imfDate();
  let cache = deniedByServer.get(server);
  if (cache === undefined) deniedByServer.set(server, (cache = { second: -1, bytes: Buffer.alloc(0) }));
  if (dateSecond !== cache.second) {
    cache.second = dateSecond;
    cache.bytes = Buffer.from(
      'HTTP/1.1 403 Forbidden\r\n' +
        `content-length: ${DENIED_BODY.length}\r\n` +
        'content-type: text/plain\r\n' +
        `date: ${date}\r\n` +
        `server: ${server}\r\n` +
        '\r\n' +
        DENIED_BODY,
      'latin1',
    );
  }
  return cache.bytes;
}

/** RFC 9110 §15 reason phrases for the statuses the codec itself produces. */
export const REASON_PHRASES: Readonly<Record<number, string>> = Object.freeze({
  100: 'Continue',
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
});

const errorResponses = new Map<number, Buffer>();

/**
 * The minimal reply to a request we cannot parse (or that timed out): reason phrase as a
 * text/plain body and `connection: close`, because after a framing error we cannot know where the
 * next request would start (RFC 9112 §9.6 lets the server close; we announce it). With a `server`
 * name (`serve --server-name`) it is shaped as Envoy's local replies are — `date` and `server`
 * after the content fields — and built per call: these are rare.
 */
export function errorResponse(status: number, server?: string): Buffer {
  const reason = REASON_PHRASES[status] ?? 'Error';
  if (server !== undefined) return closingReply(status, reason, `date: ${imfDate()}\r\nserver: ${server}\r\n`);
  let bytes = errorResponses.get(status);
  if (bytes === undefined) errorResponses.set(status, (bytes = closingReply(status, reason, '')));
  return bytes;
}

function closingReply(status: number, reason: string, fields: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-length: ${reason.length}\r\ncontent-type: text/plain\r\n${fields}connection: close\r\n\r\n${reason}`,
    'latin1',
  );
}

/**
 * RFC 9110 §9.3.2: the answer to a HEAD is the head the GET would get — `content-length` included —
 * and no content. For a pre-serialised response: its bytes up to and including the empty line.
 * A view, no copy; only HEAD requests pay the scan.
 */
export function headOnly(raw: Buffer): Buffer {
  const end = raw.indexOf(HEAD_END);
  return end < 0 ? raw : raw.subarray(0, end + 4);
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** RFC 9110 §10.1.1 / §15.2.1: the interim response that tells the client to send its body. */
export const CONTINUE_RESPONSE: Buffer = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** RFC 9112 §7.1: the last-chunk with an empty trailer section. */
export const LAST_CHUNK = '0\r\n\r\n';

/** RFC 9112 §7.1: chunk-size line (lower-case hex, no extensions). */
export function chunkHeader(size: number): string {
  return size.toString(16) + '\r\n';
}

/**
 * Serialises `HTTP/1.1 <status> <reason>` + the header list + `extra` (already formatted
 * `name: value\r\n` lines added by the front end) + the empty line. Names must be tokens and
 * values must not contain CR/LF/NUL (RFC 9110 §5.5): header values can come from upstreams and
 * from policy edits, so this is where response splitting is stopped. Hot path — change with care.
 */
export function serializeResponseHead(status: number, reason: string, headers: HeaderList, extra = ''): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: `status ${status}` });
  }
  if (!isFieldValue(reason)) throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: 'reason' });
  if ((headers.length & 1) === 1) throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: 'odd header list' });
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!isToken(name) || !isFieldValue(value)) {
      throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: JSON.stringify(name) });
    }
    head += name + ': ' + value + '\r\n';
  }
  return head + extra + '\r\n';
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) return false;
  }
  return true;
}

function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || FIELD_VALUE[c] !== 1) return false;
  }
  return true;
}
