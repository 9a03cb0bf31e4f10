import net from 'node:net';
import { randomInt } from 'node:crypto';

/** A random 127.A.B.0/24 block per test file, so parallel test files never share an address. */
export function loopbackBlock(): (host: number) => string {
  const a = randomInt(16, 250);
  const b = randomInt(1, 254);
  return (host: number) => `127.${a}.${b}.${host}`;
}

export interface RawResult {
  /** Every byte the server sent before closing (or before the idle wait ended). */
  readonly bytes: Buffer;
  /** True when the server closed the connection. */
  readonly closed: boolean;
  readonly text: string;
}

/**
 * Sends raw bytes from a chosen source address and collects the answer. Resolves when the server
 * closes, or `idleMs` after the last byte (keep-alive connections stay open).
 */
export function rawExchange(opts: {
  from: string;
  to: string;
  port: number;
  data: string | Buffer;
  idleMs?: number;
  until?: (bytes: Buffer) => boolean;
}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const sock = net.connect({ host: opts.to, port: opts.port, localAddress: opts.from });
    const finish = (closed: boolean) => {
      if (timer !== undefined) clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      sock.destroy();
      resolve({ bytes, closed, text: bytes.toString('latin1') });
    };
    const arm = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => finish(false), opts.idleMs ?? 1500);
    };
    sock.on('connect', () => {
      sock.write(opts.data);
      arm();
    });
    sock.on('data', (c) => {
      chunks.push(c);
      if (opts.until?.(Buffer.concat(chunks))) finish(false);
      else arm();
    });
    sock.on('close', () => finish(true));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') return; // a drop may reset: 'close' follows
      if (timer !== undefined) clearTimeout(timer);
      reject(err);
    });
  });
}

/** Ends when a full HTTP/1.1 response with Content-Length has arrived. */
export function hasCompleteResponse(b: Buffer): boolean {
  const s = b.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const m = /\r\ncontent-length: *(\d+)/i.exec(s.slice(0, end + 2));
  if (m === null) return false;
  return s.length >= end + 4 + Number(m[1]);
}

/**
 * Whether this host can bind `ip` (port 0). Linux routes all of 127.0.0.0/8 to `lo`; elsewhere a
 * 127.0.0.x address beyond .1 needs an alias first (macOS: `ifconfig lo0 alias 127.0.0.10`).
 */
export function canBind(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(0, ip, () => server.close(() => resolve(true)));
  });
}
