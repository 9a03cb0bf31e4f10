/**
 * The client-facing HTTP/1.1 server: the narrow interface between the data path (request-handler)
 * and the wire. node:http is not used because it cannot produce the byte-exact 403, a zero-byte
 * L3/L4 drop, or our strict parsing; the codec lives in ./http1/ and can be swapped behind this
 * interface.
 */
import net from 'node:net';
import { DEFAULT_PARSER_LIMITS } from '../http1/request-parser.js';
import { ServerConnection } from '../http1/server-connection.js';
import { errorResponse } from '../http1/response-writer.js';
import type { FrontEndLimits, FrontErrorInfo, FrontRequest, FrontResponse } from '../http1/types.js';
import { readProxyHeader, type ProxiedPeer } from './proxy-protocol.js';
import type { BlockList } from 'node:net';

/** Defaults of the codec's limits (each documented on FrontEndLimits in ../http1/types.ts). */
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
  /** `serve --server-name`: the codec's own replies (400, 408, 431...) say `server: NAME`. Absent: no `server` field. */
  readonly serverName?: string | undefined;
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
    serverName: opts.serverName,
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
      accept(ServerConnection.adoptSharedReads(socket));
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
        if (!socket.destroyed) socket.end(errorResponse(400, opts.serverName));
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
