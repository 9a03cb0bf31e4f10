/**
 * The contract between the HTTP/1.1 codec (this folder) and its users: the request and response a
 * handler sees, the codec's limits and its error report. The codec implements these
 * (server-connection.ts, server-response.ts); proxy/listen/front-end.ts wires the codec to sockets
 * and the data path (proxy/exchange/) consumes them. Types only, so anything can import this file
 * without importing the codec.
 */
import type { Readable } from 'node:stream';
import type { HeaderList } from '../../policy/model.js';
import type { ParserLimits } from './request-parser.js';

export interface FrontRequest {
  /** Case preserved, as sent. */
  readonly method: string;
  /** Raw request-target (normalise with `normalizeTarget`). */
  readonly target: string;
  readonly versionMinor: 0 | 1;
  /** As received: [name0, value0, ...]. Includes hop-by-hop fields (strip before forwarding). */
  readonly headers: HeaderList;
  /** The field lines as received, each with its CRLF, when the head arrived in one read (request-parser.ts RequestHead). */
  readonly rawFields?: string | undefined;
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

export interface FrontErrorInfo {
  readonly phase: 'parse' | 'timeout' | 'socket' | 'response' | 'handler' | 'server';
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}
