import type * as Undici from 'undici';
import type { Dispatcher, Pool, buildConnector } from 'undici';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Backend, HeaderList } from '../../policy/model.js';

/**
 * The upstream client: `UpstreamClient` is all the request path knows of it, so another client
 * (one on node:net for plain HTTP, say) can stand in without the exchange changing. `Upstream` is
 * the undici one: one Pool per backend address, kept across policy revisions so that a reload never
 * drops warm keep-alive connections, closed when its pod is gone (`retainOnly`); nothing outside this
 * file touches undici's dispatcher. http1-client.ts is the other, the default for plain HTTP.
 */

export interface UpstreamOptions {
  /**
   * Which client speaks plain HTTP to the pods: `native` (http1-client.ts, the default) or `undici`
   * (this file; kept selectable for one release). TLS origination always uses undici.
   */
  readonly client: 'native' | 'undici';
  /** Connections per backend. */
  readonly connections: number;
  /** undici keepAliveTimeout (ms): must stay below the backend's idle timeout (Node's default is 5 s). */
  readonly keepAliveTimeout: number;
  readonly connectTimeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /**
   * TLS origination (CNP `originatingTLS`, proxy/tls/): every pool speaks TLS, verifies the backend
   * against `ca` for `servername`, and presents `cert`/`key` when set. Absent: plain HTTP.
   */
  readonly tls?: { readonly ca: string; readonly servername: string; readonly cert?: string | undefined; readonly key?: string | undefined } | undefined;
}

export const defaultUpstreamOptions: UpstreamOptions = {
  client: 'native',
  connections: 256,
  // undici's own default (4 s) sits under Node's 5 s server keepAliveTimeout: the race in
  // nodejs/undici#3141 is avoided by never reusing a socket the backend is about to close.
  keepAliveTimeout: 4_000,
  // Envoy's cluster connect_timeout default is 5 s.
  connectTimeout: 5_000,
  // Envoy's route timeout default is 15 s for the whole response head.
  headersTimeout: 15_000,
  bodyTimeout: 300_000,
};

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** The fields to send; with `rawFields`, only those that follow them. */
  readonly headers: HeaderList;
  /**
   * The client's field lines to send first, untouched (each with its CRLF): only to a client that
   * `takesRawFields`, and only when no field of them needs an edit (request-headers.ts
   * `fieldsPassUnchanged`), so a body always has its one canonical Content-Length among them.
   */
  readonly rawFields?: string | undefined;
  readonly body: Readable | null;
}

/** What the caller does with the upstream response; mirrors undici's v7 handler, minus the controller. */
export interface UpstreamSink {
  /** Called right before the first byte of the request is written (undici's onRequestStart). */
  onStart(abort: (err: Error) => void, pause: () => void, resume: () => void): void;
  /** `headers` as received ([name0, value0, ...], hop-by-hop fields included); `contentLength` when valid. */
  onHeaders(status: number, reason: string, headers: string[], contentLength: number | undefined): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  /**
   * `unsent`: a pooled connection was found closed and it is certain that not one byte of this
   * request was written to it (see `unsentOnClosedConnection`); the request is intact and may be
   * sent again. False whenever bytes may have left, even if the connection then closed at once.
   */
  onError(err: Error, unsent: boolean): void;
}

/**
 * Socket errors that mean "this connection is gone". undici re-queues a request it had not started
 * when the socket ends with a FIN (UND_ERR_SOCKET), but fails it with the raw error when the socket
 * was reset (ECONNRESET) while the request waited for its idle-socket check — never written.
 */
const CONNECTION_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'UND_ERR_SOCKET']);

/**
 * Errors of writes that failed synchronously on a plain TCP socket: the write syscall itself was
 * refused (the peer's RST had already arrived), so libuv accepted none of its bytes. Weak: the
 * error objects die with their requests.
 */
const failedAtOnce = new WeakSet<Error>();

/** `_bytesDispatched`: Node's legacy alias of the bytes the stream handle accepted (net.js). */
type CountedSocket = Socket & { readonly _bytesDispatched?: number };
const nativeWrite = Socket.prototype.write as (this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown) => boolean;

/**
 * Installed as `write` on each plain upstream socket (a shared function: no closure per socket or
 * request). A write that errors before returning, with the handle's byte count unchanged, wrote
 * nothing: the kernel refused the write syscall itself (a partial write would have been counted
 * and its failure reported later).
 */
function writeOrNote(this: CountedSocket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const erroredBefore = this.errored;
  const before = this._bytesDispatched;
  const ok = nativeWrite.call(this, chunk, encoding, cb);
  const err = this.errored;
  if (erroredBefore === null && err !== null && typeof before === 'number' && this._bytesDispatched === before) failedAtOnce.add(err);
  return ok;
}

/** Sends one request to one pod and streams the answer into `sink`. */
export interface UpstreamClient {
  /** Whether send() honours UpstreamRequest.rawFields (else every field must be in `headers`). */
  readonly takesRawFields?: boolean;
  send(backend: Backend, req: UpstreamRequest, sink: UpstreamSink): void;
  /**
   * Pools follow the pods: the pools of addresses not in `live` drain (their in-flight requests
   * finish) and close. Called with every new policy revision (pools.ts `podAddresses`).
   */
  retainOnly(live: ReadonlySet<string>): void;
  /** Closes every pooled connection (the drain's last step). */
  close(): Promise<void>;
}

let loaded: typeof Undici | undefined;
/**
 * undici is ~4 MB of heap and ~10 MB of RSS once loaded: required by the first pool, so a `serve`
 * whose plain-HTTP traffic goes through the native client (http1-client.ts) never loads it.
 */
