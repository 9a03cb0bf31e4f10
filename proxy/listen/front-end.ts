/**
 * The client-facing HTTP/1.1 server: the narrow interface between the data path (request-handler)
 * and the wire. node:http is not used because it cannot produce the byte-exact 403, a zero-byte
 * L3/L4 drop, or our strict parsing; the codec lives in ./http1/ and can be swapped behind this
 * interface.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { HeaderList } from '../../policy/model.js';
import { DEFAULT_PARSER_LIMITS, type ParserLimits } from '../http1/request-parser.js';
import { ServerConnection } from '../http1/server-connection.js';
import { errorResponse } from '../http1/response-writer.js';
import { readProxyHeader, type ProxiedPeer } from './proxy-protocol.js';
import type { BlockList } from 'node:net';

export interface FrontRequest {
  /** Case preserved, as sent. */
  readonly method: string;
  /** Raw request-target (normalise with `normalizeTarget`). */
  readonly target: string;
  readonly versionMinor: 0 | 1;
  /** As received: [name0, value0, ...]. Includes hop-by-hop fields (strip before forwarding). */
  readonly headers: HeaderList;
  readonly host: string | undefined;
  /** Whether the client allows another request after this one. */
  readonly keepAlive: boolean;
  /** The client sent `Expect: 100-continue`; call `res.sendContinue()` before reading the body. */
  readonly expectContinue: boolean;
  /** The Upgrade protocol asked for (with `Connection: upgrade`); performed only through `res.takeOver()`. */
  readonly upgrade: string | undefined;
  /** Remote address, IPv4-mapped IPv6 (`::ffff:a.b.c.d`) unmapped to `a.b.c.d`. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Declared body length (undefined when chunked or absent). */
  readonly contentLength: number | undefined;
  readonly chunked: boolean;
  readonly hasBody: boolean;
  /** The decoded body (no chunk framing), with backpressure to the socket; null when `!hasBody`. */
  readonly body: Readable | null;
  /** `performance.now()` (ms, monotonic) when the request head was parsed: a number, no BigInt per request. */
  readonly receivedAt: number;
}

export interface WriteHeadOptions {
  /** Adds `content-length` unless the headers already carry one. */
  readonly contentLength?: number;
  /** Chunked framing (HTTP/1.1 clients) or close-delimited (HTTP/1.0 clients). */
  readonly chunked?: boolean;
}

export interface FrontResponse {
  /**
   * Sends the status line and headers. The front end adds framing (`content-length`, or
   * `transfer-encoding: chunked` when no length is known and the client speaks HTTP/1.1), `date`
   * when absent, and `connection: close` when it will close after this response. A caller-supplied
   * `transfer-encoding` is replaced by the front end's own framing. No-op once the client has gone.
   */
  writeHead(status: number, reason: string, headers: HeaderList, opts?: WriteHeadOptions): void;
  /** Body bytes (chunk-encoded if needed). Returns false when the socket buffer is full: wait for `onDrain`. */
  write(chunk: Buffer | string): boolean;
  end(chunk?: Buffer | string): void;
  /** Called on every socket drain while this response is in progress. */
  onDrain(cb: () => void): void;
  /** A complete pre-serialised response (e.g. `deniedResponse()`); sent as is. */
  writeRaw(buf: Buffer, endsResponse: true): void;
  /** `HTTP/1.1 100 Continue`, once, only if the client asked for it and no response was sent yet. */
  sendContinue(): void;
  /** L3/L4 drop: reset the connection, zero response bytes. */
  drop(): void;
  /** Close the connection after this response (adds `connection: close` if the head is not sent yet). */
  closeAfterResponse(): void;
  /**
   * Protocol upgrade (WebSocket): take the raw socket and the bytes that followed the head; the
   * front end forgets the connection. Only before any response byte, for a request without a body;
   * undefined otherwise. The caller owns every byte from now on, including the 101.
   */
  takeOver(): { socket: import('node:net').Socket; head: Buffer } | undefined;
  /** Called once if the client connection closes before this response finished. */
  onClose(cb: () => void): void;
  /** Aborted when the client connection closes before this response finished. */
  readonly signal: AbortSignal;
  /** The response head (or a raw response) has been written. */
  readonly sent: boolean;
  /** The response is complete (ended, raw-written, dropped, or the client went away). */
  readonly finished: boolean;
  /**
   * The status of the reply the front end wrote itself in place of this response, set before the
   * onClose callbacks run: `408` / `504` when a client-body or whole-request timeout ended the
   * exchange, a 4xx when the request body turned out malformed (500 if the handler threw).
   * Undefined otherwise — a timeout after the response started only closes, and that response
   * already had its status.
   */
  readonly localStatus: number | undefined;
}

