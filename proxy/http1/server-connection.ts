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
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FrontEndLimits, FrontErrorInfo, FrontRequest, FrontResponse } from '../front-end.js';
import { FrontEndError, HttpParseError } from '../errors.js';
import { RequestParser, type RequestHead } from './request-parser.js';
import { errorResponse } from './response-writer.js';
import { ServerResponse, type ResponseHost } from './server-response.js';

export interface ConnectionContext {
  readonly limits: FrontEndLimits;
  onRequest(req: FrontRequest, res: FrontResponse): void;
  onError?(err: Error, info: FrontErrorInfo): void;
  released(conn: ServerConnection): void;
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
}

export class ServerConnection implements ResponseHost {
  readonly socket: Socket;
  readonly #ctx: ConnectionContext;
  readonly #parser: RequestParser;
  readonly #remoteAddress: string;
  readonly #remotePort: number;
  readonly #localAddress: string;
  readonly #localPort: number;
  #exchange: Exchange | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerKind = Timer.None;
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

  /** Wraps an accepted socket; undefined (socket destroyed) if it is already gone. */
  /** `peer`: the client address a trusted PROXY protocol header announced (proxy/proxy-protocol.ts). */
  static accept(socket: Socket, ctx: ConnectionContext, peer?: { address: string; port: number }): ServerConnection | undefined {
    socket.on('error', (err) => ctx.onError?.(err, { phase: 'socket', remoteAddress: undefined, remotePort: undefined }));
    const remote = socket.remoteAddress;
    if (remote === undefined || socket.destroyed) {
      socket.destroy();
      return undefined;
    }
    return new ServerConnection(socket, ctx, peer?.address ?? remote, peer?.port);
  }

  private constructor(socket: Socket, ctx: ConnectionContext, remote: string, remotePort: number | undefined) {
    this.socket = socket;
    this.#ctx = ctx;
    this.#parser = new RequestParser(ctx.limits);
    this.#remoteAddress = unmapIPv4(remote);
    this.#remotePort = remotePort ?? socket.remotePort ?? 0;
    this.#localAddress = unmapIPv4(socket.localAddress ?? '');
    this.#localPort = socket.localPort ?? 0;
    // The accept-time 'error' listener only knows the server; from now on errors carry the peer.
    socket.removeAllListeners('error');
    socket.on('error', (err) => this.#report(err, 'socket'));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#exchange?.res.drained());
    socket.on('close', () => this.#onClose());
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
    const head = this.#parser.takeBuffered();
    this.#exchange = undefined;
    this.#closed = true;
    const socket = this.socket;
    for (const ev of ['data', 'end', 'drain', 'close', 'error'] as const) socket.removeAllListeners(ev);
    socket.on('error', () => undefined);
    // Paused, not flowing: with our 'data' listener gone, a flowing socket would drop bytes
    // before the new owner pipes it.
    socket.pause();
    this.#paused = true;
    this.#ctx.released(this);
    return { socket, head };
  }

  callbackThrew(err: unknown): void {
    this.#report(new FrontEndError('L7G_ERR_HANDLER_THREW', { cause: err, detail: 'in onClose/onDrain callback' }), 'handler');
  }

  // --- socket events ---------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#ending || this.#closed) return; // lingering close: read and drop
    if (this.#timerKind === Timer.Idle) this.#arm(Timer.Headers); // first byte of the next request
    this.#parser.push(chunk);
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
          if (this.#parser.buffered >= this.#ctx.limits.maxPipelinedBytes) this.#pause();
          return;
        }
        if (ex.bodyFull && !ex.discarding) {
          this.#pause();
          return;
        }
      }
      let ev;
      try {
        ev = this.#parser.next();
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
    this.#clearTimer();
    const hasBody = head.chunked || (head.contentLength ?? 0) > 0;
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
      receivedAt: process.hrtime.bigint(),
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
    if (!ex.body!.push(chunk)) ex.bodyFull = true;
  }

  #requestEnded(ex: Exchange): void {
    ex.requestComplete = true;
    if (ex.body !== null && !ex.discarding) ex.body.push(null);
    if (ex.res.finished) this.#completeExchange();
  }

  #completeExchange(): void {
    const ex = this.#exchange!;
    this.#exchange = undefined;
    if (ex.res.closeAfter || this.#shutdown || (this.#readEnded && this.#parser.buffered === 0)) {
      this.#endGracefully();
      return;
    }
    this.#arm(this.#parser.buffered > 0 ? Timer.Headers : Timer.Idle);
    this.#resume();
    this.#pump();
  }

  #parseFailed(err: unknown): void {
    if (!(err instanceof HttpParseError)) throw err; // a bug, not a client error
    this.#report(err, 'parse');
    const ex = this.#exchange;
    if (ex === undefined) {
      this.socket.write(errorResponse(err.status));
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
    this.socket.resume();
  }

  // --- timers ----------------------------------------------------------------------------------

  #arm(kind: Timer): void {
    this.#clearTimer();
    const limits = this.#ctx.limits;
    const ms = kind === Timer.Headers ? limits.headersTimeoutMs : kind === Timer.Idle ? limits.keepAliveTimeoutMs : limits.lingerMs;
    if (!(ms > 0 && Number.isFinite(ms))) return;
    this.#timerKind = kind;
    this.#timer = setTimeout(() => this.#onTimer(kind), ms);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerKind = Timer.None;
  }

  #onTimer(kind: Timer): void {
    this.#timer = undefined;
    this.#timerKind = Timer.None;
    if (this.#closed) return;
    if (kind === Timer.Linger) {
      this.socket.destroy();
      return;
    }
    if (this.#exchange !== undefined || this.#ending) return;
    if (kind === Timer.Idle || (this.#parser.buffered === 0 && this.#parser.atMessageBoundary)) {
      this.socket.destroy(); // nothing of a request was sent: close silently, as nginx does
      return;
    }
    this.#report(new FrontEndError('L7G_ERR_HEADERS_TIMEOUT'), 'timeout');
    this.socket.write(errorResponse(408));
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
