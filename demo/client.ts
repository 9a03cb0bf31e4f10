/**
 * The ships' `curl`: one HTTP/1.1 request over a raw socket bound to the ship's pod IP, so the proxy
 * sees the pod as the source address. Raw bytes (not node:http) because the demo must tell apart
 * "no HTTP bytes at all" (a drop) from any response, and compare response bodies byte for byte.
 */
import net from 'node:net';

export interface ShipRequest {
  /** Source address: the ship's pod IP. */
  readonly localAddress: string;
  /** Where the name resolves to (the Service clusterIP, where the proxy listens). */
  readonly ip: string;
  readonly port: number;
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly timeoutMs?: number | undefined;
}

export type ShipResult =
  | {
      readonly kind: 'response';
      readonly status: number;
      /** [name, value] as received. */
      readonly headers: readonly (readonly [string, string])[];
      readonly body: Buffer;
      readonly bytes: number;
    }
  /** The connection was accepted, then closed (FIN or RST) before a single byte came back. */
  | { readonly kind: 'no-bytes'; readonly reset: boolean; readonly bytes: 0 }
  /** Bytes came back, but not a complete HTTP response. */
  | { readonly kind: 'garbage'; readonly raw: Buffer; readonly bytes: number; readonly reason: string }
  | { readonly kind: 'refused'; readonly bytes: 0; readonly error: string }
  | { readonly kind: 'timeout'; readonly bytes: number };

/** The request bytes, shaped like `curl -s -X<METHOD> <url>` sends them (no body, no Content-Length). */
export function requestBytes(method: string, path: string, host: string): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n`;
}

interface Parsed {
  readonly status: number;
  readonly headers: (readonly [string, string])[];
  readonly body: Buffer;
}

/** Parses `buf` as one response; undefined = incomplete (need more bytes, or the close). */
function parseResponse(buf: Buffer, closed: boolean): Parsed | undefined | string {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return closed ? 'connection closed inside the response head' : undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (m === null) return `bad status line ${JSON.stringify(lines[0])}`;
  const headers: (readonly [string, string])[] = [];
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0) return `bad header line ${JSON.stringify(line)}`;
    headers.push([line.slice(0, c), line.slice(c + 1).trim()]);
  }
  const status = Number(m[1]);
  const rest = buf.subarray(end + 4);
  const get = (name: string) => headers.find(([k]) => k.toLowerCase() === name)?.[1];
  const te = get('transfer-encoding');
  const cl = get('content-length');
  if (te !== undefined && te.toLowerCase().includes('chunked')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = rest.indexOf('\r\n', at);
      if (eol === -1) return closed ? 'connection closed inside a chunk' : undefined;
      const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
      if (Number.isNaN(size)) return 'bad chunk size';
      if (size === 0) {
        // Trailers are not expected; the final CRLF ends the message.
        if (rest.indexOf('\r\n', eol + 2) === -1) return closed ? 'connection closed before the last chunk ended' : undefined;
        return { status, headers, body: Buffer.concat(chunks) };
      }
      if (rest.length < eol + 2 + size + 2) return closed ? 'connection closed inside a chunk' : undefined;
      chunks.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  if (cl !== undefined) {
    const n = Number(cl);
    if (rest.length < n) return closed ? `connection closed after ${rest.length} of ${n} body bytes` : undefined;
    return { status, headers, body: rest.subarray(0, n) };
  }
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, headers, body: Buffer.alloc(0) };
  return closed ? { status, headers, body: rest } : undefined;
}

/** Sends one request and settles once a full response, a close, or the timeout is seen. Never rejects. */
export function sendShipRequest(req: ShipRequest): Promise<ShipResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const sock = net.connect({ host: req.ip, port: req.port, localAddress: req.localAddress });
    const done = (r: ShipResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: 'timeout', bytes }), req.timeoutMs ?? 5000);
    const judge = (closed: boolean, reset: boolean) => {
      if (bytes === 0) {
        if (closed) done({ kind: 'no-bytes', reset, bytes: 0 });
        return;
      }
      const raw = Buffer.concat(chunks);
      const p = parseResponse(raw, closed);
      if (p === undefined) return;
      if (typeof p === 'string') done({ kind: 'garbage', raw, bytes, reason: p });
      else done({ kind: 'response', status: p.status, headers: p.headers, body: p.body, bytes });
    };
    sock.on('connect', () => sock.write(requestBytes(req.method, req.path, req.host)));
    sock.on('data', (b: Buffer) => {
      chunks.push(b);
      bytes += b.length;
      judge(false, false);
    });
    sock.on('end', () => judge(true, false));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done({ kind: 'refused', bytes: 0, error: err.message });
      else judge(true, true);
    });
    sock.on('close', () => judge(true, true));
  });
}

/** What `curl -s` would have printed and exited with, for the demo's transcript. */
export function curlView(r: ShipResult): { stdout: string; exitCode: number } {
  switch (r.kind) {
    case 'response':
      return { stdout: r.body.toString('utf8'), exitCode: 0 };
    case 'no-bytes':
      // curl: (52) Empty reply from server / (56) Recv failure: Connection reset by peer
      return { stdout: '', exitCode: r.reset ? 56 : 52 };
    case 'garbage':
      return { stdout: '', exitCode: r.reason.startsWith('bad') ? 8 : 18 };
    case 'refused':
      return { stdout: '', exitCode: 7 };
    case 'timeout':
      return { stdout: '', exitCode: 28 };
  }
}
