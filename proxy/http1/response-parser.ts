/**
 * Incremental, strict HTTP/1.1 response parser (RFC 9112), client side: what our upstream client
 * reads from a pod. Field lines, chunk-size lines and the framing fields are handled by the same
 * code as the front end's requests (field-line.ts, framing-fields.ts), Content-Length and list
 * fields by the request parser's helpers.
 *
 * Push-style: `expect()` arms it for the answer to one request, `execute()` feeds bytes and the
 * listener gets one head, zero or more body chunks (zero-copy views) and one end. Interim 1xx
 * responses are read and dropped. Any violation throws `HttpParseError`; the connection is then
 * closed, never reused: after a framing error nothing on it can be trusted.
 *
 * Framing (RFC 9112 §6.3), in order: no body for a HEAD request, 1xx, 204 and 304 whatever the
 * fields say; chunked when Transfer-Encoding ends in chunked; Content-Length; else the body runs to
 * the close. Stricter than the RFC where peers disagree: Transfer-Encoding with Content-Length, a
 * Transfer-Encoding that does not end in chunked, and Transfer-Encoding in an HTTP/1.0 response are
 * rejected rather than resolved, as the request parser rejects them.
 */
import { HttpParseError } from '../errors.js';
import { equalsLower } from './chars.js';
import { parseChunkSize, parseFieldLine } from './field-line.js';
import { FramingFields, clearFramingFields, noteFramingField } from './framing-fields.js';
import { parseConnectionTokens, parseContentLength, splitList } from './request-parser.js';

export interface ResponseLimits {
  /** Status-line + header section bytes (and, separately, trailer bytes). */
  readonly maxHeaderBytes: number;
  /** Header fields per response (and trailer fields). */
  readonly maxHeaderCount: number;
  /** Total chunk-extension bytes per response. */
  readonly maxChunkExtBytes: number;
}

/** 60 KiB / 100 fields: Envoy's limits, which apply to both directions. */
export const DEFAULT_RESPONSE_LIMITS: ResponseLimits = Object.freeze({
  maxHeaderBytes: 60 * 1024,
  maxHeaderCount: 100,
  maxChunkExtBytes: 16 * 1024,
});

export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  readonly status: number;
  /** Possibly empty. */
  readonly reason: string;
  readonly versionMinor: 0 | 1;
  /** As received: [name0, value0, ...], names in their original case, values OWS-trimmed. */
  readonly headers: string[];
  /** Content-Length when it was sent and valid (also for HEAD and 304, where it describes no body). */
  readonly contentLength: number | undefined;
  readonly framing: BodyFraming;
  /** The pod allows another request on this connection (RFC 9112 §9.3) and the body does not run to the close. */
  readonly keepAlive: boolean;
  /** `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1, still sent by Node and Apache), in ms. */
  readonly keepAliveTimeoutMs: number | undefined;
}

export interface ResponseListener {
  onResponseHead(head: ResponseHead): void;
  onResponseData(chunk: Buffer): void;
  /** `reusable`: the connection may carry another request (keep-alive, and no stray byte after this response). */
  onResponseEnd(reusable: boolean): void;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

const enum State {
  Idle,
  StatusLine,
  Headers,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  BodyClose,
  Dead,
}

const EMPTY_BUFFER = Buffer.alloc(0);

export class ResponseParser {
  readonly #limits: ResponseLimits;
  readonly #listener: ResponseListener;
  #buf: Buffer = EMPTY_BUFFER;
  #pos = 0;
  #state = State.Idle;
  /** Bumped by reset(): a callback that reset the parser ends the execute() that called it. */
  #generation = 0;

  // Per-response state.
  #noBody = false;
  #headBytes = 0;
  #status = 0;
  #reason = '';
  #versionMinor: 0 | 1 = 1;
  #headers: string[] = [];
  readonly #framing = new FramingFields();
  #keepAliveHint: string | undefined;
  #keepAlive = false;
  #remaining = 0;
  #chunkExtBytes = 0;
  readonly #chunkExt = { bytes: 0 };
  #trailerBytes = 0;
  #trailers: string[] | undefined;

  constructor(listener: ResponseListener, limits: ResponseLimits = DEFAULT_RESPONSE_LIMITS) {
    this.#listener = listener;
    this.#limits = limits;
  }

  /** Waiting for (part of) a response. */
  get busy(): boolean {
    return this.#state !== State.Idle && this.#state !== State.Dead;
  }

