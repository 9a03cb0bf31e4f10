/**
 * Per-connection state machine of the HTTP/1.1 front end.
 *
 *   accept ──► [reading head] ──head──► [exchange: body streaming ∥ response in flight]
 *                 ▲    │ timeout/parse error                 │ request ended + response ended
 *                 │    ▼                                     ▼
 *                 │  408/4xx + close           keep-alive? ──yes──► next request (held bytes first)
 *                 └────────── idle timer ◄──────────────────┘ no ──► FIN, linger, destroy
 *
 * Invariants:
 * - At most one exchange at a time. Bytes of pipelined requests stay in the parser until the
 *   current response has ended (responses therefore go out in request order); past
 *   `maxPipelinedBytes` the socket is paused instead of buffering more.
 * - The request body is pushed into a Readable; when it is full the socket is paused, and
 *   `_read` resumes it. Backpressure goes all the way to the client's TCP window.
 * - A response that ends before its request body did switches the exchange to "discard" mode
 *   (bounded by `maxDiscardBytes`) so the connection can be reused.
 * - Every socket has an 'error' listener; nothing here throws into an event handler.
 */
import type net from 'node:net';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { FrontEndError, HttpParseError } from '../errors.js';
import { RequestParser, type RequestHead } from './request-parser.js';
import { errorResponse, headOnly } from './response-writer.js';
import { ServerResponse, type ResponseHost } from './server-response.js';
import { DeadlineQueue, type DeadlineEntry } from './deadline-queue.js';
import { adoptWithSharedReads, copyOut, isShared, pushToStream } from './shared-reads.js';
import type { FrontEndLimits, FrontErrorInfo, FrontRequest, FrontResponse } from './types.js';

export interface ConnectionContext {
  readonly limits: FrontEndLimits;
  /** The `server` field of the codec's own replies; undefined: none (front-end.ts FrontEndOptions). */
  readonly serverName?: string | undefined;
  onRequest(req: FrontRequest, res: FrontResponse): void;
  onError?(err: Error, info: FrontErrorInfo): void;
  released(conn: ServerConnection): void;
  /** The socket left HTTP through `detach()` (an upgrade): the front end still tracks it for drain. */
  detached?(socket: Socket): void;
}

interface Exchange {
  readonly res: ServerResponse;
  readonly body: Readable | null;
  /** The body Readable refused the last push: stop parsing until it asks for more. */
  bodyFull: boolean;
  requestComplete: boolean;
  /** The response ended first (or the consumer dropped the body): body bytes are read and dropped. */
  discarding: boolean;
  discarded: number;
}

const enum Timer {
  None,
  Headers,
  Idle,
  Linger,
  /** The request timeout, from the head to the response's end: the exchange needs no other connection timer. */
  Request,
}

/** One deadline queue per timer kind, shared by every connection of a front end (deadline-queue.ts). */
type Queues = readonly (DeadlineQueue | undefined)[];
const queuesByContext = new WeakMap<ConnectionContext, Queues>();

function queuesFor(ctx: ConnectionContext): Queues {
  let q = queuesByContext.get(ctx);
  if (q === undefined) {
    const make = (ms: number) => (ms > 0 && Number.isFinite(ms) ? new DeadlineQueue(ms) : undefined);
    const l = ctx.limits;
    q = [undefined, make(l.headersTimeoutMs), make(l.keepAliveTimeoutMs), make(l.lingerMs), make(l.requestTimeoutMs)]; // indexed by Timer
    queuesByContext.set(ctx, q);
  }
  return q;
}

/**
 * Parsers between requests, per front end (keyed by its limits object): a connection holds one only
 * while a request is arriving or in flight, so 10,000 idle keep-alive connections hold none
 * (~0.3 KB each) and a busy one takes and returns one per request instead of allocating it.
 */
const spareParsers = new WeakMap<FrontEndLimits, RequestParser[]>();
/** More than this many at once are left to the GC: a burst does not pin its peak forever. */
const MAX_SPARE_PARSERS = 1024;

function takeParser(limits: FrontEndLimits): RequestParser {
  return spareParsers.get(limits)?.pop() ?? new RequestParser(limits);
}