export interface FrontEndLimits extends ParserLimits {
  /**
   * Time from connection start (or from the first byte of a kept-alive request) to a complete
   * request head; then 408 and close. 60 s = nginx `client_header_timeout` (Envoy's
   * `request_headers_timeout` is off by default, which we do not copy: it invites slowloris).
   */
  readonly headersTimeoutMs: number;
  /**
   * Idle time allowed between requests on a kept-alive connection, then a silent close. 60 s:
   * between Node's 5 s (short enough that clients racing a reuse against our close is common, cf.
   * nodejs/undici#3141) and nginx's 75 s / Envoy HCM's 1 h `idle_timeout`; matches our headers timeout.
   */
  readonly keepAliveTimeoutMs: number;
  /** Pipelined bytes held while a response is in flight before the socket is paused. 64 KiB = one socket read. */
  readonly maxPipelinedBytes: number;
  /**
   * Request-body bytes we read and discard after the response ended early (e.g. a 403 on a POST)
   * to keep the connection; past this, closing is cheaper. 1 MiB.
   */
  readonly maxDiscardBytes: number;
  /** highWaterMark of `FrontRequest.body`; above it the socket is paused. 64 KiB. */
  readonly bodyHighWaterMark: number;
  /** After a graceful close (FIN sent), how long we keep reading before destroying. 5 s = nginx `lingering_timeout`. */
  readonly lingerMs: number;
  /**
   * Whole exchange, request head parsed → response ended: past it, `504` if no response byte was
   * sent, else the connection is closed. 1 h = the route timeout Cilium gives its Envoy (agent flag
   * `--http-request-timeout`, 3600 s); Envoy's own 15 s route default would cut long downloads that
   * the per-stage timeouts already police. 0 = off.
   */
  readonly requestTimeoutMs: number;
  /**
   * A declared request body with no byte from the client for this long: `408` (or a close once the
   * response started). Only while we are reading: time the socket spends paused by our backpressure
   * does not count. 60 s = nginx `client_body_timeout`.
   */
  readonly clientBodyTimeoutMs: number;
  /**
   * Our writes are blocked (socket buffer full, the client is not reading) and no 'drain' came for
   * this long: the connection is closed and the upstream exchange aborted. 60 s = nginx `send_timeout`.
   */
  readonly sendTimeoutMs: number;
}

export const DEFAULT_FRONT_END_LIMITS: FrontEndLimits = Object.freeze({
  ...DEFAULT_PARSER_LIMITS,
  headersTimeoutMs: 60_000,
  keepAliveTimeoutMs: 60_000,
  maxPipelinedBytes: 64 * 1024,
  maxDiscardBytes: 1024 * 1024,
  bodyHighWaterMark: 64 * 1024,
  lingerMs: 5_000,
  requestTimeoutMs: 3_600_000,
  clientBodyTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
});