function undici(): typeof Undici {
  return (loaded ??= createRequire(import.meta.url)('undici') as typeof Undici);
}

export class Upstream implements UpstreamClient {
  readonly #pools = new Map<string, Pool>();
  readonly #opts: UpstreamOptions;

  constructor(opts: Partial<UpstreamOptions> = {}) {
    this.#opts = { ...defaultUpstreamOptions, ...opts };
  }

  #pool(backend: Backend): Pool {
    const key = backend.ip.includes(':') ? `[${backend.ip}]:${backend.port}` : `${backend.ip}:${backend.port}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const o = this.#opts;
      pool = new (undici().Pool)(`${o.tls === undefined ? 'http' : 'https'}://${key}`, {
        connections: o.connections,
        pipelining: 1,
        keepAliveTimeout: o.keepAliveTimeout,
        // undici's default, made explicit: a pod's `Keep-Alive: timeout=N` is honoured minus this
        // margin (a socket is not reused past N - 2 s, nor at all when N ≤ 2), so a reuse never
        // races a close the pod announced. Our keepAliveTimeout applies only when it says nothing.
        keepAliveTimeoutThreshold: 2_000,
        headersTimeout: o.headersTimeout,
        bodyTimeout: o.bodyTimeout,
        connect: this.#connector(),
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** undici's own connector; plain sockets get `writeOrNote` so a write refused at once is known. */
  #connector(): buildConnector.connector {
    const o = this.#opts;
    const connect = undici().buildConnector(o.tls === undefined ? { timeout: o.connectTimeout } : { timeout: o.connectTimeout, rejectUnauthorized: true, ...o.tls });
    return (options, callback) => {
      connect(options, (err: Error | null, socket?: Socket | null) => {
        // A failed connect calls back with the error alone. Not TLS: a TLS write is encrypted and
        // flushed later, so its failure says nothing about what reached the pod; such requests
        // keep only the never-started case.
        if (socket != null && !(socket instanceof TLSSocket)) (socket as { write: unknown }).write = writeOrNote;
        (callback as (e: Error | null, s: Socket | null | undefined) => void)(err, socket);
      });
    };
  }

  send(backend: Backend, req: UpstreamRequest, sink: UpstreamSink): void {
    // Set when undici starts writing this request: before that, nothing of it can have left.
    let started = false;
    const bodyless = req.body === null;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(controller) {
        started = true;
        sink.onStart((err) => controller.abort(err), () => controller.pause(), () => controller.resume());
      },
      onResponseStart(_controller, statusCode, headers, statusMessage) {
        // 1xx are handled by the front end (100-continue is answered there); undici surfaces others here.
        if (statusCode < 200) return;
        const flat = flattenHeaders(headers as Record<string, string | string[]>);
        const cl = headers['content-length'];
        sink.onHeaders(statusCode, statusMessage ?? '', flat, typeof cl === 'string' ? Number(cl) : undefined);
      },
      onResponseData(_controller, chunk) {
        sink.onData(chunk);
      },
      onResponseEnd() {
        sink.onEnd();
      },
      onResponseError(_controller, err) {
        sink.onError(err, unsentOnClosedConnection(err, started, bodyless));
      },
    };
    try {
      this.#pool(backend).dispatch(
        {
          path: req.path,
          method: req.method,
          headers: req.headers as string[],
          body: req.body,
          // Never let undici retry or pipeline a request on its own: a retry must be a policy decision.
          idempotent: false,
          blocking: true,
        },
        handler,
      );
    } catch (err) {
      sink.onError(err as Error, false);
    }
  }

  retainOnly(live: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      const host = key.startsWith('[') ? key.slice(1, key.lastIndexOf(']')) : key.slice(0, key.lastIndexOf(':'));
      if (live.has(host)) continue;
      this.#pools.delete(key);
      // undici's close: no new requests, the queued and running ones complete, then the sockets close.
      void pool.close();
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}

/**
 * A reused connection found closed (docs/hardening.md#retries-and-outliers), decided strictly: true
 * only when it is certain that no byte of the request was written to the connection that failed —
 * - undici had not started the request (it was queued for an idle pooled socket that turned out
 *   reset), or
 * - a body-less request (written by undici in one `write`) whose write was refused at once.
 * Not a connection that took the request and then closed without a response byte: the pod may have
 * acted on it (RFC 9110 §9.2.2: a proxy MUST NOT retry a non-idempotent request automatically).
 */
export function unsentOnClosedConnection(err: Error, started: boolean, bodyless: boolean): boolean {
  if (!CONNECTION_GONE.has((err as { code?: string }).code ?? '')) return false;
  return !started || (bodyless && failedAtOnce.has(err));
}

/** Map an upstream failure to the status the client gets (one place, as fastify-reply-from does). */
export function upstreamErrorStatus(err: Error): 502 | 503 | 504 {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'L7G_ERR_UPSTREAM_CONNECT_TIMEOUT':
      // Envoy answers 503 "upstream connect error" when no connection could be made.
      return 503;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'L7G_ERR_UPSTREAM_HEADERS_TIMEOUT':
    case 'L7G_ERR_UPSTREAM_BODY_TIMEOUT':
      return 504;
    default:
      return 502;
  }
}

/** undici hands multi-valued fields over as arrays: one entry per value, in order. */
function flattenHeaders(h: Record<string, string | string[]>): string[] {
  const out: string[] = [];
  for (const name in h) {
    const v = h[name]!;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  return out;
}