  /** Arms the parser for the response to one request; `head`: the request was HEAD (no body, whatever the fields say). */
  expect(head: boolean): void {
    this.#noBody = head;
    this.#headBytes = 0;
    this.#state = State.StatusLine;
    this.#resetHead();
  }

  /** Forgets everything (the connection is being dropped). */
  reset(): void {
    this.#generation++;
    this.#state = State.Dead;
    this.#buf = EMPTY_BUFFER;
    this.#pos = 0;
  }

  /**
   * Feeds bytes from the pod. Hot path — change with care. `chunk` is only borrowed: what is
   * kept past this call (a partial line) is copied, and body bytes are handed on as views of it.
   * @throws HttpParseError (the parser is dead afterwards).
   */
  execute(chunk: Buffer): void {
    if (this.#state === State.Dead) return;
    if (this.#pos >= this.#buf.length) this.#buf = chunk;
    // Only a partial line (bounded by the limits) is ever carried over: body bytes are passed on as they come.
    else this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    this.#pos = 0;
    try {
      this.#run();
    } catch (err) {
      this.reset();
      throw err;
    }
    if (this.#pos >= this.#buf.length) {
      this.#buf = EMPTY_BUFFER;
      this.#pos = 0;
    } else if (this.#buf === chunk) {
      // A partial line is kept for the next read: in bytes of our own, as the caller may reuse
      // its buffer for that read (http1-client.ts reads every socket into one).
      this.#buf = Buffer.from(chunk.subarray(this.#pos));
      this.#pos = 0;
    }
  }

  /**
   * The pod closed its side (FIN). Ends a body that runs to the close (true); throws when a
   * response was cut short; false when idle.
   */
  finish(): boolean {
    const s = this.#state;
    if (s === State.BodyClose) {
      this.#state = State.Idle;
      this.#listener.onResponseEnd(false);
      return true;
    }
    if (s === State.Idle || s === State.Dead) return false;
    this.reset();
    throw new HttpParseError('L7G_ERR_INCOMPLETE_RESPONSE');
  }

  #run(): void {
    const gen = this.#generation;
    const listener = this.#listener;
    while (this.#generation === gen) {
      switch (this.#state) {
        case State.Idle:
          if (this.#pos < this.#buf.length) throw new HttpParseError('L7G_ERR_UNEXPECTED_RESPONSE');
          return;
        case State.StatusLine:
        case State.Headers:
        case State.Trailers: {
          const lf = this.#takeLine();
          if (lf < 0) return;
          const start = this.#pos;
          this.#pos = lf + 1;
          const end = lf - 1;
          if (this.#state === State.StatusLine) {
            this.#parseStatusLine(start, end);
            this.#state = State.Headers;
          } else if (this.#state === State.Headers) {
            if (end !== start) {
              parseFieldLine(this.#buf, start, end, this.#headers, this.#limits.maxHeaderCount, false);
              this.#noteField();
              continue;
            }
            const head = this.#finishHead();
            if (head === undefined) continue;
            listener.onResponseHead(head);
            if ((this.#state as State) === State.Idle && this.#generation === gen) this.#end();
          } else {
            if (end === start) {
              this.#state = State.Idle;
              this.#end();
              continue;
            }
            // Trailer fields are checked like header fields, then dropped: they are not forwarded.
            parseFieldLine(this.#buf, start, end, (this.#trailers ??= []), this.#limits.maxHeaderCount, true);
          }
          continue;
        }
        case State.BodyLength: {
          const chunk = this.#takeBody();
          if (chunk === null) return;
          if (this.#remaining === 0) this.#state = State.Idle;
          listener.onResponseData(chunk);
          if ((this.#state as State) === State.Idle && this.#generation === gen) this.#end();
          continue;
        }
        case State.BodyClose: {
          if (this.#pos >= this.#buf.length) return;
          const chunk = this.#pos === 0 ? this.#buf : this.#buf.subarray(this.#pos);
          this.#pos = this.#buf.length;
          listener.onResponseData(chunk);
          continue;
        }
        case State.ChunkSize: {
          const lf = this.#takeLine();
          if (lf < 0) return;
          const start = this.#pos;
          this.#pos = lf + 1;
          const size = parseChunkSize(this.#buf, start, lf - 1, this.#chunkExt);
          this.#chunkExtBytes += this.#chunkExt.bytes;
          if (this.#chunkExtBytes > this.#limits.maxChunkExtBytes) throw new HttpParseError('L7G_ERR_CHUNK_EXT_TOO_LARGE');
          if (!Number.isSafeInteger(size)) throw new HttpParseError('L7G_ERR_BAD_CHUNK_SIZE');
          if (size === 0) {
            this.#state = State.Trailers;
          } else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          continue;
        }
        case State.ChunkData: {
          const chunk = this.#takeBody();
          if (chunk === null) return;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          listener.onResponseData(chunk);
          continue;
        }
        case State.ChunkDataEnd: {
          const avail = this.#buf.length - this.#pos;
          if (avail === 0) return;
          if (this.#buf[this.#pos] !== CR) throw new HttpParseError('L7G_ERR_BAD_CHUNK_END');
          if (avail === 1) return;
          if (this.#buf[this.#pos + 1] !== LF) throw new HttpParseError('L7G_ERR_BAD_CHUNK_END');
          this.#pos += 2;
          this.#state = State.ChunkSize;
          continue;
        }
        case State.Dead:
          return;
      }
    }
  }

  /** The response is complete: reusable only when the pod keeps the connection and sent nothing more. */
  #end(): void {
    const reusable = this.#keepAlive && this.#pos >= this.#buf.length;
    if (!reusable) this.#state = State.Dead;
    this.#listener.onResponseEnd(reusable);
  }

  /** Index of the LF ending the next complete line, or -1; RFC 9112 §2.2: CRLF only, a bare LF is rejected. */
  #takeLine(): number {
    const buf = this.#buf;
    const lf = buf.indexOf(LF, this.#pos);
    const n = (lf < 0 ? buf.length : lf + 1) - this.#pos;
    if (this.#state === State.Trailers) {
      if (this.#trailerBytes + n > this.#limits.maxHeaderBytes) throw new HttpParseError('L7G_ERR_TRAILERS_TOO_LARGE');
      if (lf >= 0) this.#trailerBytes += n;
    } else if (this.#state === State.ChunkSize) {
      // size digits + ";" + what is left of the extension budget + CRLF
      if (n > 16 + 3 + this.#limits.maxChunkExtBytes - this.#chunkExtBytes) throw new HttpParseError('L7G_ERR_BAD_CHUNK_SIZE');
    } else {
      if (this.#headBytes + n > this.#limits.maxHeaderBytes) throw new HttpParseError('L7G_ERR_HEADERS_TOO_LARGE');
      if (lf >= 0) this.#headBytes += n;
    }
    if (lf < 0) return -1;
    if (lf === this.#pos || buf[lf - 1] !== CR) throw new HttpParseError('L7G_ERR_BARE_LF');
    return lf;
  }

  #takeBody(): Buffer | null {
    const avail = this.#buf.length - this.#pos;
    if (avail === 0) return null;
    const n = avail < this.#remaining ? avail : this.#remaining;
    const chunk = this.#pos === 0 && n === avail ? this.#buf : this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.#remaining -= n;
    return chunk;
  }

  /**
   * RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. The SP before an
   * empty reason is often left out by pods; it decides nothing about framing, so it is accepted.
   */
  #parseStatusLine(start: number, end: number): void {
    const b = this.#buf;
    if (
      end - start < 12 ||
      b[start] !== 0x48 || b[start + 1] !== 0x54 || b[start + 2] !== 0x54 || b[start + 3] !== 0x50 ||
      b[start + 4] !== 0x2f || b[start + 5] !== 0x31 || b[start + 6] !== 0x2e ||
      (b[start + 7] !== 0x30 && b[start + 7] !== 0x31) || b[start + 8] !== SP
    ) {
      throw new HttpParseError('L7G_ERR_BAD_STATUS_LINE');
    }
    let status = 0;
    for (let i = start + 9; i < start + 12; i++) {
      const d = b[i]! - 0x30;
      if (d < 0 || d > 9) throw new HttpParseError('L7G_ERR_BAD_STATUS_LINE');
      status = status * 10 + d;
    }
    // RFC 9110 §15: 1xx-5xx are the classes; anything else cannot be forwarded meaningfully.
    if (status < 100 || status > 599) throw new HttpParseError('L7G_ERR_BAD_STATUS_LINE');
    let reason = '';
    if (end > start + 12) {
      if (b[start + 12] !== SP) throw new HttpParseError('L7G_ERR_BAD_STATUS_LINE');
      // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the field-value bytes.
      for (let i = start + 13; i < end; i++) {
        const c = b[i]!;
        if (c < 0x20 ? c !== 0x09 : c === 0x7f) throw new HttpParseError(c === CR ? 'L7G_ERR_BARE_CR' : 'L7G_ERR_BAD_STATUS_LINE');
      }
      reason = b.toString('latin1', start + 13, end);
    }
    this.#versionMinor = b[start + 7] === 0x31 ? 1 : 0;
    this.#status = status;
    this.#reason = reason;
  }

  /** The framing fields (framing-fields.ts), and the pod's Keep-Alive hint. */
  #noteField(): void {
    const h = this.#headers;
    const name = h[h.length - 2]!;
    const value = h[h.length - 1]!;
    if (noteFramingField(this.#framing, name, value)) return;
    if (name.length === 10 && equalsLower(name, 'keep-alive')) this.#keepAliveHint = value;
  }

  /** The head is complete: decide the framing. Undefined for an interim (1xx) response, which is dropped. */
  #finishHead(): ResponseHead | undefined {
    const status = this.#status;
    if (status < 200) {
      // RFC 9110 §15.2.2: we never ask for an upgrade on a pooled connection (Upgrade is stripped).
      if (status === 101) throw new HttpParseError('L7G_ERR_UNEXPECTED_UPGRADE');
      // 100/102/103: interim, no body; the final response follows (RFC 9110 §15.2).
      this.#state = State.StatusLine;
      this.#resetHead();
      return undefined;
    }
    const v = this.#versionMinor;
    let contentLength: number | undefined;
    let chunked = false;
    const f = this.#framing;
    if (f.transferEncoding !== undefined) {
      if (v === 0) throw new HttpParseError('L7G_ERR_TE_IN_HTTP10');
      if (f.contentLength !== undefined) throw new HttpParseError('L7G_ERR_TE_AND_CL');
      const codings = splitList(f.transferEncoding);
      if (codings.length !== 1 || !equalsLower(codings[0]!, 'chunked')) {
        throw new HttpParseError(codings.length > 1 && !equalsLower(codings[codings.length - 1]!, 'chunked') ? 'L7G_ERR_CHUNKED_NOT_FINAL' : 'L7G_ERR_UNSUPPORTED_TE');
      }
      chunked = true;
    } else if (f.contentLength !== undefined) {
      // One field, one value: the list form RFC 9110 §8.6 tolerates is refused by llhttp (which
      // node:http and undici clients use), so a pod that sends it is broken for them too.
      if (f.contentLength.length > 1 || f.contentLength[0]!.includes(',')) throw new HttpParseError('L7G_ERR_CONFLICTING_CONTENT_LENGTH');
      contentLength = parseContentLength(f.contentLength);
    }
    const tokens = f.connection === undefined ? undefined : parseConnectionTokens(f.connection);
    let keepAlive = tokens === undefined ? v === 1 : !tokens.includes('close') && (v === 1 || tokens.includes('keep-alive'));
    let framing: BodyFraming;
    if (this.#noBody || status === 204 || status === 304) framing = 'none';
    else if (chunked) framing = 'chunked';
    else if (contentLength !== undefined) framing = contentLength === 0 ? 'none' : 'length';
    else framing = 'close';
    if (framing === 'close') keepAlive = false;
    this.#keepAlive = keepAlive;
    const head: ResponseHead = {
      status,
      reason: this.#reason,
      versionMinor: v,
      headers: this.#headers,
      contentLength,
      framing,
      keepAlive,
      keepAliveTimeoutMs: this.#keepAliveHint === undefined ? undefined : keepAliveTimeout(this.#keepAliveHint),
    };
    this.#chunkExtBytes = 0;
    this.#trailerBytes = 0;
    this.#trailers = undefined;
    switch (framing) {
      case 'none':
        this.#state = State.Idle;
        break;
      case 'length':
        this.#remaining = contentLength!;
        this.#state = State.BodyLength;
        break;
      case 'chunked':
        this.#state = State.ChunkSize;
        break;
      case 'close':
        this.#state = State.BodyClose;
        break;
    }
    return head;
  }

  #resetHead(): void {
    this.#headers = [];
    clearFramingFields(this.#framing);
    this.#keepAliveHint = undefined;
  }
}

/** `timeout=N` (seconds) of a Keep-Alive value, in ms; undefined when absent or not a number. */
export function keepAliveTimeout(value: string): number | undefined {
  for (const param of splitList([value])) {
    const eq = param.indexOf('=');
    if (eq < 0 || !equalsLower(param.slice(0, eq).trim(), 'timeout')) continue;
    const n = Number(param.slice(eq + 1).trim());
    return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
  }
  return undefined;
}
