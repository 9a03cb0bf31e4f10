// The pre-built 403 (writeRaw) while the front end drains: the connection closes after it, so its
// bytes say `connection: close` (appended after `server`, where Envoy puts it). Outside a drain the
// exact 4-header 403 goes out untouched and the connection stays open.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { createFrontEnd } from '../../../proxy/listen/front-end.js';
import { deniedResponse } from '../../../proxy/http1/response-writer.js';
import { withConnectionClose } from '../../../proxy/http1/server-response.js';

const DENIED = /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\nserver: l7guard\r\n\r\nAccess denied\r\n$/;
const DENIED_CLOSING = /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\nserver: l7guard\r\nconnection: close\r\n\r\nAccess denied\r\n$/;

/** A front end whose handler answers the 403 later (as after a retry's connect failure), when told. */
async function deferredDenial(t: { teardown(fn: () => unknown): void }) {
  const pending: (() => void)[] = [];
  const fe = createFrontEnd({ onRequest: (_req, res) => pending.push(() => res.writeRaw(deniedResponse(), true)) });
  const { port } = await fe.listen('127.0.0.1', 0);
  t.teardown(() => fe.close());
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  let text = '';
  let closed = false;
  sock.setEncoding('latin1').on('data', (d: string) => (text += d));
  sock.on('close', () => (closed = true));
  await once(sock, 'connect');
  sock.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
  while (pending.length === 0) await new Promise((r) => setTimeout(r, 5));
  return { fe, sock, answer: () => pending.shift()!(), text: () => text, closed: () => closed };
}

const settle = () => new Promise((r) => setTimeout(r, 200));

t.test('outside a drain: the exact 403, connection kept', async (t) => {
  const c = await deferredDenial(t);
  c.answer();
  await settle();
  t.match(c.text(), DENIED);
  t.equal(c.closed(), false, 'still open');
  c.sock.destroy();
});

t.test('during a drain: the same 403 plus connection: close, then the close', async (t) => {
  const c = await deferredDenial(t);
  const closing = c.fe.close();
  c.answer();
  await closing;
  await settle();
  t.match(c.text(), DENIED_CLOSING);
  t.equal(c.closed(), true, 'and the connection was closed');
});

t.test('withConnectionClose leaves a response that already has a Connection field alone', async (t) => {
  const raw = Buffer.from('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  t.equal(withConnectionClose(raw), raw);
  const bare = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
  t.equal(withConnectionClose(bare).toString(), 'HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n');
});

/**
 * A front end whose handler writes the head, then the body in the given pieces (each after `gapMs`,
 * 0: in the same tick), and counts the server socket's writes.
 */
async function writesOf(t: { teardown(fn: () => unknown): void }, method: string, pieces: (Buffer | string)[], gapMs: number, opts: { contentLength?: number; status?: number } = {}) {
  let writes = 0;
  let headSeenAlone = false;
  let text = '';
  const fe = createFrontEnd({
    onRequest: (_req, res) => {
      res.writeHead(opts.status ?? 200, 'OK', ['x-test', 'yes'], opts.contentLength === undefined ? {} : { contentLength: opts.contentLength });
      const rest = [...pieces];
      const next = (): void => {
        const p = rest.shift();
        if (p === undefined) {
          res.end();
          return;
        }
        res.write(p);
        if (gapMs === 0) next();
        else setTimeout(next, gapMs);
      };
      if (gapMs === 0) next();
      else {
        setTimeout(() => {
          // The head went alone, before any body byte was written.
          headSeenAlone = /\r\n\r\n$/.test(text);
          next();
        }, gapMs);
      }
    },
  });
  const { port } = await fe.listen('127.0.0.1', 0);
  t.teardown(() => fe.close());
  const write = net.Socket.prototype.write;
  const sock = net.connect(port, '127.0.0.1');
  const local = new Promise<number>((r) => sock.once('connect', () => r(sock.localPort!)));
  const clientPort = await local;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === clientPort) writes++;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  t.teardown(() => {
    net.Socket.prototype.write = write;
  });
  sock.setEncoding('latin1').on('data', (d: string) => (text += d));
  sock.write(`${method} /x HTTP/1.1\r\nHost: a\r\n\r\n`);
  const expectEnd = (s: string): boolean => /\r\n0\r\n\r\n$/.test(s) || (/content-length: (\d+)/.test(s) && s.length - s.indexOf('\r\n\r\n') - 4 >= Number(/content-length: (\d+)/.exec(s)![1]));
  for (let i = 0; i < 200 && !(text.includes('\r\n\r\n') && (method === 'HEAD' || expectEnd(text))); i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  net.Socket.prototype.write = write;
  sock.destroy();
  return { writes, text, headSeenAlone };
}

t.test('a small response leaves in one write: head and body together', async (t) => {
  const r = await writesOf(t, 'GET', [Buffer.from('hello')], 0, { contentLength: 5 });
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\nx-test: yes\r\ncontent-length: 5\r\ndate: .*\r\n\r\nhello$/);
  t.equal(r.writes, 1, 'one write');
  const chunked = await writesOf(t, 'GET', [Buffer.from('hello'), Buffer.from('world')], 0);
  t.match(chunked.text, /^HTTP\/1\.1 200 OK\r\nx-test: yes\r\ntransfer-encoding: chunked\r\ndate: .*\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n$/);
  t.equal(chunked.writes, 3, 'chunked: head with the first chunk, the second chunk, the last-chunk');
});

t.test('a big body goes by reference behind the head, byte-exact', async (t) => {
  const big = Buffer.alloc(100_000, 0x61);
  const r = await writesOf(t, 'GET', [big], 0, { contentLength: big.length });
  t.ok(r.text.endsWith(big.toString('latin1')) && r.text.indexOf('\r\n\r\n') + 4 + big.length === r.text.length, 'the body follows the head exactly');
  const c = await writesOf(t, 'GET', [big], 0);
  t.match(c.text, /\r\n\r\n186a0\r\na+\r\n0\r\n\r\n$/, 'chunked: size line, the body, CRLF, last-chunk');
});

t.test('a head whose body comes later is not held back', async (t) => {
  const r = await writesOf(t, 'GET', [Buffer.from('late')], 150, { contentLength: 4 });
  t.ok(r.headSeenAlone, 'the client had the head before any body byte was written');
  t.match(r.text, /\r\n\r\nlate$/);
  const head = await writesOf(t, 'HEAD', [], 0, { contentLength: 42 });
  t.match(head.text, /^HTTP\/1\.1 200 OK\r\nx-test: yes\r\ncontent-length: 42\r\ndate: .*\r\n\r\n$/, 'HEAD: the head alone, at end()');
  const noContent = await writesOf(t, 'GET', [], 0, { status: 204 });
  t.match(noContent.text, /^HTTP\/1\.1 204 OK\r\nx-test: yes\r\ndate: .*\r\n\r\n$/, '204: the head alone');
});
