import t from 'tap';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { createFrontEnd, type FrontEndOptions } from '../../../proxy/listen/front-end.js';
import type { FrontEndLimits, FrontRequest, FrontResponse } from '../../../proxy/http1/types.js';
import { deniedResponse } from '../../../proxy/http1/response-writer.js';
import { unmapIPv4 } from '../../../proxy/http1/server-connection.js';

type Handler = (req: FrontRequest, res: FrontResponse) => void;

async function start(
  tt: { teardown(fn: () => unknown): void },
  onRequest: Handler,
  limits?: Partial<FrontEndLimits>,
  host = '127.0.0.1',
): Promise<{ port: number; errors: Error[]; fe: ReturnType<typeof createFrontEnd> }> {
  const errors: Error[] = [];
  const opts: FrontEndOptions = { onRequest, onError: (err) => errors.push(err), ...(limits ? { limits } : {}) };
  const fe = createFrontEnd(opts);
  const { port } = await fe.listen(host, 0);
  tt.teardown(() => fe.close());
  return { port, errors, fe };
}

/** A raw client that records every byte and whether/how the connection ended. */
class RawClient {
  readonly socket: net.Socket;
  data = Buffer.alloc(0);
  closed = false;
  error: (Error & { code?: string }) | undefined;
  readonly #waiters: (() => void)[] = [];

  constructor(port: number, host = '127.0.0.1') {
    this.socket = net.connect(port, host);
    this.socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.#wake();
    });
    this.socket.on('error', (err) => {
      this.error = err;
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  write(s: string | Buffer): void {
    this.socket.write(s);
  }

  /** Resolves when `pred` holds (checked on every data/close event), rejects after `ms`. */
  async until(pred: () => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.text.slice(0, 500))} closed=${this.closed}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  untilResponses(n: number, ms?: number): Promise<void> {
    return this.until(() => countResponses(this.text) >= n, ms);
  }

  untilClosed(ms?: number): Promise<void> {
    return this.until(() => this.closed, ms);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** Counts complete responses with content-length or chunked framing in a byte stream. */
function countResponses(text: string): number {
  return splitResponses(text).length;
}

interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

function splitResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let pos = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) return out;
    const lines = text.slice(pos, headEnd).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    let bodyStart = headEnd + 4;
    if (status === 100) {
      out.push({ status, headers, body: '', raw: text.slice(pos, bodyStart) });
      pos = bodyStart;
      continue;
    }
    let body = '';
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (text.length < bodyStart + n) return out;
      body = text.slice(bodyStart, bodyStart + n);
      bodyStart += n;
    } else if (headers['transfer-encoding'] === 'chunked') {
      let p = bodyStart;
      for (;;) {
        const le = text.indexOf('\r\n', p);
        if (le < 0) return out;
        const size = parseInt(text.slice(p, le), 16);
        if (text.length < le + 2 + size + 2) return out;
        if (size === 0) {
          p = le + 4;
          break;
        }
        body += text.slice(le + 2, le + 2 + size);
        p = le + 2 + size + 2;
      }
      bodyStart = p;
    }
    out.push({ status, headers, body, raw: text.slice(pos, bodyStart) });
    pos = bodyStart;
  }
}

function ok(res: FrontResponse, body: string, headers: string[] = []): void {
  res.writeHead(200, 'OK', ['content-type', 'text/plain', ...headers], { contentLength: Buffer.byteLength(body) });
  res.end(body);
}

async function readAll(req: FrontRequest): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req.body!) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