/** Only a parser between two messages, with nothing buffered, may be reused. */
function returnParser(limits: FrontEndLimits, parser: RequestParser): void {
  let spare = spareParsers.get(limits);
  if (spare === undefined) spareParsers.set(limits, (spare = []));
  if (spare.length < MAX_SPARE_PARSERS) spare.push(parser);
}

/** The socket's owner, for the listeners below: shared functions, not five closures per connection. */
const kConnection = Symbol('l7guard.connection');
/** Set on a socket adoptSharedReads() made: it delivers reads as views of the shared buffer, not 'data'. */
const kSharedReads = Symbol('l7guard.shared-reads');
type OwnedSocket = Socket & { [kConnection]: ServerConnection; [kSharedReads]?: true };

export class ServerConnection implements ResponseHost, DeadlineEntry {
  readonly socket: Socket;
  readonly #ctx: ConnectionContext;
  /** From the first byte of a request until the connection is idle again (takeParser). */
  #parser: RequestParser | undefined;
  readonly #remoteAddress: string;
  readonly #remotePort: number;
  readonly #localAddress: string;
  readonly #localPort: number;
  #exchange: Exchange | undefined;
  readonly #queues: Queues;
  #timerKind = Timer.None;
  /** @internal DeadlineEntry fields, owned by DeadlineQueue. */
  deadlinePrev: DeadlineEntry | undefined = undefined;
  /** @internal */
  deadlineNext: DeadlineEntry | undefined = undefined;
  /** @internal */
  deadlineAt = 0;
  /** @internal */
  deadlineQueue: DeadlineQueue | undefined = undefined;
  /** The read being handled is in the shared buffer (not one of this socket's own). */
  #lending = false;
  #paused = false;
  #pumping = false;
  #pumpAgain = false;
  /** The front end is closing: finish the current response, then close. */
  #shutdown = false;
  /** The client sent FIN. */
  #readEnded = false;
  /** We sent FIN and only drain the socket until it closes. */
  #ending = false;
  #closed = false;
  /**
   * Exchange deadlines (`performance.now()` ms, 0 = none): client body idle, blocked write. One
   * lazily re-armed timer checks them (#watch), armed only for a request with a body or a write the
   * client does not take: the whole-request deadline is the Request queue's (no Timeout per
   * connection, nor one left behind on every idle keep-alive connection).
   */
  #bodyDeadline = 0;
  #sendDeadline = 0;
  #watch: NodeJS.Timeout | undefined;
  #watchAt = 0;
  /** Parsing waits for 'drain': the client is not reading our responses (pipelined flood). */
  #awaitingDrain = false;

  /** Wraps an accepted socket; undefined (socket destroyed) if it is already gone. */
  /** `peer`: the client address a trusted PROXY protocol header announced (proxy/listen/proxy-protocol.ts). */
  static accept(socket: Socket, ctx: ConnectionContext, peer?: { address: string; port: number }): ServerConnection | undefined {
    const remote = socket.remoteAddress;
    if (remote === undefined || socket.destroyed) {
      socket.on('error', (err) => ctx.onError?.(err, { phase: 'socket', remoteAddress: undefined, remotePort: undefined }));
      socket.destroy();
      return undefined;
    }
    return new ServerConnection(socket, ctx, peer?.address ?? remote, peer?.port);
  }

