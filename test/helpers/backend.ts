import http from 'node:http';

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  readonly from: string;
}

export interface RecordingBackend {
  readonly name: string;
  readonly seen: Recorded[];
  close(): Promise<void>;
}

/**
 * A backend that records every request that reaches it, so tests can prove what a denied request
 * never did. Answers 200 with "<name> <method> <url>" unless `respond` says otherwise.
 */
export async function recordingBackend(
  name: string,
  host: string,
  port: number,
  respond?: (r: Recorded, res: http.ServerResponse) => void,
  /** Shared, in arrival order across several backends. */
  journal?: Recorded[],
): Promise<RecordingBackend> {
  const seen: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        from: req.socket.remoteAddress ?? '',
      };
      seen.push(r);
      journal?.push(r);
      if (respond !== undefined) return respond(r, res);
      const body = `${name} ${r.method} ${r.url}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    name,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