export interface FrontErrorInfo {
  readonly phase: 'parse' | 'timeout' | 'socket' | 'response' | 'handler' | 'server';
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

export interface FrontEndOptions {
  onRequest(req: FrontRequest, res: FrontResponse): void;
  readonly limits?: Partial<FrontEndLimits>;
  /**
   * Peers allowed (and then required) to start with a PROXY protocol v1/v2 header, whose address
   * becomes the connection's source (`--proxy-protocol-from`). Absent: nobody.
   */
  readonly proxyProtocolFrom?: BlockList | undefined;
  /** Open client connections per listener; past it new ones are closed at accept. 0 or absent: unlimited. */
  readonly maxConnections?: number;
  /**
   * A TLS listener (proxy/tls/): gets every accepted socket first and calls `accept` with the
   * decrypted stream once the handshake is done (or destroys the socket). PROXY headers are not
   * read on such a listener.
   */
  readonly wrap?: ((socket: net.Socket, accept: (stream: net.Socket) => void) => void) | undefined;
  /** Client errors (parse errors, timeouts, resets, handler throws). Never thrown. */
  onError?(err: Error, info: FrontErrorInfo): void;
}

export interface FrontEnd {
  listen(host: string, port: number): Promise<{ address: string; port: number }>;
  /** Stop accepting; idle connections close now, busy ones after their current response. */
  close(): Promise<void>;
  /** Close connections that have no request in progress. */
  closeIdle(): void;
  /** Drain deadline: reset every connection still open, busy or not (a pending close() then resolves). */
  closeAll(): void;
  readonly connections: number;
}

export function createFrontEnd(opts: FrontEndOptions): FrontEnd {
  const limits: FrontEndLimits = { ...DEFAULT_FRONT_END_LIMITS, ...opts.limits };
  const live = new Set<ServerConnection>();
  /**
   * Sockets handed over by `takeOver()` (WebSocket tunnels): no longer HTTP, but still ours to
   * drain. close() waits for them too and closeAll() (the drain deadline) destroys them, which
   * tears down the tunnel's upstream side as well (websocket-tunnel.ts closes both on either close).
   */
  const tunnels = new Set<net.Socket>();
  let closing = false;
  /** Set by close(): re-checks "server closed and every connection released". */
  let onReleased: (() => void) | undefined;
  const context = {
    limits,
    onRequest: opts.onRequest,
    onError: opts.onError,
    released(conn: ServerConnection) {
      live.delete(conn);
      onReleased?.();
    },
    detached(socket: net.Socket) {
      if (socket.destroyed) return;
      tunnels.add(socket);
      socket.once('close', () => {
        tunnels.delete(socket);
        onReleased?.();
      });
    },
  };
  // allowHalfOpen: a client that shuts down its write side after the request still gets the response.
  const accept = (socket: net.Socket, peer?: ProxiedPeer): void => {
    const conn = ServerConnection.accept(socket, context, peer);
    if (conn === undefined) return;
    live.add(conn);
    if (closing) conn.shutdown();
  };
  const trusted = opts.proxyProtocolFrom;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (opts.wrap !== undefined) {
      opts.wrap(socket, (stream) => accept(stream));
      return;
    }
    const remote = socket.remoteAddress;
    if (trusted === undefined || remote === undefined || !trusted.check(remote, net.isIPv4(remote) ? 'ipv4' : 'ipv6')) {
      accept(socket);
      return;
    }
    socket.on('error', () => socket.destroy());
    readProxyHeader(socket, limits.headersTimeoutMs).then(
      (peer) => {
        if (socket.destroyed) return;
        socket.removeAllListeners('error');
        accept(socket, peer);
        socket.resume();
      },
      (err: Error) => {
        opts.onError?.(err, { phase: 'parse', remoteAddress: remote, remotePort: socket.remotePort });
        if (!socket.destroyed) socket.end(errorResponse(400));
        socket.setTimeout(limits.lingerMs, () => socket.destroy());
      },
    );
  });
  if (opts.maxConnections !== undefined && opts.maxConnections > 0) server.maxConnections = opts.maxConnections;
  server.on('error', (err) => {
    if (server.listening) opts.onError?.(err, { phase: 'server', remoteAddress: undefined, remotePort: undefined });
  });

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as net.AddressInfo;
          resolve({ address: a.address, port: a.port });
        });
      });
    },
    close() {
      closing = true;
      return new Promise((resolve) => {
        // The server's own close callback can run before the sockets' 'close' events, so
        // completion is "server closed AND every connection released", whichever comes last.
        let serverClosed = !server.listening;
        const check = (): void => {
          if (serverClosed && live.size === 0 && tunnels.size === 0) {
            onReleased = undefined;
            resolve();
          }
        };
        onReleased = check;
        if (!serverClosed) {
          server.close(() => {
            serverClosed = true;
            check();
          });
        }
        for (const c of live) c.shutdown();
        check();
      });
    },
    closeIdle() {
      for (const c of live) c.closeIfIdle();
    },
    closeAll() {
      for (const c of live) c.socket.destroy();
      for (const s of tunnels) s.destroy();
    },
    /** HTTP connections plus open tunnels. */
    get connections() {
      return live.size + tunnels.size;
    },
  };
}
