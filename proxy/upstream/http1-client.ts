/**
 * Our own HTTP/1.1 client for plain-HTTP pods, on `node:net`: per pod a pool of persistent
 * connections, one request at a time on each (no pipelining: a retry must stay a policy decision).
 * It exists for speed — the request head goes out as one buffer, the socket reads into one shared
 * buffer below Node's stream layer, and nothing is converted between header shapes — and for
 * certainty about what was sent: every write is ours, so "not one byte of this request reached the
 * pod" is known, not inferred (proxy/upstream/retry.ts).
 *
 * undici stays where it is the right tool (TLS origination, health checks, the CLI's clients) and
 * behind `--upstream-client undici` (upstream.ts).
 *
 * Timeouts without a timer per connection or per request: one deadline queue per duration, shared
 * by every connection of the client (proxy/http1/deadline-queue.ts), a connection in at most one:
 * connect; the response head from the end of the request (the response timeout, see `Phase`);
 * between response body reads (the body timeout); idle in the pool (the keep-alive timeout, or the
 * pod's `Keep-Alive` hint). `socket.setTimeout` per phase allocated a Timeout and a bound function
 * each time, three times per request.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Backend } from '../../policy/model.js';
import { FrontEndError, HttpParseError, UpstreamError } from '../errors.js';
import { DeadlineQueue, type DeadlineEntry } from '../http1/deadline-queue.js';
import { copyOut, isShared, sharedReads } from '../http1/shared-reads.js';
import { DEFAULT_RESPONSE_LIMITS, ResponseParser, type ResponseHead, type ResponseListener } from '../http1/response-parser.js';
import { defaultUpstreamOptions, type UpstreamClient, type UpstreamOptions, type UpstreamRequest, type UpstreamSink } from './upstream.js';

/** A pod's `Keep-Alive: timeout=N` is honoured minus this margin, so a reuse never races the close it announced (undici's default). */
const KEEP_ALIVE_THRESHOLD_MS = 2_000;
/** The longest a pod's hint may keep an idle connection (undici's keepAliveMaxTimeout). */
const KEEP_ALIVE_MAX_MS = 600_000;

/** A CR, LF or NUL in a field would split the head: a request-smuggling vector if it ever got through. */
const BREAKS_HEAD = /[\r\n\0]/;

/**
 * The response timeout counts from the end of the request, as Envoy's route timeout does (from the
 * downstream request's end-of-stream to the end of the upstream response: envoy
 * api/envoy/config/route/v3/route_components.proto, `RouteAction.timeout`) and undici's
 * `headersTimeout` (the wait for the response head "while not sending the request": undici
 * docs/docs/api/Client.md, `ClientOptions`): a client uploading slowly is not a pod that does not
 * answer, and a pod rightly waits for the whole body before it answers.
 */
const enum Phase {
  Connecting,
  Idle,
  /**
   * The head is written, the body is on its way. No timer while the client's next bytes are
   * awaited (the front end's client-body timeout polices that); the response timeout runs only
   * while a write waits for the pod to read (undici's headers timer fires then too: the pod's
   * silence), re-armed at each such write.
   */
  Upload,
  /** The request is complete, or the pod began answering before it was: the response timeout runs. */
  Head,
  Body,
}

/** `_bytesDispatched`: Node's count of the bytes the stream handle accepted (net.js). */
type CountedSocket = net.Socket & { readonly _bytesDispatched?: number };

export class Http1Upstream implements UpstreamClient {
  readonly takesRawFields = true;
  readonly #pools = new Map<string, Pool>();
  readonly #opts: UpstreamOptions;
  readonly #timers: Timers;
  #closed = false;

  constructor(opts: Partial<UpstreamOptions> = {}) {
    this.#opts = { ...defaultUpstreamOptions, ...opts };
    this.#timers = new Timers(this.#opts);
  }