t.test('keep-alive: two requests on one connection', async (t) => {
  const seen: string[] = [];
  const { port } = await start(t, (req, res) => {
    seen.push(`${req.method} ${req.target} ${req.host} ${req.remoteAddress}`);
    ok(res, `hi ${req.target}`);
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('GET /one HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  c.write('GET /two HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(2);
  const r = splitResponses(c.text);
  t.same(r.map((x) => x.body), ['hi /one', 'hi /two']);
  t.equal(r[0]!.headers['connection'], undefined, 'no connection header on keep-alive');
  t.match(r[0]!.headers['date'] ?? '', /GMT$/);
  t.equal(c.closed, false);
  t.same(seen, ['GET /one h 127.0.0.1', 'GET /two h 127.0.0.1']);
});

t.test('pipelined requests are answered in order and dispatched one at a time', async (t) => {
  const events: string[] = [];
  const { port } = await start(t, (req, res) => {
    events.push(`start ${req.target}`);
    // The first response is the slowest: order must still hold.
    const delay = req.target === '/1' ? 60 : req.target === '/2' ? 10 : 0;
    setTimeout(() => {
      events.push(`end ${req.target}`);
      ok(res, `r${req.target}`);
    }, delay);
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(3);
  t.same(splitResponses(c.text).map((r) => r.body), ['r/1', 'r/2', 'r/3']);
  t.same(events, ['start /1', 'end /1', 'start /2', 'end /2', 'start /3', 'end /3']);
});

t.test('exact 403 denial bytes, connection kept open', async (t) => {
  const { port } = await start(t, (req, res) => {
    if (req.target === '/deny') res.writeRaw(deniedResponse(), true);
    else ok(res, 'fine');
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('GET /deny HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  t.equal(c.data.equals(deniedResponse()), true, 'byte-exact');
  t.match(
    c.text,
    /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\nserver: l7guard\r\n\r\nAccess denied\r\n$/,
  );
  c.write('GET /next HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(2);
  t.equal(splitResponses(c.text)[1]!.body, 'fine');
  t.equal(c.closed, false);
});

t.test('403 to a POST discards the unread body and keeps the connection', async (t) => {
  const { port } = await start(t, (req, res) => {
    if (req.method === 'POST') res.writeRaw(deniedResponse(), true);
    else ok(res, 'after');
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n');
  await c.untilResponses(1);
  c.write('y'.repeat(10000));
  c.write('GET /after HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(2);
  t.equal(splitResponses(c.text)[1]!.body, 'after');
});

t.test('drop(): zero bytes, connection closed', async (t) => {
  const { port } = await start(t, (_req, res) => res.drop());
  const c = new RawClient(port);
  c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  t.equal(c.data.length, 0);
  t.equal(c.closed, true);
});

t.test('request bodies stream with backpressure (1 MiB, content-length and chunked)', async (t) => {
  const payload = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256;
  const digest = createHash('sha256').update(payload).digest('hex');
  const { port } = await start(t, (req, res) => {
    t.equal(req.hasBody, true);
    readAll(req).then(
      (body) => ok(res, `${body.length} ${createHash('sha256').update(body).digest('hex')}`),
      (err: Error) => ok(res, `error ${err.message}`),
    );
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write(`POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: ${payload.length}\r\n\r\n`);
  for (let off = 0; off < payload.length; off += 100_000) c.write(payload.subarray(off, off + 100_000));
  await c.untilResponses(1, 10_000);
  c.write('POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let off = 0; off < payload.length; off += 30_000) {
    const piece = payload.subarray(off, off + 30_000);
    c.write(`${piece.length.toString(16)}\r\n`);
    c.write(piece);
    c.write('\r\n');
  }
  c.write('0\r\n\r\n');
  await c.untilResponses(2, 10_000);
  t.same(
    splitResponses(c.text).map((r) => r.body),
    [`${payload.length} ${digest}`, `${payload.length} ${digest}`],
  );
});

t.test('an unread body pauses the socket instead of buffering it', async (t) => {
  const hwm = 16 * 1024;
  let request: FrontRequest | undefined;
  const { port } = await start(
    t,
    (req, res) => {
      request = req;
      setTimeout(() => {
        // Nothing read for 300 ms while 8 MiB were offered: only the high-water mark is buffered.
        // At most the high-water mark plus one socket read (64 KiB) may sit in the stream.
        t.ok(req.body!.readableLength <= hwm + 64 * 1024, `buffered ${req.body!.readableLength}`);
        readAll(req).then((b) => ok(res, String(b.length)));
      }, 300);
    },
    { bodyHighWaterMark: hwm },
  );
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  const size = 8 * 1024 * 1024;
  c.write(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${size}\r\n\r\n`);
  c.write(Buffer.alloc(size, 1));
  await c.untilResponses(1, 10_000);
  t.ok(request);
  t.equal(splitResponses(c.text)[0]!.body, String(size));
});

t.test('Expect: 100-continue is answered only by sendContinue()', async (t) => {
  const { port } = await start(t, (req, res) => {
    t.equal(req.expectContinue, true);
    setTimeout(() => {
      res.sendContinue();
      res.sendContinue(); // once only
      readAll(req).then((b) => ok(res, `got ${b.toString()}`));
    }, 50);
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(c.data.length, 0, 'nothing sent before the caller decides');
  await c.until(() => c.text.includes('\r\n\r\n'));
  t.equal(c.text, 'HTTP/1.1 100 Continue\r\n\r\n');
  c.write('hello');
  await c.until(() => splitResponses(c.text).length >= 2);
  const r = splitResponses(c.text);
  t.equal(r[1]!.body, 'got hello');
  t.equal(c.text.split('100 Continue').length, 2, 'a single 100');
});

t.test('parse errors: minimal 400 then close, reported with a code', async (t) => {
  let called = 0;
  const { port, errors } = await start(t, () => called++);
  const c = new RawClient(port);
  c.write('GET / HTTP/1.1\r\nHost: h\r\nBad Header : x\r\n\r\n');
  await c.untilClosed();
  t.equal(
    c.text,
    'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request',
  );
  t.equal(called, 0);
  t.equal((errors[0] as Error & { code?: string } | undefined)?.code, 'L7G_ERR_SPACE_BEFORE_COLON');
});

t.test('smuggling attempt (CL + TE) is refused before the handler', async (t) => {
  let called = 0;
  const { port } = await start(t, () => called++);
  const c = new RawClient(port);
  c.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /secret HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  t.match(c.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.equal(countResponses(c.text), 1);
  t.equal(called, 0, 'neither request reached the handler');
});

t.test('HTTP/2 preface gets 505 and close', async (t) => {
  const { port } = await start(t, () => t.fail('no request expected'));
  const c = new RawClient(port);
  c.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  await c.untilClosed();
  t.match(c.text, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n[^]*connection: close\r\n/);
});

t.test('client disconnect mid-body fires onClose and aborts the signal', async (t) => {
  let closed = false;
  let aborted = false;
  let bodyEnded = false;
  const gotHead = new Promise<FrontResponse>((resolve) => {
    void start(t, (req, res) => {
      res.signal.addEventListener('abort', () => (aborted = true));
      res.onClose(() => (closed = true));
      req.body!.on('end', () => (bodyEnded = true));
      req.body!.on('error', () => {});
      req.body!.resume();
      resolve(res);
    }).then(({ port }) => {
      const c = new RawClient(port);
      c.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => c.destroy(), 50);
    });
  });
  const res = await gotHead;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(closed, true, 'onClose fired');
  t.equal(aborted, true, 'signal aborted');
  t.equal(bodyEnded, false, 'truncated body never looks complete');
  t.equal(res.finished, true);
  t.doesNotThrow(() => {
    res.writeHead(200, 'OK', [], { contentLength: 0 });
    res.end();
  }, 'writing to a gone client is a no-op');
});

t.test('ECONNRESET from clients never crashes the server', async (t) => {
  const { port, fe } = await start(t, (req, res) => setTimeout(() => ok(res, 'late'), 50));
  for (let i = 0; i < 5; i++) {
    const c = new RawClient(port);
    c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n');
    await new Promise((r) => setTimeout(r, 10));
    c.socket.resetAndDestroy();
  }
  await new Promise((r) => setTimeout(r, 150));
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('GET /alive HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  t.equal(splitResponses(c.text)[0]!.body, 'late');
  t.equal(fe.connections, 1, 'reset connections were released');
});

t.test('response framing: chunked for 1.1, close-delimited for 1.0, none for HEAD', async (t) => {
  const { port } = await start(t, (req, res) => {
    res.writeHead(200, 'OK', ['x-t', req.target]);
    res.write('ab');
    res.write(Buffer.from('cd'));
    res.end('e');
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  c.write('GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  const r = splitResponses(c.text)[0]!;
  t.equal(r.headers['transfer-encoding'], 'chunked');
  t.equal(r.body, 'abcde');
  t.match(r.raw, /\r\n\r\n2\r\nab\r\n2\r\ncd\r\n1\r\ne\r\n0\r\n\r\n$/);

  const c10 = new RawClient(port);
  c10.write('GET /old HTTP/1.0\r\n\r\n');
  await c10.untilClosed();
  t.match(c10.text, /^HTTP\/1\.1 200 OK\r\nx-t: \/old\r\ndate: [^\r]+\r\nconnection: close\r\n\r\nabcde$/);

  const ch = new RawClient(port);
  t.teardown(() => ch.destroy());
  ch.write('HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n');
  await ch.until(() => ch.text.includes('x-t: /after'));
  await ch.until(() => ch.text.endsWith('0\r\n\r\n'));
  t.match(ch.text, /^HTTP\/1\.1 200 OK\r\nx-t: \/h\r\ndate: [^\r]+\r\n\r\nHTTP\/1\.1 200 OK\r\nx-t: \/after\r\n/, 'HEAD: no body, no framing');
});

t.test('caller framing is respected, not duplicated; Connection: close is announced', async (t) => {
  const { port } = await start(t, (req, res) => {
    if (req.target === '/close') res.closeAfterResponse();
    res.writeHead(201, 'Created', ['Content-Length', '2', 'Transfer-Encoding', 'chunked'], { contentLength: 2 });
    res.end('ok');
  });
  const c = new RawClient(port);
  c.write('GET /keep HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  t.equal(c.text.match(/content-length/gi)?.length, 1);
  t.notMatch(c.text, /transfer-encoding/i);
  c.write('GET /close HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  t.match(splitResponses(c.text)[1]!.raw, /connection: close\r\n/);

  const c2 = new RawClient(port);
  c2.write('GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  await c2.untilClosed();
  t.match(c2.text, /connection: close\r\n/);
});

t.test('a response shorter than its content-length resets the connection', async (t) => {
  const { port, errors } = await start(t, (_req, res) => {
    res.writeHead(200, 'OK', [], { contentLength: 10 });
    res.end('short');
  });
  const c = new RawClient(port);
  c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  t.equal(countResponses(c.text), 0, 'the client never sees a complete response');
  t.equal((errors[0] as Error & { code?: string } | undefined)?.code, 'L7G_ERR_RESPONSE_LENGTH_MISMATCH');
});

t.test('a throwing handler gets a 500 and a closed connection, not a crash', async (t) => {
  const { port, errors } = await start(t, () => {
    throw new Error('boom');
  });
  const c = new RawClient(port);
  c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  t.match(c.text, /^HTTP\/1\.1 500 Internal Server Error\r\n/);
  t.equal((errors[0] as Error & { code?: string } | undefined)?.code, 'L7G_ERR_HANDLER_THREW');
});

t.test('timeouts: 408 for a stalled head, silent close when idle', async (t) => {
  const { port, errors } = await start(t, (_req, res) => ok(res, 'x'), { headersTimeoutMs: 100, keepAliveTimeoutMs: 100 });
  const slow = new RawClient(port);
  slow.write('GET / HTTP/1.1\r\nHost: h\r\n');
  await slow.untilClosed();
  t.match(slow.text, /^HTTP\/1\.1 408 Request Timeout\r\n[^]*connection: close/);
  t.ok(errors.some((e) => (e as Error & { code?: string }).code === 'L7G_ERR_HEADERS_TIMEOUT'));

  const idle = new RawClient(port);
  idle.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await idle.untilResponses(1);
  const before = idle.data.length;
  await idle.untilClosed();
  t.equal(idle.data.length, before, 'no bytes on idle close');
});

t.test('request timeout: each request gets its own deadline from its head; a stalled one gets 504 and close', async (t) => {
  const { port, errors } = await start(t, (req, res) => {
    if (req.target === '/ok') ok(res, 'x'); // /stall is never answered
  }, { requestTimeoutMs: 200, keepAliveTimeoutMs: 5000 });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  // Keep-alive requests 100 ms apart, 400 ms in all: a deadline that outlived its request would cut them.
  for (let i = 1; i <= 4; i++) {
    c.write('GET /ok HTTP/1.1\r\nHost: h\r\n\r\n');
    await c.untilResponses(i);
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(c.closed, false, 'still open after four requests over twice the request timeout');
  const sent = Date.now();
  c.write('GET /stall HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilClosed();
  const took = Date.now() - sent;
  const last = splitResponses(c.text).at(-1);
  t.equal(last?.status, 504);
  t.equal(last?.headers['connection'], 'close');
  t.ok(took >= 190 && took < 2000, `closed ${took} ms after the head (timeout 200 ms)`);
  t.same(errors.map((e) => (e as Error & { code?: string }).code), ['L7G_ERR_REQUEST_TIMEOUT']);
});

t.test('connections that go idle between requests hand their parser on: interleaved heads stay apart', async (t) => {
  const who = (h: readonly string[]): string | undefined => {
    const i = h.findIndex((v, n) => n % 2 === 0 && v.toLowerCase() === 'x-who');
    return i < 0 ? undefined : h[i + 1];
  };
  const { port } = await start(t, (req, res) => ok(res, `${req.target} ${String(who(req.headers))}`));
  const a = new RawClient(port);
  const b = new RawClient(port);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  const bodies = (c: RawClient): string[] => splitResponses(c.text).map((r) => r.body);
  a.write('GET /a1 HTTP/1.1\r\nHost: h\r\nX-Who: a\r\n\r\n');
  await a.untilResponses(1); // a is idle now
  b.write('GET /b1 HTTP/1.1\r\nHost: h\r\nX-Wh'); // b's head is half parsed...
  await new Promise((r) => setTimeout(r, 50));
  a.write('GET /a2 HTTP/1.1\r\nHost: h\r\nX-Who: a2\r\n\r\n'); // ...while a starts its next request
  await a.untilResponses(2);
  b.write('o: b\r\n\r\nGET /b2 HTTP/1.1\r\nHost: h\r\nX-Who: b2\r\n\r\n');
  await b.untilResponses(2);
  a.write('GET /a3 HTTP/1.1\r\nHost: h\r\n\r\n');
  await a.untilResponses(3);
  t.same(bodies(a), ['/a1 a', '/a2 a2', '/a3 undefined']);
  t.same(bodies(b), ['/b1 b', '/b2 b2']);
  t.equal(a.closed || b.closed, false, 'both still open');
});

t.test('close(): in-flight request finishes with connection: close; idle ones close now', async (t) => {
  let release: (() => void) | undefined;
  const { port, fe } = await start(t, (_req, res) => {
    release = () => ok(res, 'done');
  });
  const idle = new RawClient(port);
  const busy = new RawClient(port);
  busy.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await busy.until(() => release !== undefined);
  t.equal(fe.connections, 2);
  const closing = fe.close();
  await idle.untilClosed();
  t.equal(idle.data.length, 0);
  t.equal(busy.closed, false, 'busy connection is not cut');
  release!();
  await busy.untilClosed();
  t.match(busy.text, /connection: close\r\n[^]*done$/);
  await closing;
  t.equal(fe.connections, 0, `connections after close: ${fe.connections}`);
});

t.test('each request carries its connection\'s addresses: the client\'s and ours', async (t) => {
  const seen: [string, number, string, number][] = [];
  const { port } = await start(t, (req, res) => {
    seen.push([req.remoteAddress, req.remotePort, req.localAddress, req.localPort]);
    ok(res, 'x');
  });
  const c = new RawClient(port);
  t.teardown(() => c.destroy());
  await new Promise((r) => c.socket.once('connect', r));
  for (let i = 1; i <= 2; i++) {
    c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    await c.untilResponses(i);
  }
  const expected: [string, number, string, number] = [c.socket.localAddress!, c.socket.localPort!, '127.0.0.1', port];
  t.same(seen, [expected, expected], 'on every request of the connection');
});

t.test('IPv4-mapped IPv6 peers are reported as IPv4', async (t) => {
  t.equal(unmapIPv4('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(unmapIPv4('::ffff:abcd'), '::ffff:abcd');
  t.equal(unmapIPv4('fe80::1'), 'fe80::1');
  let seen: string | undefined;
  let server;
  try {
    server = await start(t, (req, res) => {
      seen = req.remoteAddress;
      ok(res, 'x');
    }, undefined, '::');
  } catch (err) {
    // Only a host without IPv6 may skip; any other failure is a failure.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
    t.comment(`SKIP: no IPv6 on this host (${code}): dual-stack part not run`);
    return;
  }
  const c = new RawClient(server.port, '127.0.0.1');
  t.teardown(() => c.destroy());
  c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await c.untilResponses(1);
  t.equal(seen, '127.0.0.1');
});

