// The per-connection state machine (proxy/http1/server-connection.ts) on sockets that read into
// the shared buffer (shared-reads.ts) and on sockets that still read through 'data' (TLS, PROXY
// protocol): a client's FIN reaches the connection in every state it can arrive in, and an idle
// connection keeps no read it has consumed.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createFrontEnd, DEFAULT_FRONT_END_LIMITS } from '../../../proxy/listen/front-end.js';
import { RequestParser } from '../../../proxy/http1/request-parser.js';
import { ServerConnection } from '../../../proxy/http1/server-connection.js';
import type { FrontRequest, FrontResponse } from '../../../proxy/http1/types.js';

async function frontEnd(t: { teardown(fn: () => unknown): void }, onRequest: (req: FrontRequest, res: FrontResponse) => void) {
  const fe = createFrontEnd({ onRequest });
  const { port } = await fe.listen('127.0.0.1', 0);
  t.teardown(() => fe.close());
  return port;
}

function talk(port: number, wire: string, endAfter: boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    sock.setEncoding('latin1').on('data', (d: string) => (text += d));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve({ text, closed: true }));
    sock.on('connect', () => {
      sock.write(wire);
      if (endAfter) sock.end();
    });
    setTimeout(() => resolve({ text, closed: false }), 1500).unref();
  });
}

t.test('request + FIN in one go, answered later: the response arrives, then the close', async (t) => {
  const port = await frontEnd(t, (_req, res) => setTimeout(() => {
    res.writeHead(200, 'OK', [], { contentLength: 2 });
    res.end('ok');
  }, 50));
  const r = await talk(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', true);
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
  t.equal(r.closed, true);
});

t.test('two pipelined requests + FIN: both answered in order, then the close', async (t) => {
  let n = 0;
  const port = await frontEnd(t, (_req, res) => {
    const i = n++;
    setTimeout(() => {
      res.writeHead(200, 'OK', [], { contentLength: 1 });
      res.end(String(i));
    }, 30);
  });
  const r = await talk(port, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n', true);
  t.match(r.text, /\r\n\r\n0HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n1$/);
  t.equal(r.closed, true);
});

t.test('FIN in the middle of a body: the body is aborted and the connection closes', async (t) => {
  let aborted = false;
  const port = await frontEnd(t, (req) => {
    req.body!.on('error', () => (aborted = true)).on('close', () => (aborted = true)).resume();
  });
  const r = await talk(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', true);
  t.equal(r.closed, true);
  t.equal(aborted, true);
});

t.test('an idle keep-alive connection that gets a FIN is closed', async (t) => {
  const port = await frontEnd(t, (_req, res) => {
    res.writeHead(204, 'No Content', []);
    res.end();
  });
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  sock.on('error', () => undefined);
  await once(sock, 'connect');
  sock.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  await once(sock, 'data');
  sock.end();
  const closed = await Promise.race([once(sock, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 1500))]);
  t.equal(closed, true);
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
};

t.test('unit: a fully consumed chunk is not kept by the parser', async (t) => {
  const parser = new RequestParser();
  let ref: WeakRef<ArrayBufferLike>;
  (() => {
    const body = 60_000;
    const head = `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${body}\r\n\r\n`;
    const chunk = Buffer.alloc(head.length + body, 0x61); // its own ArrayBuffer (bigger than the pool)
    chunk.write(head, 'latin1');
    ref = new WeakRef(chunk.buffer);
    parser.push(chunk);
    for (let ev = parser.next(); ev !== null; ev = parser.next()) if (ev.kind === 'end') break;
    t.equal(parser.buffered, 0, 'everything consumed');
  })();
  await settle();
  t.equal(ref!.deref(), undefined, 'the chunk can be collected once the parser consumed it ');
});

t.test('end to end: an idle connection read through \'data\' (TLS / PROXY-protocol path) keeps none of its reads', async (t) => {
  const refs: WeakRef<ArrayBufferLike>[] = [];
  let answered!: () => void;
  const done = new Promise<void>((r) => (answered = r));
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    // Not adopted (as front-end.ts does for TLS and PROXY-protocol sockets): the connection reads 'data'.
    socket.on('data', (c: Buffer) => refs.push(new WeakRef(c.buffer)));
    ServerConnection.accept(socket, {
      limits: DEFAULT_FRONT_END_LIMITS,
      onRequest(req, res) {
        const end = (): void => {
          res.writeHead(200, 'OK', [], { contentLength: 2 });
          res.end('ok');
          answered();
        };
        if (req.body === null) end();
        else req.body.on('end', end).resume();
      },
      released() {},
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const sock = net.connect(port, '127.0.0.1');
  sock.on('data', () => undefined);
  await once(sock, 'connect');
  const body = Buffer.alloc(60_000, 0x62);
  sock.write(Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
  await done;
  await new Promise((r) => setTimeout(r, 100));
  await settle();
  const kept = refs.filter((r) => r.deref() !== undefined).map((r) => r.deref()!.byteLength);
  t.same(kept, [], `no read is kept while the connection idles (kept: ${kept.join(', ')} bytes)`);
  sock.destroy();
});
