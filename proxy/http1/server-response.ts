/**
 * One HTTP/1.1 response on a client connection: framing decisions (RFC 9112 §6.3, §7) and the
 * write/end/raw/drop state machine behind `FrontResponse`. The connection owns the socket and
 * decides what happens after `finished`.
 */
import type { Socket } from 'node:net';
import type { HeaderList } from '../../policy/model.js';
import { FrontEndError } from '../errors.js';
import { equalsLower } from './chars.js';
import { CONTINUE_RESPONSE, LAST_CHUNK, chunkHeader, errorResponse, headOnly, imfDate, serializeResponseHead } from './response-writer.js';
import { parseConnectionTokens } from './request-parser.js';
import type { FrontResponse, WriteHeadOptions } from './types.js';

/** What a response needs from its connection. */
export interface ResponseHost {
  readonly socket: Socket;
  /** The `server` field of the codec's own replies (`failWithStatus`); undefined: none. */
  readonly serverName: string | undefined;
  /** The connection will close after this response whatever the response says (shutdown, client FIN, ...). */
  mustCloseAfter(): boolean;
  /** The whole request body has been received. */
  requestComplete(): boolean;
  responseFinished(): void;
  dropConnection(): void;
  /** The response cannot be completed correctly (framing broken): report and destroy the socket. */
  failConnection(err: Error): void;
  /** An onClose/onDrain callback threw: reported, never rethrown into socket event handlers. */
  callbackThrew(err: unknown): void;
  /** A socket write returned false (the client is not keeping up): the send timeout starts. */
  writeBlocked(): void;
  /** Give up the socket (protocol upgrade); undefined when it is not possible in this state. */
  detach(): { socket: Socket; head: Buffer } | undefined;
}

export interface ResponseRequestInfo {
  readonly method: string;
  readonly versionMinor: 0 | 1;
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
}

const enum Phase {
  Idle,
  Streaming,
  Finished,
}

const enum Framing {
  None,
  Length,
  Chunked,
  CloseDelimited,
}

export class ServerResponse implements FrontResponse {
  readonly #host: ResponseHost;
  readonly #req: ResponseRequestInfo;
  #phase = Phase.Idle;
  #sent = false;
  #continueSent = false;
  #closeAfter = false;
  #framing = Framing.None;
  #bodyAllowed = true;
  #expected = 0;
  #written = 0;
  /** The serialised head, not written yet: it leaves with the first body bytes (#send). */
  #head: string | undefined;
  #drainCbs: (() => void)[] | undefined;
  #closeCbs: (() => void)[] | undefined;
  #abort: AbortController | undefined;
  #aborted = false;
  #localStatus: number | undefined;

  constructor(host: ResponseHost, req: ResponseRequestInfo) {
    this.#host = host;
    this.#req = req;
    // A client that is not keeping the connection gets `connection: close` announced.
    this.#closeAfter = !req.keepAlive;
  }

  get sent(): boolean {
    return this.#sent;
  }

  get finished(): boolean {
    return this.#phase === Phase.Finished;
  }

  get localStatus(): number | undefined {
    return this.#localStatus;
  }

