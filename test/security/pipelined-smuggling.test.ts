// Smuggling through what the proxy does NOT forward: the body of a denied request, pipelined
// requests behind a denied one, a malformed request behind an allowed one, and a dropped peer.
// Whatever the client writes after a denial must be read as what the framing says it is, never
// as a request of its own and never as bytes on a backend connection.
import t from 'tap';
import { guarded, request, responses, settle, HOST } from './harness.js';

const FORBIDDEN = `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`;
const ALLOWED_INNER = `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 8\r\n\r\nSMUGGLED`;
const withBody = (method: string, path: string, body: string): string =>
  request(method, path, `Content-Length: ${Buffer.byteLength(body)}\r\n`) + body;
const chunked = (method: string, path: string, body: string): string =>
  request(method, path, 'Transfer-Encoding: chunked\r\n') + `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;

t.test('denied and pipelined requests cannot smuggle anything to the backend', async (t) => {
  const g = await guarded(t, { port: 18102 });
  const urls = () => g.journal.map((r) => `${r.method} ${r.url} ${r.body.toString()}`);

  await t.test('a 403 whose content-length body is itself a request', async (t) => {
    const r = await g.send(withBody('PUT', '/v1/exhaust-port', ALLOWED_INNER + FORBIDDEN));
    t.same(responses(r.text).map((x) => x.status), [403], 'one 403, the body was not parsed as requests');
    t.equal(r.closed, false, 'the connection stays open (the body was discarded)');
  });

  await t.test('a 403 whose chunked body is itself a request', async (t) => {
    const r = await g.send(chunked('PUT', '/v1/exhaust-port', ALLOWED_INNER + FORBIDDEN));
    t.same(responses(r.text).map((x) => x.status), [403]);
  });

  await t.test('a 403 with Expect: 100-continue gets no 100 and the body is still discarded', async (t) => {
    const head = request('PUT', '/v1/exhaust-port', `Content-Length: ${ALLOWED_INNER.length}\r\nExpect: 100-continue\r\n`);
    const r = await g.send(head + ALLOWED_INNER);
    t.notMatch(r.text, /HTTP\/1\.1 100/, 'no interim 100 for a denied request');
    t.same(responses(r.text).map((x) => x.status), [403]);
  });

  await t.test('a 403 GET with a body carrying a request', async (t) => {
    const r = await g.send(withBody('GET', '/private', ALLOWED_INNER));
    t.same(responses(r.text).map((x) => x.status), [403]);
  });

  await settle();
  t.same(urls(), [], 'none of the bodies reached a backend');

  await t.test('pipelined allowed / denied mix: answered in order, only the allowed ones forwarded', async (t) => {
    const batch = [
      withBody('POST', '/v1/request-landing', 'one'),
      withBody('PUT', '/v1/exhaust-port', ALLOWED_INNER),
      request('GET', '/public/a'),
      chunked('POST', '/v1/exhaust-port', FORBIDDEN),
      request('DELETE', '/public/a'),
      withBody('POST', '/v1/request-landing', 'two'),
    ].join('');
    const r = await g.send(batch, { idleMs: 800 });
    t.same(responses(r.text).map((x) => x.status), [200, 403, 200, 403, 403, 200]);
    await settle();
    t.same(urls(), ['POST /v1/request-landing one', 'GET /public/a ', 'POST /v1/request-landing two']);
  });
  g.journal.length = 0;

  await t.test('a malformed request behind an allowed one: the allowed one is served, nothing after the error', async (t) => {
    const batch = request('GET', '/public/b') + land400 + withBody('POST', '/v1/request-landing', 'after');
    const r = await g.send(batch, { idleMs: 1500 });
    t.same(responses(r.text).map((x) => x.status), [200, 400]);
    t.equal(r.closed, true);
    await settle();
    t.same(urls(), ['GET /public/b ']);
  });
  g.journal.length = 0;

  await t.test('a dropped peer gets zero bytes for a whole pipeline, and nothing is forwarded', async (t) => {
    const r = await g.send(withBody('POST', '/v1/request-landing', 'x') + request('GET', '/public/c'), { from: g.ips.xwing });
    t.equal(r.bytes.length, 0);
    t.equal(r.closed, true);
    await settle();
    t.same(urls(), []);
  });

  await t.test('a denied request sent byte by byte is still one 403 and nothing else', async (t) => {
    const bytes = withBody('PUT', '/v1/exhaust-port', ALLOWED_INNER);
    const r = await new Promise<string>((resolve, reject) => {
      import('node:net').then(({ default: net }) => {
        const sock = net.connect({ host: g.s.host, port: g.s.port, localAddress: g.ips.tiefighter });
        let got = '';
        let i = 0;
        sock.on('error', reject);
        sock.on('data', (c) => (got += c.toString('latin1')));
        const tick = (): void => {
          if (i < bytes.length) {
            sock.write(bytes[i++]!);
            setImmediate(tick);
          } else setTimeout(() => (sock.destroy(), resolve(got)), 300);
        };
        sock.on('connect', tick);
      }, reject);
    });
    t.same(responses(r).map((x) => x.status), [403]);
    await settle();
    t.same(urls(), []);
  });
});

const land400 = `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`;