  // Listeners shared by every connection (`this` is the socket). Adding them with no accept-time
  // listener to remove first matters: `removeAllListeners` deletes a key of the socket's `_events`,
  // which turns it into a dictionary (~0.5 KB per idle connection, measured with a heap snapshot).
  static #onSocketError(this: OwnedSocket, err: Error): void {
    this[kConnection].#report(err, 'socket');
  }

  static #onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[kConnection].#onData(chunk);
  }

  /** A read into the shared buffer (shared-reads.ts), on a socket adoptSharedReads() made. */
  /** Asked before each read of an adopted socket: a request body is streaming, its bytes will be kept. */
  static #privateReads(socket: net.Socket): boolean {
    const conn = (socket as Partial<OwnedSocket>)[kConnection];
    if (conn === undefined) return false;
    const ex = conn.#exchange;
    return ex !== undefined && ex.body !== null && !ex.requestComplete && !ex.discarding;
  }

  static #onSharedRead(this: net.Socket, nread: number, buf: Buffer): boolean {
    const conn = (this as Partial<OwnedSocket>)[kConnection];
    // Detached (an upgrade): the socket's new owner reads it as a stream.
    if (conn === undefined) return pushToStream(this, nread, buf);
    conn.#lending = isShared(buf);
    conn.#onData(buf.subarray(0, nread));
    // The buffer is read into again next: what the parser holds (a partial or pipelined request,
    // body bytes under backpressure) becomes its own.
    conn.#parser?.own(); // none: the read ended an exchange and the connection gave its parser back
    return true;
  }

  /**
   * A plain TCP socket just accepted, made to read into the shared buffer (the cheaper way to read,
   * shared-reads.ts); call before accept(). Sockets that went through a TLS handshake or a PROXY
   * header were read already and stay as they are.
   */
  static adoptSharedReads(socket: Socket): Socket {
    const adopted = adoptWithSharedReads(socket, ServerConnection.#onSharedRead, ServerConnection.#privateReads);
    if (adopted !== socket) (adopted as OwnedSocket)[kSharedReads] = true;
    return adopted;
  }

  static #onSocketEnd(this: OwnedSocket): void {
    this[kConnection].#onEnd();
  }

  static #onSocketDrain(this: OwnedSocket): void {
    this[kConnection].#onDrain();
  }

  static #onSocketClose(this: OwnedSocket): void {
    this[kConnection].#onClose();
  }

  private constructor(socket: Socket, ctx: ConnectionContext, remote: string, remotePort: number | undefined) {
    this.socket = socket;
    this.#ctx = ctx;
    this.#remoteAddress = unmapIPv4(remote);
    this.#remotePort = remotePort ?? socket.remotePort ?? 0;
    this.#localAddress = unmapIPv4(socket.localAddress ?? '');
    this.#localPort = socket.localPort ?? 0;
    // The getters above leave both address records cached on the socket (two objects per idle
    // connection, ~0.1 KB) that the fields already hold; null is the socket's own "not read yet".
    const cached = socket as unknown as { _peername: unknown; _sockname: unknown };
    cached._peername = cached._sockname = null;
    this.#queues = queuesFor(ctx);
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('error', ServerConnection.#onSocketError);
    // A socket adoptSharedReads() made delivers its reads to #onSharedRead, never as 'data'.
    if ((socket as OwnedSocket)[kSharedReads] !== true) socket.on('data', ServerConnection.#onSocketData);
    socket.on('end', ServerConnection.#onSocketEnd);
    socket.on('drain', ServerConnection.#onSocketDrain);
    socket.on('close', ServerConnection.#onSocketClose);
    this.#arm(Timer.Headers);
  }

  // --- FrontEnd control -----------------------------------------------------------------------

  /** Front end is closing: idle connections close now, a busy one after its current response. */
  shutdown(): void {
    this.#shutdown = true;
    if (this.#exchange === undefined) this.#endGracefully();
  }

  closeIfIdle(): void {
    if (this.#exchange === undefined) this.#endGracefully();
  }

  // --- ResponseHost ----------------------------------------------------------------------------

  mustCloseAfter(): boolean {
    return this.#shutdown;
  }

  get serverName(): string | undefined {
    return this.#ctx.serverName;
  }

  requestComplete(): boolean {
    return this.#exchange?.requestComplete ?? true;
  }

  responseFinished(): void {
    const ex = this.#exchange;
    if (ex === undefined) return;
    if (ex.requestComplete) {
      this.#completeExchange();
      return;
    }
    if (ex.res.closeAfter || this.#shutdown) {
      this.#endGracefully();
      return;
    }
    // Response first, body still arriving (e.g. 403 to a POST): read and drop the rest.
    ex.discarding = true;
    ex.bodyFull = false;
    if (ex.body !== null) abortBody(ex.body, undefined);
    this.#pump();
  }

  dropConnection(): void {
    this.#abortExchangeBody(new FrontEndError('L7G_ERR_CLIENT_ABORTED', { detail: 'dropped' }));
    this.#exchange = undefined;
    this.#closed = true;
    this.#clearTimer();
    // RST, zero bytes: what a client sees when Cilium drops at L3/L4 after the handshake.
    this.socket.resetAndDestroy();
  }

  failConnection(err: Error): void {
    this.#report(err, 'response');
    this.socket.destroy();
  }

  /**
   * Upgrade hand-over: only for a body-less request whose head was the last thing parsed. Our
   * listeners and timers go; an 'error' listener stays so there is never a window without one
   * (the new owner adds its own). The connection no longer counts as ours.
   */
  detach(): { socket: Socket; head: Buffer } | undefined {
    const ex = this.#exchange;
    if (ex === undefined || ex.body !== null || this.#ending || this.#closed) return undefined;
    this.#clearTimer();
    this.#clearWatch();
    const head = this.#parser!.takeBuffered(); // an exchange has a parser
    this.#parser = undefined; // dead now: not one to return
    this.#exchange = undefined;
    this.#closed = true;
    const socket = this.socket;
    for (const ev of ['data', 'end', 'drain', 'close', 'error'] as const) socket.removeAllListeners(ev);
    socket.on('error', () => undefined);
    // Paused, not flowing: with our 'data' listener gone, a flowing socket would drop bytes
    // before the new owner pipes it.
    socket.pause();
    this.#paused = true;
    // A socket reading into the shared buffer feeds its own Readable from now on (#onSharedRead).
    (socket as Partial<OwnedSocket>)[kConnection] = undefined; // the static listeners above are removed
    this.#ctx.released(this);
    this.#ctx.detached?.(socket);
    return { socket, head };
  }

  callbackThrew(err: unknown): void {
    this.#report(new FrontEndError('L7G_ERR_HANDLER_THREW', { cause: err, detail: 'in onClose/onDrain callback' }), 'handler');
  }

  // --- socket events ---------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#ending || this.#closed) return; // lingering close: read and drop
    if (this.#timerKind === Timer.Idle) this.#arm(Timer.Headers); // first byte of the next request
    if (this.#bodyDeadline !== 0) this.#bodyDeadline = performance.now() + this.#ctx.limits.clientBodyTimeoutMs;
    (this.#parser ??= takeParser(this.#ctx.limits)).push(chunk, this.#lending);
    this.#pump();
  }

  #onEnd(): void {
    this.#readEnded = true;
    if (this.#ending || this.#closed) return;
    const ex = this.#exchange;
    if (ex === undefined) {
      this.#pump(); // serve complete pipelined requests still buffered, then close
      return;
    }
    if (ex.requestComplete) return; // the response is still coming; #completeExchange closes
    if (ex.discarding) {
      this.#endGracefully();
      return;
    }
    // FIN in the middle of the body: the request can never complete.
    this.#abortExchangeBody(new FrontEndError('L7G_ERR_CLIENT_ABORTED', { detail: 'FIN before the request body ended' }));
    ex.res.clientGone();
    this.socket.destroy();
  }

  #onClose(): void {
    this.#closed = true;
    this.#clearTimer();
    this.#clearWatch();
    const ex = this.#exchange;
    this.#exchange = undefined;
    if (ex !== undefined) {
      if (ex.body !== null && !ex.requestComplete) abortBody(ex.body, new FrontEndError('L7G_ERR_CLIENT_ABORTED'));
      ex.res.clientGone();
    }
    this.#ctx.released(this);
  }

  // --- parsing loop ----------------------------------------------------------------------------

  /** Re-entrant safe: responses may finish synchronously inside onRequest or a body push. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#drive();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  /** Hot path — change with care. */
  #drive(): void {
    for (;;) {
      if (this.#ending || this.#closed) return;
      const ex = this.#exchange;
      if (ex !== undefined) {
        if (ex.requestComplete) {
          // Hold the next pipelined request until this response has ended.
          if (this.#buffered >= this.#ctx.limits.maxPipelinedBytes) this.#pause();
          return;
        }
        if (ex.bodyFull && !ex.discarding) {
          this.#pause();
          return;
        }
      } else if (this.socket.writableNeedDrain) {
        // Earlier responses are still unread: parse no further request until the client reads
        // them, or a client that pipelines and never reads would have us queue responses forever.
        this.#awaitingDrain = true;
        this.writeBlocked();
        this.#pause();
        return;
      }
      let ev;
      try {
        ev = this.#parser === undefined ? null : this.#parser.next();
      } catch (err) {
        this.#parseFailed(err);
        return;
      }
      if (ev === null) {
        if (this.#readEnded && ex === undefined) {
          this.#endGracefully();
          return;
        }
        this.#resume();
        return;
      }
      switch (ev.kind) {
        case 'head':
          this.#startExchange(ev.head);
          break;
        case 'body':
          this.#deliverBody(ex!, ev.chunk);
          break;
        case 'end':
          this.#requestEnded(ex!);
          break;
      }
    }
  }

  #startExchange(head: RequestHead): void {
    this.#arm(Timer.Request); // in place of the header timer
    const hasBody = head.chunked || (head.contentLength ?? 0) > 0;
    const limits = this.#ctx.limits;
    if (hasBody && limits.clientBodyTimeoutMs > 0) this.#watchUntil((this.#bodyDeadline = performance.now() + limits.clientBodyTimeoutMs));
    const res = new ServerResponse(this, head);
    const ex: Exchange = {
      res,
      body: hasBody ? this.#createBody() : null,
      bodyFull: false,
      requestComplete: false,
      discarding: false,
      discarded: 0,
    };
    this.#exchange = ex;
    if (ex.body !== null) {
      const body = ex.body;
      body.once('close', () => {
        // The consumer destroyed the body early: keep the connection by discarding the rest.
        if (this.#exchange === ex && !ex.requestComplete && !ex.discarding) {
          ex.discarding = true;
          ex.bodyFull = false;
          this.#pump();
        }
      });
    }
    const req: FrontRequest = {
      method: head.method,
      target: head.target,
      versionMinor: head.versionMinor,
      headers: head.headers,
      rawFields: head.rawFields,
      host: head.host,
      keepAlive: head.keepAlive,
      expectContinue: head.expectContinue,
      upgrade: head.upgrade,
      remoteAddress: this.#remoteAddress,
      remotePort: this.#remotePort,
      localAddress: this.#localAddress,
      localPort: this.#localPort,
      contentLength: head.contentLength,
      chunked: head.chunked,
      hasBody,
      body: ex.body,
      receivedAt: performance.now(),
    };
    try {
      this.#ctx.onRequest(req, res);
    } catch (err) {
      this.#report(new FrontEndError('L7G_ERR_HANDLER_THREW', { cause: err }), 'handler');
      if (this.#exchange !== ex) return; // the response already finished and the exchange moved on
      const streaming = res.sent && !res.finished;
      if (!res.finished) res.failWithStatus(500);
      this.#abortExchangeBody(undefined);
      if (streaming) this.socket.destroy();
      else this.#endGracefully();
    }
  }

  #createBody(): Readable {
    return new Readable({
      highWaterMark: this.#ctx.limits.bodyHighWaterMark,
      read: () => {
        const ex = this.#exchange;
        if (ex !== undefined && ex.bodyFull) {
          ex.bodyFull = false;
          this.#pump();
        }
      },
    });
  }

  #deliverBody(ex: Exchange, chunk: Buffer): void {
    if (ex.discarding) {
      ex.discarded += chunk.length;
      if (ex.discarded > this.#ctx.limits.maxDiscardBytes) this.#endGracefully();
      return;
    }
    // A view of the shared read buffer is copied; one of a buffer of its own (a streaming body's
    // read, or bytes the parser copied) is kept as it is.
    if (!ex.body!.push(this.#parser!.lending ? copyOut(chunk) : chunk)) ex.bodyFull = true;
  }

  #requestEnded(ex: Exchange): void {
    ex.requestComplete = true;
    this.#bodyDeadline = 0;
    if (ex.body !== null && !ex.discarding) ex.body.push(null);
    if (ex.res.finished) this.#completeExchange();
  }

  #completeExchange(): void {
    const ex = this.#exchange!;
    this.#exchange = undefined;
    this.#bodyDeadline = 0;
    if (ex.res.closeAfter || this.#shutdown || (this.#readEnded && this.#buffered === 0)) {
      this.#endGracefully();
      return;
    }
    if (this.#buffered > 0) {
      this.#arm(Timer.Headers);
    } else {
      this.#arm(Timer.Idle);
      // The exchange ended at a message boundary with nothing held: the parser is clean.
      if (this.#parser !== undefined) returnParser(this.#ctx.limits, this.#parser);
      this.#parser = undefined;
    }
    this.#resume();
    this.#pump();
  }

  /** Request bytes received and not yet parsed (none without a parser). */
  get #buffered(): number {
    return this.#parser === undefined ? 0 : this.#parser.buffered;
  }

  #parseFailed(err: unknown): void {
    if (!(err instanceof HttpParseError)) throw err; // a bug, not a client error
    this.#report(err, 'parse');
    const ex = this.#exchange;
    if (ex === undefined) {
      this.#writeError(err.status);
      this.#endGracefully();
      return;
    }
    // The body was malformed: the caller must not forward what it has got so far.
    this.#abortExchangeBody(err);
    const streaming = ex.res.sent && !ex.res.finished;
    if (!ex.res.finished) ex.res.failWithStatus(err.status);
    this.#exchange = undefined;
    if (streaming) this.socket.destroy(); // half a response is on the wire: only a reset is honest
    else this.#endGracefully();
  }

  /**
   * The codec's own answer to a request whose head never completed. Once its request-line was read
   * the method is known, and a HEAD gets the head alone (RFC 9110 §9.3.2).
   */
  #writeError(status: number): void {
    const bytes = errorResponse(status, this.#ctx.serverName);
    this.socket.write(this.#parser?.method === 'HEAD' ? headOnly(bytes) : bytes);
  }

  // --- closing ---------------------------------------------------------------------------------

  /** FIN after pending writes, keep reading (so unread request bytes do not turn it into an RST), destroy after `lingerMs`. */
  #endGracefully(): void {
    if (this.#ending || this.#closed) return;
    this.#ending = true;
    const ex = this.#exchange;
    this.#exchange = undefined;
    if (ex !== undefined) {
      if (ex.body !== null && !ex.requestComplete) abortBody(ex.body, new FrontEndError('L7G_ERR_CLIENT_ABORTED'));
      ex.res.clientGone();
    }
    this.#arm(Timer.Linger);
    this.#paused = false;
    this.socket.resume();
    this.socket.end();
  }

  #abortExchangeBody(err: Error | undefined): void {
    const ex = this.#exchange;
    if (ex !== undefined && ex.body !== null && !ex.requestComplete) abortBody(ex.body, err);
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // The body timeout measures the client, not our backpressure: its clock restarts now.
    if (this.#bodyDeadline !== 0) this.#bodyDeadline = performance.now() + this.#ctx.limits.clientBodyTimeoutMs;
    this.socket.resume();
  }

  // --- timers ----------------------------------------------------------------------------------

  #arm(kind: Timer): void {
    const queue = this.#queues[kind];
    if (queue === undefined) {
      this.#clearTimer();
      return;
    }
    this.#timerKind = kind;
    queue.add(this);
  }

  #clearTimer(): void {
    this.deadlineQueue?.remove(this);
    this.#timerKind = Timer.None;
  }

  /** @internal DeadlineEntry: the current timer's deadline passed. */
  deadlineExpired(): void {
    const kind = this.#timerKind;
    this.#timerKind = Timer.None;
    this.#onTimer(kind);
  }

  #onTimer(kind: Timer): void {
    if (this.#closed || kind === Timer.None) return;
    if (kind === Timer.Request) {
      this.#checkDeadlines(this.deadlineAt); // left in place by the queue's unlink
      return;
    }
    if (kind === Timer.Linger) {
      this.socket.destroy();
      return;
    }
    if (this.#exchange !== undefined || this.#ending) return;
    if (kind === Timer.Idle || this.#parser === undefined || (this.#parser.buffered === 0 && this.#parser.atMessageBoundary)) {
      this.socket.destroy(); // nothing of a request was sent: close silently, as nginx does
      return;
    }
    this.#report(new FrontEndError('L7G_ERR_HEADERS_TIMEOUT'), 'timeout');
    this.#writeError(408);
    this.#endGracefully();
  }

  // --- exchange deadlines (request, client body, send) ---------------------------------------------

  /** ResponseHost: a write returned false. Starts the send timeout unless it already runs. */
  writeBlocked(): void {
    const ms = this.#ctx.limits.sendTimeoutMs;
    if (this.#sendDeadline !== 0 || !(ms > 0)) return;
    this.#watchUntil((this.#sendDeadline = performance.now() + ms));
  }

  #onDrain(): void {
    this.#sendDeadline = 0;
    this.#exchange?.res.drained();
    if (this.#awaitingDrain) {
      this.#awaitingDrain = false;
      this.#pump();
    }
  }

  #watchUntil(deadline: number): void {
    if (this.#watch !== undefined && deadline >= this.#watchAt) return;
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    this.#watchAt = deadline;
    this.#watch = setTimeout(() => this.#onWatch(), Math.max(1, Math.ceil(deadline - performance.now())));
    this.#watch.unref();
  }

  #clearWatch(): void {
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    this.#watch = undefined;
    this.#bodyDeadline = this.#sendDeadline = 0;
  }

  #onWatch(): void {
    this.#watch = undefined;
    this.#checkDeadlines(this.#timerKind === Timer.Request ? this.deadlineAt : 0);
  }

  /** `requestDeadline`: the request timeout's (0 = none), which either timer may find passed first. */
  #checkDeadlines(requestDeadline: number): void {
    if (this.#closed || this.#ending) return;
    const now = performance.now();
    if (this.#sendDeadline !== 0 && now >= this.#sendDeadline) {
      // No 'drain' for sendTimeoutMs: the client stopped reading. Nothing more can reach it.
      this.#report(new FrontEndError('L7G_ERR_SEND_TIMEOUT'), 'timeout');
      this.socket.destroy();
      return;
    }
    const ex = this.#exchange;
    if (ex === undefined) {
      this.#bodyDeadline = 0;
    } else {
      const requestExpired = requestDeadline !== 0 && now >= requestDeadline && !ex.res.finished;
      // When the timer fires late (a busy loop) both may have passed: the one that expired first is
      // what happened to this request.
      const bodyFirst = this.#bodyDeadline !== 0 && now >= this.#bodyDeadline && !this.#paused && this.#bodyDeadline < requestDeadline;
      if (requestExpired && !bodyFirst) {
        this.#report(new FrontEndError('L7G_ERR_REQUEST_TIMEOUT'), 'timeout');
        this.#failExchange(ex, 504);
        return;
      }
      if (this.#bodyDeadline !== 0 && now >= this.#bodyDeadline) {
        if (this.#paused) {
          this.#bodyDeadline = now + this.#ctx.limits.clientBodyTimeoutMs; // we stopped reading, not the client
        } else {
          this.#report(new FrontEndError('L7G_ERR_CLIENT_BODY_TIMEOUT'), 'timeout');
          this.#failExchange(ex, 408);
          return;
        }
      }
    }
    let next = 0;
    for (const d of [this.#bodyDeadline, this.#sendDeadline]) if (d !== 0 && (next === 0 || d < next)) next = d;
    if (next !== 0) this.#watchUntil(next);
  }

  /**
   * A timeout ends the exchange: `status` and close when no response byte was sent (the handler's
   * onClose aborts the upstream exchange); a close when a response is half sent (only a close is
   * honest then); just the close when the response already ended and we were discarding its body.
   */
  #failExchange(ex: Exchange, status: 408 | 504): void {
    if (ex.res.finished) {
      this.#endGracefully();
      return;
    }
    if (ex.res.sent) {
      this.socket.destroy();
      return;
    }
    ex.res.failWithStatus(status);
    this.#endGracefully();
  }

  #report(err: Error, phase: FrontErrorInfo['phase']): void {
    const onError = this.#ctx.onError;
    if (onError === undefined) return;
    try {
      onError(err, { phase, remoteAddress: this.#remoteAddress, remotePort: this.#remotePort });
    } catch {
      // A throwing error hook must not turn a client error into a process crash.
    }
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1` (dual-stack listeners report IPv4 peers this way). */
export function unmapIPv4(addr: string): string {
  return addr.length > 7 && addr.startsWith('::ffff:') && addr.indexOf('.', 7) !== -1 ? addr.slice(7) : addr;
}

/**
 * Ends the body stream early. With an error only if someone listens for it: an 'error' event
 * nobody handles would crash the process, and a premature 'close' already tells consumers.
 */
function abortBody(body: Readable, err: Error | undefined): void {
  if (body.destroyed) return;
  if (err !== undefined && body.listenerCount('error') > 0) body.destroy(err);
  else body.destroy();
}
