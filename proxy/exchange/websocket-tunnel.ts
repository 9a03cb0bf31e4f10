/**
 * WebSocket upgrades (RFC 6455 §4) through raw sockets: the request has already been judged like
 * any other; here we write it to the chosen backend ourselves and, only if the backend answers
 * `101`, splice the two sockets.
 *
 * Invariants (the bugs of http-proxy's upgrade path, lib/http-proxy/passes/ws-incoming.js,
 * designed out):
 * - Both sockets have an 'error' listener before any pipe; every end goes through one `teardown`.
 * - Client bytes that followed the upgrade head are held until the backend said 101. Were the
 *   backend to refuse (4xx) and keep reading, it would take them as a next, unjudged request.
 * - A refusal is passed to the client and both connections close: after an upgrade attempt the
 *   framing of neither side can be trusted for another request.
 */
import net from 'node:net';
import type { Backend } from '../../policy/model.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import { equalsLower } from '../http1/chars.js';
import { replies, sendLocalReply, type LocalReply } from './local-replies.js';
import { imfDate } from '../http1/response-writer.js';

export interface TunnelOptions {
  /** TCP connect to the backend. 5 s = Envoy's cluster `connect_timeout` (as for plain requests). */
  readonly connectTimeoutMs: number;
  /** Until the backend's response head. 15 s = Envoy's route timeout (as for plain requests). */
  readonly headersTimeoutMs: number;
  /** A tunnel with no bytes either way is closed. 1 h = Envoy HCM's `idle_timeout` default. */
  readonly idleTimeoutMs: number;
  /** The backend's response head. 64 KiB, like our request heads (Envoy's 60 KiB). */
  readonly maxResponseHeadBytes: number;
}

export const DEFAULT_TUNNEL_OPTIONS: TunnelOptions = Object.freeze({
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 15_000,
  idleTimeoutMs: 3_600_000,
  maxResponseHeadBytes: 64 * 1024,
});

/**
 * RFC 6455 §4.1: the opening handshake is a GET with `Upgrade: websocket` (case-insensitive) and
 * `Connection: upgrade` (the parser only reports `req.upgrade` when Connection names it). Any other
 * upgrade (h2c, TLS/1.0, ...) is not performed: the request is served as plain HTTP/1.1.
 */
export function isWebSocketUpgrade(req: FrontRequest): boolean {
  return req.upgrade !== undefined && equalsLower(req.upgrade.trim(), 'websocket') && req.method === 'GET' && !req.hasBody;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Opens the tunnel; `headers` are the judged request's upstream headers (hop-by-hop already
 * removed). `server`: `serve --server-name`, on the replies the tunnel writes itself (the pod's
 * 101 and what follows are relayed as they come).
 */
export function tunnelWebSocket(
  req: FrontRequest,
  res: FrontResponse,
  backend: Backend,
  path: string,
  headers: readonly string[],
  opts: TunnelOptions = DEFAULT_TUNNEL_OPTIONS,
  onError?: (err: Error) => void,
  server?: string,
): void {
  const taken = res.takeOver();
  if (taken === undefined) {
    // Cannot hand the connection over (e.g. a response already started): refuse cleanly.
    if (!res.sent) sendLocalReply(res, replies.badRequest, true, server);
    return;
  }
  const client = taken.socket;
  const held = taken.head;
  const upstream = net.connect({ host: backend.ip, port: backend.port, noDelay: true });
  let done = false;
  let responded = false;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => fail(new Error('upstream connect timeout'), 504), opts.connectTimeoutMs);

  const teardown = (): void => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    client.unpipe();
    upstream.unpipe();
    client.destroy();
    upstream.destroy();
  };
  const fail = (err: Error, status: number): void => {
    onError?.(err);
    if (done) return;
    if (!responded && !client.destroyed) {
      responded = true;
      const r = status === 504 ? replies.gatewayTimeout : status === 503 ? replies.upstreamConnect : replies.badGateway;
      client.end(serialize(r, server), () => teardown());
      upstream.destroy();
      return;
    }
    teardown();
  };

  // Listeners before anything can happen on either socket.
  client.on('error', (err) => fail(err, 502));
  upstream.on('error', (err) => fail(err, (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 503 : 502));
  client.on('close', teardown);
  let refused = false;
  upstream.on('close', () => {
    if (!responded) fail(new Error('upstream closed before responding'), 502);
    else if (refused) client.end(); // the refusal's bytes are queued: FIN after them, teardown on the client's close
    else teardown();
  });

  upstream.once('connect', () => {
    if (done) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => fail(new Error('upstream response timeout'), 504), opts.headersTimeoutMs);
    let head = `${req.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
    head += `connection: upgrade\r\nupgrade: ${req.upgrade!}\r\n\r\n`;
    upstream.write(head, 'latin1');
    readResponseHead();
  });

  function readResponseHead(): void {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf(CRLFCRLF);
      if (end === -1) {
        if (buf.length > opts.maxResponseHeadBytes) fail(new Error('upstream response head too large'), 502);
        return;
      }
      upstream.off('data', onData);
      upstream.pause();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(buf.toString('latin1', 0, Math.min(end, 32)));
      if (status === null) {
        fail(new Error('malformed upstream response to an upgrade'), 502);
        return;
      }
      responded = true;
      if (status[1] !== '101') {
        // Refused: pass the answer on, never the held client bytes, then close both sides.
        refused = true;
        const cl = /\r\ncontent-length: *(\d+)\r\n/i.exec(buf.toString('latin1', 0, end + 2));
        if (cl !== null) {
          // Exactly that response, then FIN: whatever the backend sends next is not the client's.
          const total = end + 4 + Number(cl[1]);
          passRefusal(buf, total);
          return;
        }
        // No length: close-delimited (or chunked); relay until the backend closes, bounded by the idle timer.
        client.write(buf);
        upstream.setTimeout(opts.headersTimeoutMs, teardown);
        upstream.pipe(client, { end: false });
        upstream.resume();
        return;
      }
      client.write(buf);
      if (held.length > 0) upstream.write(held);
      client.setTimeout(opts.idleTimeoutMs, teardown);
      upstream.setTimeout(opts.idleTimeoutMs, teardown);
      // Half-closes travel: a FIN from one side ends the other's write side.
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.resume();
    };
    upstream.on('data', onData);
  }

  /** Relays the first `total` bytes of the refusal (some already in `first`), then ends the client. */
  function passRefusal(first: Buffer, total: number): void {
    let left = total;
    const relay = (chunk: Buffer): void => {
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      client.write(part);
      if (left === 0) {
        upstream.off('data', relay);
        upstream.destroy();
        client.end();
      }
    };
    upstream.setTimeout(opts.headersTimeoutMs, teardown);
    upstream.on('data', relay);
    relay(first);
    if (left > 0) upstream.resume();
  }
}

function serialize(r: LocalReply, server: string | undefined): Buffer {
  const named = server === undefined ? '' : `date: ${imfDate()}\r\nserver: ${server}\r\n`;
  const head = `HTTP/1.1 ${r.status} ${r.reason}\r\ncontent-length: ${r.body.length}\r\ncontent-type: text/plain\r\n${named}connection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), r.body]);
}
