/**
 * Incremental, strict HTTP/1.1 request parser (RFC 9112), server side.
 *
 * Pull-style: `push()` bytes as they arrive, then call `next()` until it returns null. Each message
 * yields exactly one `head`, zero or more `body` chunks (decoded, zero-copy views), then one `end`
 * (with trailers). The parser never runs ahead into the next pipelined message on its own: the
 * caller decides when to pull again, which is how the front end holds pipelined requests while a
 * response is in flight. `next()` throws `HttpParseError`; after that the parser is dead and the
 * connection must be closed (RFC 9112 §11.2: never guess at framing after an error).
 *
 * Strictness is deliberate: every leniency (bare LF, obs-fold, whitespace before ':', CL+TE) is a
 * place where two HTTP implementations can disagree about where a message ends, i.e. a request
 * smuggling vector between us and the upstream.
 */
import type { HeaderList } from '../../policy/model.js';
import { HttpParseError } from '../errors.js';
import { HOST, TARGET, TOKEN, equalsLower } from './chars.js';
import { MAX_CHUNK_SIZE_DIGITS, parseChunkSize, parseFieldLine } from './field-line.js';
import { FramingFields, clearFramingFields, noteFramingField } from './framing-fields.js';

export interface ParserLimits {
  /** Request-line + header section bytes, CRLFs included. 60 KiB = Envoy `max_request_headers_kb` default. */
  readonly maxHeaderBytes: number;
  /** Header fields per request (and trailer fields per message). 100 = Envoy `max_headers_count` default. */
  readonly maxHeaderCount: number;
  /**
   * Request-target length. 8 KiB: RFC 9112 §3 recommends supporting request-lines of at least
   * 8000 octets, and nginx answers 414 past its 8k `large_client_header_buffers`.
   */
  readonly maxTargetLength: number;
  /** Decoded body bytes. Unlimited by default: the proxy streams bodies, as Envoy does. */
  readonly maxBodyBytes: number;
  /** Total chunk-extension bytes per message. 16 KiB = Node's limit since CVE-2024-22019. */
  readonly maxChunkExtBytes: number;
}

export const DEFAULT_PARSER_LIMITS: ParserLimits = Object.freeze({
  maxHeaderBytes: 60 * 1024,
  maxHeaderCount: 100,
  maxTargetLength: 8 * 1024,
  maxBodyBytes: Number.POSITIVE_INFINITY,
  maxChunkExtBytes: 16 * 1024,
});

export interface RequestHead {
  /** Case preserved, as sent. */
  readonly method: string;
  /** Raw request-target; see normalize-path for the normalised path. */
  readonly target: string;
  readonly versionMinor: 0 | 1;
  /** As received: [name0, value0, ...], names in their original case, values OWS-trimmed. */
  readonly headers: HeaderList;
  /** The Host value (exactly one Host is required in HTTP/1.1; optional in 1.0). */
  readonly host: string | undefined;
  /** Declared body length; undefined when absent or when the body is chunked. */
  readonly contentLength: number | undefined;
  readonly chunked: boolean;
  /** Whether the client allows another request on this connection after this one. */
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
  /** The Upgrade value when the request asks for one (HTTP/1.1 and `Connection: upgrade`). */
  readonly upgrade: string | undefined;
  /** Lower-cased Connection options, in order. */
  readonly connectionTokens: readonly string[];
  /** Bytes of request-line + header section, for logs/metrics. */
  readonly headBytes: number;
  /**
   * The field lines exactly as received, each with its CRLF (latin1), when the head arrived in
   * one read: what a pod may get untouched when no field needs an edit (request-headers.ts).
   */
  readonly rawFields: string | undefined;
}

export type ParseEvent =
  | { readonly kind: 'head'; readonly head: RequestHead }
  | { readonly kind: 'body'; readonly chunk: Buffer }
  | { readonly kind: 'end'; readonly trailers: HeaderList };

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const SEMI = 0x3b;