  send(backend: Backend, req: UpstreamRequest, sink: UpstreamSink): void {
    if (this.#closed) {
      sink.onError(new UpstreamError('L7G_ERR_UPSTREAM_CLIENT_CLOSED'), false);
      return;
    }
    const key = backend.ip.includes(':') ? `[${backend.ip}]:${backend.port}` : `${backend.ip}:${backend.port}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) this.#pools.set(key, (pool = new Pool(backend.ip, backend.port, this.#opts, this.#timers)));
    pool.dispatch(new Attempt(req, sink));
  }

  retainOnly(live: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (live.has(pool.host)) continue;
      this.#pools.delete(key);
      pool.drain();
    }
  }

  /** Open connections per pod address, for tests and /config_dump. */
  get connectionCounts(): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    for (const [key, pool] of this.#pools) out.set(key, pool.size);
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.drain()));
  }
}

/** The deadline queues of one client; a queue of 0 ms is "no timeout". */
class Timers {
  readonly connect: DeadlineQueue | undefined;
  readonly head: DeadlineQueue | undefined;
  readonly body: DeadlineQueue | undefined;
  readonly #idle: DeadlineQueue | undefined;
  /** Idle queues for the pods' Keep-Alive hints, by whole seconds (so at most KEEP_ALIVE_MAX_MS / 1000). */
  readonly #hinted = new Map<number, DeadlineQueue>();

  constructor(o: UpstreamOptions) {
    this.connect = queue(o.connectTimeout);
    this.head = queue(o.headersTimeout);
    this.body = queue(o.bodyTimeout);
    this.#idle = queue(o.keepAliveTimeout);
  }

  idle(hintMs: number | undefined): DeadlineQueue | undefined {
    if (hintMs === undefined) return this.#idle;
    const ms = Math.max(1000, Math.floor(hintMs / 1000) * 1000);
    let q = this.#hinted.get(ms);
    if (q === undefined) this.#hinted.set(ms, (q = new DeadlineQueue(ms)));
    return q;
  }
}

function queue(ms: number): DeadlineQueue | undefined {
  return ms > 0 && Number.isFinite(ms) ? new DeadlineQueue(ms) : undefined;
}

/** One request on its way: what was asked, who hears the answer, and how far the write got. */
class Attempt {
  readonly req: UpstreamRequest;
  readonly sink: UpstreamSink;
  conn: Connection | undefined = undefined;
  /** Its first byte was handed to the socket. */
  written = false;
  /** The request body was written in full (trivially so without one). */
  sent = false;
  /** Failed, aborted or ended: the sink has heard its last. */
  done = false;

  constructor(req: UpstreamRequest, sink: UpstreamSink) {
    this.req = req;
    this.sink = sink;
  }

  readonly abort = (err: Error): void => {
    const conn = this.conn;
    if (this.done) return;
    // Not written yet (aborted from onStart): the connection stays good for the next request.
    if (conn === undefined || !this.written) {
      this.fail(err, false);
      return;
    }
    conn.fail(err, false);
  };

  readonly pause = (): void => {
    if (!this.done) this.conn?.pauseResponse();
  };

  readonly resume = (): void => {
    if (!this.done) this.conn?.resumeResponse();
  };

  fail(err: Error, unsent: boolean): void {
    if (this.done) return;
    this.done = true;
    this.sink.onError(err, unsent);
  }
}

class Pool {
  readonly host: string;
  readonly port: number;
  readonly opts: UpstreamOptions;
  readonly timers: Timers;
  readonly #idle: Connection[] = [];
  readonly #queue: Attempt[] = [];
  /** Connections open or opening. */
  size = 0;
  /** Connections between the end of a response and their release (`Connection.released`). */
  releasing = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(host: string, port: number, opts: UpstreamOptions, timers: Timers) {
    this.host = host;
    this.port = port;
    this.opts = opts;
    this.timers = timers;
  }

  dispatch(a: Attempt): void {
    // Longest idle first, as undici's Pool does: the connection just released is the one a pod that
    // closes after each response (without saying so) is about to close, and our own idle timeout
    // stays under the pods' (defaultUpstreamOptions.keepAliveTimeout), so old is not stale.
    const idle = this.#idle.shift();
    if (idle !== undefined) {
      idle.reuse(a);
      return;
    }
    this.#queue.push(a);
    // A connection whose response just ended comes back in this turn's check phase: wait for it
    // rather than open one more (which would then idle out and be closed: connection churn).
    if (this.#queue.length <= this.releasing) return;
    if (this.size < this.opts.connections) {
      this.size++;
      new Connection(this);
    }
  }

  /** A connection is free: the next queued request, else the idle list (closed when draining). */
  release(conn: Connection, fresh = false): void {
    const next = this.#queue.shift();
    if (next !== undefined) {
      if (fresh) conn.run(next);
      else conn.reuse(next);
      return;
    }
    if (this.#draining) {
      conn.destroy();
      return;
    }
    conn.idle();
    this.#idle.push(conn);
  }

  /** A connection is gone (or never came up: `err` fails the requests that were waiting for it). */
  removed(conn: Connection, err: Error | undefined): void {
    this.size--;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (err !== undefined && this.#queue.length > this.size) {
      // Only the requests no remaining connection will serve: they were never written anywhere.
      const failed = this.#queue.splice(this.size);
      for (const a of failed) a.fail(err, true);
    } else if (this.#queue.length > this.size) {
      if (this.#draining) this.#failOrphans(this.size);
      else {
        this.size++;
        new Connection(this);
      }
    }
    if (this.size === 0 && this.#drained !== undefined) this.#drained();
  }

  /** A connection a queued request was waiting for closed instead of coming back: open another. */
  replenish(): void {
    if (this.#draining) {
      if (this.#queue.length > this.releasing) this.#failOrphans(this.releasing);
      return;
    }
    if (this.#queue.length > this.releasing && this.size < this.opts.connections) {
      this.size++;
      new Connection(this);
    }
  }

  /**
   * A draining pool opens no connection: the queued requests past the `keep` that connections on
   * their way back will serve would wait for ever. They were never written, so they fail as unsent
   * (retry.ts may send them to another pod).
   */
  #failOrphans(keep: number): void {
    for (const a of this.#queue.splice(keep)) a.fail(new UpstreamError('L7G_ERR_UPSTREAM_CLOSED', { detail: 'the pod left the Service' }), true);
  }

  /** Stop pooling: idle connections close now, busy ones once their exchange ended (in-flight requests finish). */
  drain(): Promise<void> {
    this.#draining = true;
    for (const c of this.#idle.splice(0)) c.destroy();
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }
}

class Connection implements ResponseListener, DeadlineEntry {
  deadlinePrev: DeadlineEntry | undefined = undefined;
  deadlineNext: DeadlineEntry | undefined = undefined;
  deadlineAt = 0;
  deadlineQueue: DeadlineQueue | undefined = undefined;
  readonly pool: Pool;
  readonly socket: CountedSocket;
  readonly #parser: ResponseParser;
  #phase = Phase.Connecting;
  #attempt: Attempt | undefined;
  /** ms a pod's Keep-Alive hint allows (undefined: ours). */
  #idleMs: number | undefined;
  /** The read being parsed is in the shared buffer: body bytes handed on are copied. */
  #lending = false;
  #gone = false;
  /** Waiting for the idle-socket validation (`reuse`): not written, so not yet this connection's. */
  #pending: Attempt | undefined;
  /** The request body still being written, with the listeners it holds. */
  #upload: Upload | undefined;

  constructor(pool: Pool) {
    this.pool = pool;
    this.#parser = new ResponseParser(this, DEFAULT_RESPONSE_LIMITS);
    const socket = net.connect({
      host: pool.host, port: pool.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000,
      // A response body streaming in is read into buffers of its own, handed on without a copy.
      onread: sharedReads(onSocketRead, () => this.#phase === Phase.Body && this.#attempt !== undefined),
    }) as OwnedSocket;
    socket[kConnection] = this;
    this.socket = socket;
    this.#arm(pool.timers.connect);
    socket.on('connect', () => {
      this.#phase = Phase.Idle;
      pool.release(this, true);
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err) => this.fail(err, false));
    socket.on('close', () => this.#onClose());
  }

  idle(): void {
    this.#phase = Phase.Idle;
    this.#attempt = undefined;
    // Paused by the last response's backpressure: an idle connection must still see the pod's FIN or RST.
    this.socket.resume();
    this.#arm(this.pool.timers.idle(this.#idleMs));
  }

  /** Sends one request on this connection. */
  run(a: Attempt): void {
    const socket = this.socket;
    a.conn = this;
    this.#attempt = a;
    this.#phase = Phase.Head;
    a.sink.onStart(a.abort, a.pause, a.resume);
    // Aborted in onStart (its client left while it waited): nothing was written, the connection is still good.
    if (a.done) {
      a.conn = undefined;
      this.#attempt = undefined;
      this.pool.release(this);
      return;
    }
    const req = a.req;
    const body = req.body;
    let head: string;
    try {
      head = requestHead(req, body !== null);
    } catch (err) {
      a.conn = undefined;
      this.#attempt = undefined;
      a.fail(err as Error, false);
      this.pool.release(this);
      return;
    }
    this.#parser.expect(req.method === 'HEAD');
    a.written = true;
    socket.resume();
    if (body === null) {
      a.sent = true;
      this.#arm(this.pool.timers.head);
      this.#writeHead(head);
      return;
    }
    this.#phase = Phase.Upload;
    this.deadlineQueue?.remove(this);
    // Fields passed through raw carry their Content-Length (request-headers.ts fieldsPassUnchanged).
    if (this.#writeHead(head)) this.#upload = new Upload(this, body, req.rawFields === undefined && !hasContentLength(req.headers));
  }

  /**
   * The head in one write, before any body byte is read. When that write fails at once with the
   * handle's byte count unchanged, the kernel refused the syscall itself (the pod's RST had
   * arrived): certainly unsent, and the body is untouched, so the request may go again (retry.ts).
   */
  #writeHead(head: string): boolean {
    const socket = this.socket;
    const before = socket._bytesDispatched;
    socket.write(head, 'latin1');
    const err = socket.errored;
    if (err === null) return true;
    this.fail(err, typeof before === 'number' && socket._bytesDispatched === before);
    return false;
  }

  /** A body write waits for the pod to read (`blocked`), or the pod read it all. */
  uploadBlocked(blocked: boolean): void {
    if (this.#phase !== Phase.Upload) return;
    if (blocked) this.#arm(this.pool.timers.head);
    else this.deadlineQueue?.remove(this);
  }

  /** The request's last byte was handed to the socket: the response timeout starts, unless the pod started answering already. */
  uploaded(): void {
    this.#upload = undefined;
    this.#attempt!.sent = true;
    if (this.#phase !== Phase.Upload) return;
    this.#phase = Phase.Head;
    this.#arm(this.pool.timers.head);
  }

  /** The request body failed (the client aborted): the request can never be completed, the connection is desynchronised. */
  uploadFailed(err: Error): void {
    this.#upload = undefined;
    this.fail(err, false);
  }

  /** Every listener the request put on the socket and on its body goes with the request, however it ended. */
  #endUpload(): void {
    const u = this.#upload;
    if (u === undefined) return;
    this.#upload = undefined;
    u.detach();
  }

  onResponseHead(head: ResponseHead): void {
    const a = this.#attempt!;
    this.#phase = Phase.Body;
    this.#arm(this.pool.timers.body);
    if (head.keepAliveTimeoutMs !== undefined) {
      const ms = Math.min(head.keepAliveTimeoutMs - KEEP_ALIVE_THRESHOLD_MS, KEEP_ALIVE_MAX_MS);
      this.#idleMs = ms > 0 ? ms : 0;
    }
    a.sink.onHeaders(head.status, head.reason, head.headers, head.contentLength);
  }

  onResponseData(chunk: Buffer): void {
    const a = this.#attempt!;
    const body = this.pool.timers.body;
    if (body !== undefined) body.add(this);
    // A view of the shared read buffer, which the next read overwrites: the sink gets bytes of its own, since
    // a socket write may hold them until the client reads.
    if (!a.done) a.sink.onData(this.#lending ? copyOut(chunk) : chunk);
  }

  onResponseEnd(reusable: boolean): void {
    const a = this.#attempt!;
    a.done = true;
    a.conn = undefined;
    this.#attempt = undefined;
    this.#endUpload();
    // A response that ended before its request body did leaves the connection mid-request.
    if (reusable && a.sent && this.#idleMs !== 0) {
      this.pool.releasing++;
      setImmediate(releaseAfterCheck, this);
    } else {
      this.destroy();
    }
    a.sink.onEnd();
  }

  /**
   * A request for a connection that served one before: written only after the next poll phase, as
   * undici validates an idle socket (GHSA-35p6-xmwp-9g52). A FIN, RST or stray bytes the pod sent
   * meanwhile are read first and the connection is dropped instead — the request then goes on
   * another, never written to one already closing. Without this, a pod that closes right after
   * each response (no `Connection: close`) cost a quarter of requests a 502 under 24 concurrent
   * clients (test/faults/keepalive-closed.test.ts); the wait is the rest of the current poll batch.
   */
  reuse(a: Attempt): void {
    this.#pending = a;
    this.#phase = Phase.Head;
    setImmediate(runValidated, this);
  }

  /**
   * Back to the pool in the check phase after the response was read, so that a reuse (validated in
   * a later check phase) comes after at least one whole poll: a short read makes libuv stop reading
   * a socket until the next poll, so a FIN sent right behind the response is only read there.
   */
  released(): void {
    this.pool.releasing--;
    if (!this.#gone) this.pool.release(this);
    else this.pool.replenish();
  }

  validated(): void {
    const a = this.#pending;
    this.#pending = undefined;
    if (a !== undefined && !this.#gone) this.run(a);
  }

  /** What the socket read, in the shared buffer: parsed before the next read reuses it (the parser copies what it keeps). */
  onRead(chunk: Buffer, shared: boolean): void {
    this.#lending = shared;
    // The pod answers before the body is all written (an early 413, say): its head is due now.
    if (this.#phase === Phase.Upload) {
      this.#phase = Phase.Head;
      this.#arm(this.pool.timers.head);
    }
    try {
      this.#parser.execute(chunk);
    } catch (err) {
      this.fail(err instanceof HttpParseError ? new UpstreamError('L7G_ERR_UPSTREAM_BAD_RESPONSE', { cause: err, detail: err.message }) : (err as Error), false);
    }
  }

  #onEnd(): void {
    try {
      if (this.#parser.finish()) return;
    } catch {
      // Cut short: reported below as a close.
    }
    this.fail(new UpstreamError('L7G_ERR_UPSTREAM_CLOSED'), false);
  }

  /**
   * The client reads slower than the pod sends: while it catches up, the pod's bytes wait unread in
   * the socket, and that wait is not the pod's silence — the body timeout rests until it resumes.
   */
  pauseResponse(): void {
    this.socket.pause();
    if (this.#phase === Phase.Body) this.deadlineQueue?.remove(this);
  }

  resumeResponse(): void {
    this.socket.resume();
    if (this.#phase === Phase.Body) this.#arm(this.pool.timers.body);
  }

  #arm(q: DeadlineQueue | undefined): void {
    if (q !== undefined) q.add(this);
    else this.deadlineQueue?.remove(this);
  }

  deadlineExpired(): void {
    this.#onTimeout();
  }

  #onTimeout(): void {
    switch (this.#phase) {
      case Phase.Connecting:
        this.fail(new UpstreamError('L7G_ERR_UPSTREAM_CONNECT_TIMEOUT'), false);
        return;
      case Phase.Idle:
        this.destroy();
        return;
      case Phase.Upload:
      case Phase.Head:
        this.fail(new UpstreamError('L7G_ERR_UPSTREAM_HEADERS_TIMEOUT'), false);
        return;
      case Phase.Body:
        this.fail(new UpstreamError('L7G_ERR_UPSTREAM_BODY_TIMEOUT'), false);
        return;
    }
  }

  #onClose(): void {
    if (this.#attempt !== undefined) this.fail(new UpstreamError('L7G_ERR_UPSTREAM_CLOSED'), false);
    this.#leave(undefined);
  }

  /** The connection failed: its request (if any) fails with `err`, and it is dropped. */
  fail(err: Error, unsent: boolean): void {
    const a = this.#attempt;
    this.#attempt = undefined;
    this.#endUpload();
    // A connect failure fails the requests waiting for a connection: never written, and the
    // error (ECONNREFUSED, a connect timeout) says so (retry.ts `failedBeforeSend`).
    if (this.#phase === Phase.Connecting) this.#leave(err);
    this.destroy();
    if (a !== undefined) {
      a.conn = undefined;
      a.fail(err, unsent);
    }
  }

  destroy(): void {
    this.deadlineQueue?.remove(this);
    this.#parser.reset();
    this.socket.destroy();
    this.#leave(undefined);
  }

  #leave(err: Error | undefined): void {
    if (this.#gone) return;
    this.#gone = true;
    this.pool.removed(this, err);
    // The validation found the connection closing: the request was never written, it goes on another.
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) this.pool.dispatch(pending);
  }
}

const kConnection = Symbol('l7guard.upstream-connection');
type OwnedSocket = CountedSocket & { [kConnection]: Connection };

/** Reads go into the shared buffer (../http1/shared-reads.ts); one function for every connection, not a closure each. */
function onSocketRead(this: net.Socket, nread: number, buf: Buffer): boolean {
  (this as OwnedSocket)[kConnection].onRead(buf.subarray(0, nread), isShared(buf));
  return true;
}

/**
 * One request body on its way to the pod, as it arrives, with backpressure both ways; chunk-framed
 * when its length is unknown. It holds every listener the request puts on the body and on the
 * pooled socket, so that `detach` takes them all: a listener left on a socket that goes back to the
 * pool would keep the body alive and fire into a later request.
 */
class Upload {
  readonly #conn: Connection;
  readonly #socket: net.Socket;
  readonly #body: Readable;
  readonly #chunked: boolean;
  /** Waiting for `drain`: the pod has not read what was written. */
  #blocked = false;

  constructor(conn: Connection, body: Readable, chunked: boolean) {
    this.#conn = conn;
    this.#socket = conn.socket;
    this.#body = body;
    this.#chunked = chunked;
    body.on('data', this.#onData);
    body.on('end', this.#onEnd);
    body.on('error', this.#onError);
    body.on('close', this.#onClose);
  }

  detach(): void {
    const body = this.#body;
    body.off('data', this.#onData);
    body.off('end', this.#onEnd);
    body.off('error', this.#onError);
    body.off('close', this.#onClose);
    if (this.#blocked) {
      this.#blocked = false;
      this.#socket.off('drain', this.#onDrain);
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    const socket = this.#socket;
    if (this.#chunked ? writeChunk(socket, chunk) : socket.write(chunk)) return;
    this.#body.pause();
    if (!this.#blocked) {
      this.#blocked = true;
      socket.on('drain', this.#onDrain);
    }
    this.#conn.uploadBlocked(true);
  };

  readonly #onDrain = (): void => {
    this.#blocked = false;
    this.#socket.off('drain', this.#onDrain);
    this.#conn.uploadBlocked(false);
    this.#body.resume();
  };

  readonly #onEnd = (): void => {
    this.detach();
    if (this.#chunked) this.#socket.write('0\r\n\r\n', 'latin1');
    this.#conn.uploaded();
  };

  readonly #onError = (err: Error): void => {
    this.detach();
    this.#conn.uploadFailed(err);
  };

  /** Destroyed without an error (the front end gave up on the request): as good as an abort. */
  readonly #onClose = (): void => {
    this.detach();
    this.#conn.uploadFailed(this.#body.errored ?? new FrontEndError('L7G_ERR_CLIENT_ABORTED'));
  };
}

function releaseAfterCheck(conn: Connection): void {
  conn.released();
}

function runValidated(conn: Connection): void {
  conn.validated();
}

/** The request head as one string (latin1: every byte of a field is one char, as the parser produced it). */
function requestHead(req: UpstreamRequest, hasBody: boolean): string {
  const h = req.headers;
  // The client's field lines, when they pass untouched: checked by the front end's parser already.
  const raw = req.rawFields;
  let head = raw === undefined ? `${req.method} ${req.path} HTTP/1.1\r\n` : `${req.method} ${req.path} HTTP/1.1\r\n${raw}`;
  let chunked = hasBody && raw === undefined;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (BREAKS_HEAD.test(value) || BREAKS_HEAD.test(name)) throw new UpstreamError('L7G_ERR_UPSTREAM_BAD_REQUEST_HEAD', { detail: name });
    if (chunked && name.length === 14 && name.toLowerCase() === 'content-length') chunked = false;
    head += `${name}: ${value}\r\n`;
  }
  // A body of unknown length (the client's was chunked; the framing fields stopped at the front end).
  return chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`;
}

function hasContentLength(h: readonly string[]): boolean {
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = h[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return true;
  }
  return false;
}

function writeChunk(socket: net.Socket, chunk: Buffer): boolean {
  if (chunk.length === 0) return true;
  socket.cork();
  socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
  socket.write(chunk);
  const ok = socket.write('\r\n', 'latin1');
  socket.uncork();
  return ok;
}