  /** Set once the response decided the connection must close after it (read by the connection). */
  get closeAfter(): boolean {
    return this.#closeAfter;
  }

  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.#aborted && !this.#abort.signal.aborted) this.#abort.abort(new FrontEndError('L7G_ERR_CLIENT_ABORTED'));
    return this.#abort.signal;
  }

  closeAfterResponse(): void {
    this.#closeAfter = true;
  }

  onClose(cb: () => void): void {
    if (this.#aborted) {
      queueMicrotask(cb);
      return;
    }
    (this.#closeCbs ??= []).push(cb);
  }

  onDrain(cb: () => void): void {
    (this.#drainCbs ??= []).push(cb);
  }

  sendContinue(): void {
    if (this.#phase !== Phase.Idle || this.#sent || this.#continueSent || !this.#req.expectContinue) return;
    this.#continueSent = true;
    this.#host.socket.write(CONTINUE_RESPONSE);
  }

  writeHead(status: number, reason: string, headers: HeaderList, opts?: WriteHeadOptions): void {
    if (this.#phase === Phase.Finished) return; // client gone or response already failed
    if (this.#sent) throw new FrontEndError('L7G_ERR_RESPONSE_STATE', { detail: 'writeHead called twice' });
    if (status < 200) throw new FrontEndError('L7G_ERR_RESPONSE_STATE', { detail: '1xx only via sendContinue' });
    const seen = scanFramingHeaders(headers);
    let list = seen.transferEncoding ? withoutTransferEncoding(headers) : headers;
    if (seen.closeToken) this.#closeAfter = true;
    let length = opts?.contentLength;
    if (seen.contentLength !== undefined) {
      const n = parseResponseLength(seen.contentLength);
      if (length !== undefined && length !== n) {
        throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: 'content-length disagrees with opts.contentLength' });
      }
      length = n;
    }
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: `content-length ${length}` });
    }

    let extra = '';
    // RFC 9110 §9.3.2, §15.3.5, §15.4.5: HEAD, 204 and 304 responses never carry content.
    this.#bodyAllowed = this.#req.method !== 'HEAD' && status !== 204 && status !== 304;
    if (!this.#bodyAllowed) {
      this.#framing = Framing.None;
      // HEAD/304 may announce the length the full response would have (never 204, RFC 9110 §8.6).
      if (length !== undefined && seen.contentLength === undefined && status !== 204) extra += `content-length: ${length}\r\n`;
    } else if (length !== undefined && opts?.chunked !== true) {
      this.#framing = Framing.Length;
      this.#expected = length;
      if (seen.contentLength === undefined) extra += `content-length: ${length}\r\n`;
    } else if (this.#req.versionMinor === 1) {
      if (seen.contentLength !== undefined) list = withoutContentLength(list);
      this.#framing = Framing.Chunked;
      extra += 'transfer-encoding: chunked\r\n';
    } else {
      // RFC 9112 §6.3 rule 8: no length and no chunked for HTTP/1.0 — the close delimits the body.
      this.#framing = Framing.CloseDelimited;
      this.#closeAfter = true;
    }
    // An unanswered 100-continue with the body still outstanding: the client may never send it,
    // so the connection cannot be reused (RFC 9110 §10.1.1).
    if (this.#req.expectContinue && !this.#continueSent && !this.#host.requestComplete()) this.#closeAfter = true;
    if (!seen.date) extra += `date: ${imfDate()}\r\n`;
    if (!seen.connection) {
      if (this.#closeAfter || this.#host.mustCloseAfter()) extra += 'connection: close\r\n';
      else if (this.#req.versionMinor === 0) extra += 'connection: keep-alive\r\n'; // RFC 9112 §C.2.2
    }
    const head = serializeResponseHead(status, reason, list, extra);
    this.#sent = true;
    this.#phase = Phase.Streaming;
    // The head waits for the first body bytes, so that a small response leaves in one write (one
    // syscall, one segment); if none come in this tick, it goes alone then.
    this.#head = head;
    process.nextTick(flushHead, this);
  }

  write(chunk: Buffer | string): boolean {
    if (this.#phase === Phase.Finished) return false;
    if (this.#phase !== Phase.Streaming) throw new FrontEndError('L7G_ERR_RESPONSE_STATE', { detail: 'write before writeHead' });
    if (!this.#bodyAllowed) return true;
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (len === 0) return true;
    switch (this.#framing) {
      case Framing.Length:
        if (this.#written + len > this.#expected) {
          this.#fail(new FrontEndError('L7G_ERR_RESPONSE_LENGTH_MISMATCH', { detail: `more than ${this.#expected} bytes` }));
          return false;
        }
        this.#written += len;
        return this.#blocked(this.#send('', chunk, ''));
      case Framing.Chunked:
        return this.#blocked(this.#send(chunkHeader(len), chunk, '\r\n'));
      default:
        this.#written += len;
        return this.#blocked(this.#send('', chunk, ''));
    }
  }

  /**
   * Body bytes framed by `before` and `after` (a chunk's size line and CRLF), behind the pending
   * head if there is one: in one write when small enough to copy into one string (latin1 maps
   * each byte to one char and back), else in one writev.
   */
  #send(before: string, chunk: Buffer | string, after: string): boolean {
    const socket = this.#host.socket;
    const head = this.#head;
    this.#head = undefined;
    const prefix = head === undefined ? before : head + before;
    if (prefix === '' && after === '') return socket.write(chunk);
    if (typeof chunk !== 'string' && chunk.length <= MERGE_MAX_BYTES) {
      return socket.write(prefix + chunk.toString('latin1') + after, 'latin1');
    }
    socket.cork();
    if (prefix !== '') socket.write(prefix, 'latin1');
    let ok = socket.write(chunk);
    if (after !== '') ok = socket.write(after, 'latin1');
    socket.uncork();
    // The last write's answer: a false one promises the 'drain' the caller then waits for.
    return ok;
  }

  #blocked(ok: boolean): boolean {
    if (!ok) this.#host.writeBlocked();
    return ok;
  }

  end(chunk?: Buffer | string): void {
    if (this.#phase === Phase.Finished) return;
    if (this.#phase !== Phase.Streaming) throw new FrontEndError('L7G_ERR_RESPONSE_STATE', { detail: 'end before writeHead' });
    if (chunk !== undefined) this.write(chunk);
    if (this.finished) return; // write() failed the connection
    if (this.#framing === Framing.Length && this.#written !== this.#expected) {
      // The client is still waiting for bytes that will never come: only a close tells it.
      this.#fail(new FrontEndError('L7G_ERR_RESPONSE_LENGTH_MISMATCH', { detail: `${this.#written} of ${this.#expected} bytes` }));
      return;
    }
    const last = this.#framing === Framing.Chunked ? LAST_CHUNK : '';
    const head = this.#head;
    this.#head = undefined;
    if (head !== undefined) this.#host.socket.write(head + last, 'latin1');
    else if (last !== '') this.#host.socket.write(last, 'latin1');
    this.#finish();
  }

  writeRaw(buf: Buffer, endsResponse: true): void {
    void endsResponse;
    if (this.#phase === Phase.Finished) return;
    if (this.#sent) throw new FrontEndError('L7G_ERR_RESPONSE_STATE', { detail: 'writeRaw after writeHead' });
    if (this.#req.expectContinue && !this.#continueSent && !this.#host.requestComplete()) this.#closeAfter = true;
    this.#sent = true;
    // Draining: the connection closes after this response, so its bytes say so (Envoy adds
    // `connection: close` while draining); otherwise the raw bytes (the exact 403) go as they are.
    // A HEAD gets the same head and no body: a kept-alive client would read the body as the start
    // of its next response.
    const bytes = this.#req.method === 'HEAD' ? headOnly(buf) : buf;
    this.#host.socket.write(this.#host.mustCloseAfter() ? withConnectionClose(bytes) : bytes);
    this.#finish();
  }

  drop(): void {
    // After the response finished this object no longer owns the connection (it may already be
    // serving the next request), so a late drop() must not touch it.
    if (this.#phase === Phase.Finished) return;
    this.#phase = Phase.Finished;
    this.#drainCbs = undefined;
    this.#host.dropConnection();
  }

  /**
   * Protocol upgrade: the connection stops being HTTP. Only before any response byte and once the
   * request (which must have no body) is complete; returns the socket and the bytes that followed
   * the head, or undefined when the connection cannot be handed over.
   */
  takeOver(): { socket: Socket; head: Buffer } | undefined {
    if (this.#sent || this.#phase === Phase.Finished) return undefined;
    const taken = this.#host.detach();
    if (taken === undefined) return undefined;
    this.#sent = true;
    this.#phase = Phase.Finished;
    this.#drainCbs = undefined;
    this.#closeCbs = undefined;
    return taken;
  }

  /** The request failed to parse (mid-body) before this response was sent: answer for the caller. */
  failWithStatus(status: number): void {
    if (!this.#sent) {
      this.#sent = true;
      this.#localStatus = status;
      const bytes = errorResponse(status, this.#host.serverName);
      this.#host.socket.write(this.#req.method === 'HEAD' ? headOnly(bytes) : bytes);
    }
    this.#notifyAborted();
  }

  /** The client connection closed while this exchange was current. */
  clientGone(): void {
    if (this.#phase === Phase.Finished) return;
    this.#notifyAborted();
  }

  #notifyAborted(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#phase = Phase.Finished;
    this.#drainCbs = undefined;
    this.#abort?.abort(new FrontEndError('L7G_ERR_CLIENT_ABORTED'));
    const cbs = this.#closeCbs;
    this.#closeCbs = undefined;
    if (cbs !== undefined) for (const cb of cbs) this.#call(cb);
  }

  #call(cb: () => void): void {
    try {
      cb();
    } catch (err) {
      this.#host.callbackThrew(err);
    }
  }

  /** Socket 'drain' while this response is current. */
  drained(): void {
    const cbs = this.#drainCbs;
    if (cbs === undefined) return;
    for (const cb of cbs) this.#call(cb);
  }

  /** The head alone, when no body bytes followed it in the tick it was written in. */
  flushHead(): void {
    const head = this.#head;
    if (head === undefined) return;
    this.#head = undefined;
    if (this.#phase === Phase.Streaming) this.#blocked(this.#host.socket.write(head, 'latin1'));
  }

  #finish(): void {
    this.#phase = Phase.Finished;
    this.#drainCbs = undefined;
    this.#host.responseFinished();
  }

  #fail(err: Error): void {
    this.#phase = Phase.Finished;
    this.#drainCbs = undefined;
    this.#host.failConnection(err);
  }
}

/**
 * Body bytes up to this size are copied into the head's string and leave in its write; bigger ones
 * go by reference in a writev (a copy would cost more than the syscall it saves).
 */
const MERGE_MAX_BYTES = 8 * 1024;

function flushHead(res: ServerResponse): void {
  res.flushHead();
}

interface FramingHeaders {
  contentLength: string | undefined;
  transferEncoding: boolean;
  connection: boolean;
  closeToken: boolean;
  date: boolean;
}

/** One pass over the caller's headers for the fields the front end owns or must not duplicate. */
function scanFramingHeaders(headers: HeaderList): FramingHeaders {
  const seen: FramingHeaders = { contentLength: undefined, transferEncoding: false, connection: false, closeToken: false, date: false };
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    switch (name.length) {
      case 4:
        if (equalsLower(name, 'date')) seen.date = true;
        break;
      case 10:
        if (equalsLower(name, 'connection')) {
          seen.connection = true;
          if (parseConnectionTokens([headers[i + 1]!]).includes('close')) seen.closeToken = true;
        }
        break;
      case 14:
        if (equalsLower(name, 'content-length')) seen.contentLength = headers[i + 1]!;
        break;
      case 17:
        if (equalsLower(name, 'transfer-encoding')) seen.transferEncoding = true;
        break;
    }
  }
  return seen;
}

/**
 * A pre-serialised response with `connection: close` appended to its head (after the last field,
 * where Envoy puts it), unless it already has a Connection field. Only on the drain path.
 */
export function withConnectionClose(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return raw;
  const head = raw.toString('latin1', 0, end + 2);
  if (/\r\nconnection:/i.test(head)) return raw;
  return Buffer.concat([raw.subarray(0, end + 2), CONNECTION_CLOSE, raw.subarray(end + 2)]);
}

const CONNECTION_CLOSE = Buffer.from('connection: close\r\n', 'latin1');

function parseResponseLength(value: string): number {
  if (value.length === 0 || value.length > 15) {
    throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: `content-length ${JSON.stringify(value)}` });
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw new FrontEndError('L7G_ERR_INVALID_RESPONSE_HEADER', { detail: `content-length ${JSON.stringify(value)}` });
  }
  return Number(value);
}

function withoutTransferEncoding(headers: HeaderList): string[] {
  return withoutName(headers, 'transfer-encoding');
}

function withoutContentLength(headers: HeaderList): string[] {
  return withoutName(headers, 'content-length');
}

function withoutName(headers: HeaderList, lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!equalsLower(headers[i]!, lower)) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
