import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { Backend, HeaderList } from '../policy/model.js';

/**
 * Upstream client: one undici Pool per backend address, kept across policy revisions so that a
 * reload never drops warm keep-alive connections. This is the narrow interface the bench issue may
 * swap for another client; nothing outside this file touches undici.
 */

export interface UpstreamOptions {
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
  readonly headers: HeaderList;
  readonly body: Readable | null;
}

/** What the caller does with the upstream response; mirrors undici's v7 handler, minus the controller. */
export interface UpstreamSink {
  onStart(abort: (err: Error) => void, pause: () => void, resume: () => void): void;
  onHeaders(status: number, reason: string, headers: Record<string, string | string[]>): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
}

export class Upstream {
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
      pool = new Pool(`${o.tls === undefined ? 'http' : 'https'}://${key}`, {
        connections: o.connections,
        pipelining: 1,
        keepAliveTimeout: o.keepAliveTimeout,
        headersTimeout: o.headersTimeout,
        bodyTimeout: o.bodyTimeout,
        connect: o.tls === undefined ? { timeout: o.connectTimeout } : { timeout: o.connectTimeout, rejectUnauthorized: true, ...o.tls },
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  send(backend: Backend, req: UpstreamRequest, sink: UpstreamSink): void {
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(controller) {
        sink.onStart((err) => controller.abort(err), () => controller.pause(), () => controller.resume());
      },
      onResponseStart(_controller, statusCode, headers, statusMessage) {
        // 1xx are handled by the front end (100-continue is answered there); undici surfaces others here.
        if (statusCode < 200) return;
        sink.onHeaders(statusCode, statusMessage ?? '', headers as Record<string, string | string[]>);
      },
      onResponseData(_controller, chunk) {
        sink.onData(chunk);
      },
      onResponseEnd() {
        sink.onEnd();
      },
      onResponseError(_controller, err) {
        sink.onError(err);
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
      sink.onError(err as Error);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}

/** Map an upstream failure to the status the client gets (one place, as fastify-reply-from does). */
export function upstreamErrorStatus(err: Error): 502 | 503 | 504 {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'UND_ERR_CONNECT_TIMEOUT':
      // Envoy answers 503 "upstream connect error" when no connection could be made.
      return 503;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 504;
    default:
      return 502;
  }
}
