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