const enum State {
  RequestLine,
  Headers,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  EndPending,
  Dead,
}

const EMPTY_BUFFER = Buffer.alloc(0);
const NO_FIELDS: HeaderList = Object.freeze([]) as HeaderList;

export class RequestParser {
  readonly #limits: ParserLimits;
  #buf: Buffer = EMPTY_BUFFER;
  /** Where the field lines of the current head start in #fieldsBuf (the buffer that held the request-line). */
  #fieldsAt = 0;
  #fieldsBuf: Buffer = EMPTY_BUFFER;
  #rawFields: string | undefined;
  /** The last pushed chunk while #buf is that very chunk (not a copy): what own() must copy. */
  #lent: Buffer | undefined;
  /** See `lending`. */
  #chunkLent = false;
  #pos = 0;
  #state = State.RequestLine;
  #error: HttpParseError | undefined;

  // Per-message state, reset by #resetMessage().
  #headBytes = 0;
  #method = '';
  #target = '';
  #versionMinor: 0 | 1 = 1;
  #headers: string[] = [];
  #hostCount = 0;
  #host: string | undefined;
  readonly #framing = new FramingFields();
  #expect: string | undefined;
  #upgrade: string | undefined;
  #remaining = 0;
  #bodyBytes = 0;
  #chunkExtBytes = 0;
  readonly #chunkExt = { bytes: 0 };
  #trailers: string[] | undefined;
  #trailerBytes = 0;

  constructor(limits?: Partial<ParserLimits>) {
    // A complete limits object (the front end's, one per listener) is shared, not copied per connection.
    this.#limits = limits !== undefined && isComplete(limits) ? limits : { ...DEFAULT_PARSER_LIMITS, ...limits };
  }

  /** Bytes received but not yet consumed by `next()` (held pipelined data included). */
  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  /** True between messages: the next byte would start a new request. */
  get atMessageBoundary(): boolean {
    return this.#state === State.RequestLine && this.#headBytes === 0;
  }

  /**
   * The method of the message being read, once its request-line has been read ('' before that):
   * after an error too, so the answer to a HEAD that failed can leave out its body.
   */
  get method(): string {
    return this.#method;
  }

  /**
   * Hands over every byte not yet consumed (those after an upgrade request's head belong to the
   * new protocol) and kills the parser: nothing here may interpret them as HTTP any more.
   */
  takeBuffered(): Buffer {
    // A copy: the pushed chunk may be a borrowed read buffer (see own()).
    const rest = Buffer.from(this.#buf.subarray(this.#pos));
    this.#lent = undefined;
    this.#fieldsBuf = EMPTY_BUFFER;
    this.#buf = EMPTY_BUFFER;
    this.#pos = 0;
    this.#state = State.Dead;
    return rest;
  }

  /** `borrowed`: the caller reuses the chunk's memory after its next own() (a shared read buffer). */
  push(chunk: Buffer, borrowed = false): void {
    if (this.#state === State.Dead) return;
    if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
      this.#lent = borrowed ? chunk : undefined;
    } else {
      // Only a partial line (bounded by the limits) or body bytes held under backpressure
      // (bounded by the caller pausing the socket) are ever carried over.
      this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    }
    this.#pos = 0;
  }

  /** The last body event's chunk is a view of the caller's borrowed buffer (push(chunk, true)): it must be copied to be kept. */
  get lending(): boolean {
    return this.#chunkLent;
  }

  /**
   * The caller is about to reuse the buffer of its last push() (a socket reading into one shared
   * buffer, shared-reads.ts): bytes not consumed yet become the parser's own. Body events are
   * views of that buffer too, valid only until then.
   */
  own(): void {
    if (this.#buf === this.#lent && this.#pos < this.#buf.length) {
      this.#buf = Buffer.from(this.#buf.subarray(this.#pos));
      this.#pos = 0;
    }
    this.#lent = undefined;
  }

  /**
   * The next parse event, or null when more bytes are needed. Hot path — change with care.
   * @throws HttpParseError (and keeps throwing it on every later call).
   */
  next(): ParseEvent | null {
    if (this.#error !== undefined) throw this.#error;
    try {
      const ev = this.#step();
      // Everything consumed: drop the read buffer now rather than hold it while the connection
      // idles (body events are views of it and keep what they need).
      if (this.#pos >= this.#buf.length && this.#buf !== EMPTY_BUFFER) {
        this.#buf = EMPTY_BUFFER;
        this.#lent = undefined;
        this.#fieldsBuf = EMPTY_BUFFER; // a head that goes on in the next read is not in one piece
        this.#pos = 0;
      }
      return ev;
    } catch (err) {
      if (err instanceof HttpParseError) {
        this.#error = err;
        this.#state = State.Dead;
        this.#buf = EMPTY_BUFFER;
        this.#lent = undefined;
        this.#fieldsBuf = EMPTY_BUFFER;
        this.#pos = 0;
      }
      throw err;
    }
  }

  #step(): ParseEvent | null {
    for (;;) {
      switch (this.#state) {
        case State.RequestLine:
        case State.Headers:
        case State.Trailers: {
          const line = this.#takeLine();
          if (line < 0) return null;
          const start = this.#pos;
          this.#pos = line + 1;
          const end = line - 1; // index of the CR
          if (this.#state === State.RequestLine) {
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
            if (end !== start) {
              this.#parseRequestLine(start, end);
              this.#state = State.Headers;
              this.#fieldsAt = this.#pos;
              this.#fieldsBuf = this.#buf;
            }
            continue;
          }
          if (this.#state === State.Headers) {
            if (end === start) {
              // One string for all the field lines, when they are all in the buffer the request-line was in.
              this.#rawFields = this.#buf === this.#fieldsBuf ? this.#buf.toString('latin1', this.#fieldsAt, start) : undefined;
              this.#fieldsBuf = EMPTY_BUFFER;
              return { kind: 'head', head: this.#finishHead() };
            }
            this.#parseFieldLine(start, end, this.#headers, false);
            continue;
          }
          if (end === start) return this.#finishMessage(this.#trailers ?? NO_FIELDS);
          this.#parseFieldLine(start, end, (this.#trailers ??= []), true);
          continue;
        }
        case State.EndPending:
          return this.#finishMessage(NO_FIELDS);
        case State.BodyLength: {
          const chunk = this.#takeBody();
          if (chunk === null) return null;
          if (this.#remaining === 0) this.#state = State.EndPending;
          return { kind: 'body', chunk };
        }
        case State.ChunkSize: {
          const line = this.#takeLine();
          if (line < 0) return null;
          const start = this.#pos;
          this.#pos = line + 1;
          this.#parseChunkSize(start, line - 1);
          continue;
        }
        case State.ChunkData: {
          const chunk = this.#takeBody();
          if (chunk === null) return null;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          return { kind: 'body', chunk };
        }
        case State.ChunkDataEnd: {
          const avail = this.#buf.length - this.#pos;
          if (avail === 0) return null;
          if (this.#buf[this.#pos] !== CR) throw new HttpParseError('L7G_ERR_BAD_CHUNK_END');
          if (avail === 1) return null;
          if (this.#buf[this.#pos + 1] !== LF) throw new HttpParseError('L7G_ERR_BAD_CHUNK_END');
          this.#pos += 2;
          this.#state = State.ChunkSize;
          continue;
        }
        case State.Dead:
          return null;
      }
    }
  }

  /**
   * Index of the LF ending the next complete line, or -1 (after enforcing the size limit on the
   * partial line). RFC 9112 §2.2: lines end in CRLF; a bare LF is rejected rather than accepted
   * as a terminator, since a lenient upstream could split the message differently.
   */
  #takeLine(): number {
    const buf = this.#buf;
    const lf = buf.indexOf(LF, this.#pos);
    const lineBytes = (lf < 0 ? buf.length : lf + 1) - this.#pos;
    this.#countLineBytes(lineBytes, lf < 0);
    if (lf < 0) return -1;
    if (lf === this.#pos || buf[lf - 1] !== CR) throw new HttpParseError('L7G_ERR_BARE_LF');
    return lf;
  }

  #countLineBytes(n: number, partial: boolean): void {
    const limits = this.#limits;
    switch (this.#state) {
      case State.RequestLine:
        if (this.#headBytes + n > limits.maxHeaderBytes) {
          // A request-line that alone overflows the head budget is an over-long target (414),
          // unless it has no SP at all, in which case it is not a request-line (400).
          const sp = this.#buf.indexOf(SP, this.#pos);
          if (sp < 0 || sp - this.#pos >= n) throw new HttpParseError('L7G_ERR_BAD_REQUEST_LINE');
          this.#noteHead(sp);
          throw new HttpParseError('L7G_ERR_URI_TOO_LONG');
        }
        if (partial) this.#checkPartialTarget(n);
        else this.#headBytes += n;
        return;
      case State.Headers:
        if (this.#headBytes + n > limits.maxHeaderBytes) throw new HttpParseError('L7G_ERR_HEADERS_TOO_LARGE');
        if (!partial) this.#headBytes += n;
        return;
      case State.Trailers:
        if (this.#trailerBytes + n > limits.maxHeaderBytes) throw new HttpParseError('L7G_ERR_TRAILERS_TOO_LARGE');
        if (!partial) this.#trailerBytes += n;
        return;
      case State.ChunkSize:
        // size digits + ";" + what is left of the extension budget + CRLF
        if (n > MAX_CHUNK_SIZE_DIGITS + 3 + limits.maxChunkExtBytes - this.#chunkExtBytes) {
          const semi = this.#buf.indexOf(SEMI, this.#pos);
          throw new HttpParseError(semi >= 0 && semi - this.#pos < n ? 'L7G_ERR_CHUNK_EXT_TOO_LARGE' : 'L7G_ERR_BAD_CHUNK_SIZE');
        }
        return;
      default:
        return;
    }
  }

  /** Fail fast with 414 while an over-long target is still arriving, instead of buffering it. */
  #checkPartialTarget(n: number): void {
    const buf = this.#buf;
    const sp1 = buf.indexOf(SP, this.#pos);
    if (sp1 < 0 || sp1 - this.#pos >= n) return;
    const sp2 = buf.indexOf(SP, sp1 + 1);
    const targetSoFar = (sp2 < 0 ? this.#pos + n : sp2) - (sp1 + 1);
    if (targetSoFar > this.#limits.maxTargetLength) {
      this.#noteHead(sp1);
      throw new HttpParseError('L7G_ERR_URI_TOO_LONG');
    }
  }

  /** A 414 is answered before the request-line ends: a HEAD's must still leave out its body (RFC 9110 §9.3.2). */
  #noteHead(sp: number): void {
    const b = this.#buf;
    const p = this.#pos;
    if (sp - p === 4 && b[p] === 0x48 && b[p + 1] === 0x45 && b[p + 2] === 0x41 && b[p + 3] === 0x44) this.#method = 'HEAD';
  }

  #takeBody(): Buffer | null {
    const avail = this.#buf.length - this.#pos;
    if (avail === 0) return null;
    const n = avail < this.#remaining ? avail : this.#remaining;
    const chunk = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#chunkLent = this.#lent !== undefined && this.#buf === this.#lent;
    this.#pos += n;
    this.#remaining -= n;
    return chunk;
  }

  /** RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single SPs, no CTLs. */
  #parseRequestLine(start: number, end: number): void {
    const buf = this.#buf;
    let i = start;
    while (i < end && TOKEN[buf[i]!] === 1) i++;
    if (i === end) throw new HttpParseError('L7G_ERR_BAD_REQUEST_LINE');
    if (i === start) throw new HttpParseError('L7G_ERR_BAD_METHOD');
    if (buf[i] !== SP) {
      throw new HttpParseError(buf[i] === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_METHOD');
    }
    const methodEnd = i;
    const targetStart = ++i;
    while (i < end && TARGET[buf[i]!] === 1) i++;
    if (i === targetStart || i === end) throw new HttpParseError('L7G_ERR_BAD_REQUEST_LINE');
    if (buf[i] !== SP) {
      throw new HttpParseError(buf[i] === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_TARGET');
    }
    // The method first: a HEAD's 414 must leave out its body.
    this.#method = buf.toString('latin1', start, methodEnd);
    if (i - targetStart > this.#limits.maxTargetLength) throw new HttpParseError('L7G_ERR_URI_TOO_LONG');
    const targetEnd = i;
    this.#target = buf.toString('latin1', targetStart, targetEnd);
    this.#versionMinor = this.#parseVersion(targetEnd + 1, end);
    if (this.#method === 'CONNECT') throw new HttpParseError('L7G_ERR_CONNECT_UNSUPPORTED');
  }

  /**
   * RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive. A well-formed
   * version other than 1.0/1.1 gets 505; `PRI * HTTP/2.0` is an h2 prior-knowledge preface.
   */
  #parseVersion(start: number, end: number): 0 | 1 {
    const b = this.#buf;
    if (
      end - start !== 8 ||
      b[start] !== 0x48 || b[start + 1] !== 0x54 || b[start + 2] !== 0x54 || b[start + 3] !== 0x50 ||
      b[start + 4] !== 0x2f || b[start + 6] !== 0x2e
    ) {
      throw new HttpParseError('L7G_ERR_BAD_VERSION');
    }
    const major = b[start + 5]! - 0x30;
    const minor = b[start + 7]! - 0x30;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) throw new HttpParseError('L7G_ERR_BAD_VERSION');
    if (major === 1 && (minor === 0 || minor === 1)) return minor;
    if (major === 2 && this.#method === 'PRI' && this.#target === '*') throw new HttpParseError('L7G_ERR_HTTP2_PREFACE');
    throw new HttpParseError('L7G_ERR_VERSION_NOT_SUPPORTED');
  }

  /** RFC 9112 §5 (field-line.ts), then the framing fields are noted. */
  #parseFieldLine(start: number, end: number, into: string[], trailer: boolean): void {
    parseFieldLine(this.#buf, start, end, into, this.#limits.maxHeaderCount, trailer);
    if (!trailer) this.#noteFramingHeader(into[into.length - 2]!, into[into.length - 1]!);
  }

  /** Remember the fields that drive framing and connection management (switch on length first: no allocation). */
  #noteFramingHeader(name: string, value: string): void {
    if (noteFramingField(this.#framing, name, value)) return;
    switch (name.length) {
      case 4:
        if (equalsLower(name, 'host')) {
          this.#hostCount++;
          this.#host = value;
        }
        return;
      case 6:
        if (equalsLower(name, 'expect')) this.#expect = value;
        return;
      case 7:
        if (equalsLower(name, 'upgrade')) this.#upgrade = value;
        return;
    }
  }

  #finishHead(): RequestHead {
    const v = this.#versionMinor;
    checkHost(v, this.#hostCount, this.#host);
    let contentLength: number | undefined;
    let chunked = false;
    const f = this.#framing;
    if (f.transferEncoding !== undefined) {
      checkTransferEncoding(v, f.transferEncoding, f.contentLength !== undefined);
      chunked = true;
    } else if (f.contentLength !== undefined) {
      contentLength = parseContentLength(f.contentLength);
      if (contentLength > this.#limits.maxBodyBytes) throw new HttpParseError('L7G_ERR_BODY_TOO_LARGE');
    }
    const connectionTokens = f.connection === undefined ? NO_FIELDS : parseConnectionTokens(f.connection);
    const head: RequestHead = {
      method: this.#method,
      target: this.#target,
      versionMinor: v,
      headers: this.#headers,
      host: this.#host,
      contentLength,
      chunked,
      keepAlive: isKeepAlive(v, connectionTokens),
      expectContinue: v === 1 && this.#expect !== undefined && equalsLower(this.#expect, '100-continue'),
      upgrade: v === 1 && this.#upgrade !== undefined && connectionTokens.includes('upgrade') ? this.#upgrade : undefined,
      connectionTokens,
      headBytes: this.#headBytes,
      rawFields: this.#rawFields,
    };
    if (chunked) {
      this.#state = State.ChunkSize;
    } else if (contentLength !== undefined && contentLength > 0) {
      this.#remaining = contentLength;
      this.#bodyBytes = contentLength;
      this.#state = State.BodyLength;
    } else {
      this.#state = State.EndPending;
    }
    return head;
  }

  /** RFC 9112 §7.1 (field-line.ts); the extensions' total is bounded per message. */
  #parseChunkSize(start: number, end: number): void {
    const size = parseChunkSize(this.#buf, start, end, this.#chunkExt);
    if (this.#chunkExt.bytes > 0) {
      this.#chunkExtBytes += this.#chunkExt.bytes;
      if (this.#chunkExtBytes > this.#limits.maxChunkExtBytes) throw new HttpParseError('L7G_ERR_CHUNK_EXT_TOO_LARGE');
    }
    if (size === 0) {
      this.#state = State.Trailers;
      return;
    }
    this.#bodyBytes += size;
    if (!Number.isSafeInteger(this.#bodyBytes) || this.#bodyBytes > this.#limits.maxBodyBytes) {
      throw new HttpParseError('L7G_ERR_BODY_TOO_LARGE');
    }
    this.#remaining = size;
    this.#state = State.ChunkData;
  }

  #finishMessage(trailers: HeaderList): ParseEvent {
    this.#resetMessage();
    return { kind: 'end', trailers };
  }

  #resetMessage(): void {
    this.#state = State.RequestLine;
    this.#headBytes = 0;
    this.#rawFields = undefined;
    this.#method = '';
    this.#target = '';
    this.#versionMinor = 1;
    this.#headers = [];
    this.#hostCount = 0;
    this.#host = undefined;
    clearFramingFields(this.#framing);
    this.#expect = undefined;
    this.#upgrade = undefined;
    this.#remaining = 0;
    this.#bodyBytes = 0;
    this.#chunkExtBytes = 0;
    this.#trailers = undefined;
    this.#trailerBytes = 0;
  }
}

function isComplete(l: Partial<ParserLimits>): l is ParserLimits {
  return l.maxHeaderBytes !== undefined && l.maxHeaderCount !== undefined && l.maxTargetLength !== undefined &&
    l.maxBodyBytes !== undefined && l.maxChunkExtBytes !== undefined;
}

/**
 * RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request that lacks Host, has more than
 * one Host, or has a Host whose value is invalid. (HTTP/1.0 may omit it; duplicates still fail.)
 */
function checkHost(versionMinor: 0 | 1, count: number, value: string | undefined): void {
  if (count > 1) throw new HttpParseError('L7G_ERR_DUPLICATE_HOST');
  if (count === 0) {
    if (versionMinor === 1) throw new HttpParseError('L7G_ERR_MISSING_HOST');
    return;
  }
  const v = value!;
  for (let i = 0; i < v.length; i++) {
    if (HOST[v.charCodeAt(i)] !== 1) throw new HttpParseError('L7G_ERR_BAD_HOST');
  }
}

/**
 * RFC 9112 §6.1/§6.3: Transfer-Encoding in HTTP/1.0 means faulty framing (400); TE with CL is
 * rejected (Envoy's default, `allow_chunked_length: false`) rather than letting TE win, because
 * the upstream might let CL win; `chunked` MUST be the final coding or 400; any other coding is
 * one we do not implement (SHOULD 501).
 */
function checkTransferEncoding(versionMinor: 0 | 1, values: readonly string[], hasContentLength: boolean): void {
  if (versionMinor === 0) throw new HttpParseError('L7G_ERR_TE_IN_HTTP10');
  if (hasContentLength) throw new HttpParseError('L7G_ERR_TE_AND_CL');
  const codings = splitList(values);
  const last = codings.length - 1;
  if (last < 0 || !equalsLower(codings[last]!, 'chunked')) throw new HttpParseError('L7G_ERR_CHUNKED_NOT_FINAL');
  if (last > 0) {
    // RFC 9112 §6.1: a sender MUST NOT apply chunked more than once; anything else is a coding
    // we would have to decode to find the message end, which we do not implement.
    const first = codings[0]!;
    if (equalsLower(first, 'chunked')) throw new HttpParseError('L7G_ERR_CHUNKED_NOT_FINAL');
    throw new HttpParseError('L7G_ERR_UNSUPPORTED_TE', first);
  }
}

/**
 * RFC 9110 §8.6: Content-Length = 1*DIGIT. A list or repeated field whose members are all the
 * same value MAY be accepted as that value; differing members MUST be rejected.
 */
export function parseContentLength(values: readonly string[]): number {
  let result = -1;
  for (const member of splitList(values)) {
    if (member.length === 0) throw new HttpParseError('L7G_ERR_BAD_CONTENT_LENGTH');
    for (let i = 0; i < member.length; i++) {
      const c = member.charCodeAt(i);
      if (c < 0x30 || c > 0x39) throw new HttpParseError('L7G_ERR_BAD_CONTENT_LENGTH');
    }
    const n = Number(member);
    if (!Number.isSafeInteger(n)) throw new HttpParseError('L7G_ERR_BODY_TOO_LARGE');
    if (result !== -1 && n !== result) throw new HttpParseError('L7G_ERR_CONFLICTING_CONTENT_LENGTH');
    result = n;
  }
  if (result === -1) throw new HttpParseError('L7G_ERR_BAD_CONTENT_LENGTH');
  return result;
}

/** RFC 9110 §7.6.1: Connection = #connection-option; options are case-insensitive tokens. */
export function parseConnectionTokens(values: readonly string[]): string[] {
  const tokens = splitList(values);
  for (let i = 0; i < tokens.length; i++) tokens[i] = tokens[i]!.toLowerCase();
  return tokens;
}

/**
 * RFC 9112 §9.3: HTTP/1.1 is persistent unless `close` is given; HTTP/1.0 only with `keep-alive`
 * (RFC 9112 §C.2.2) and never if `close` is also present.
 */
function isKeepAlive(versionMinor: 0 | 1, tokens: readonly string[]): boolean {
  if (tokens.includes('close')) return false;
  return versionMinor === 1 || tokens.includes('keep-alive');
}

/** RFC 9110 §5.6.1: split #rule lists across all field lines, trimming OWS and dropping empty elements. */
export function splitList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    let start = 0;
    for (let i = 0; i <= v.length; i++) {
      if (i === v.length || v.charCodeAt(i) === 0x2c) {
        let a = start;
        let b = i;
        // OWS only (SP / HTAB): String#trim would also eat NBSP (0xA0), which is obs-text here.
        while (a < b && isOws(v.charCodeAt(a))) a++;
        while (b > a && isOws(v.charCodeAt(b - 1))) b--;
        if (b > a) out.push(v.slice(a, b));
        start = i + 1;
      }
    }
  }
  return out;
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}
