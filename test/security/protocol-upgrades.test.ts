// Other protocols on the HTTP/1.1 port: an h2c upgrade is not performed (the Upgrade and
// HTTP2-Settings fields are hop-by-hop and stripped, and the request is judged and served as
// HTTP/1.1), CONNECT is 501, an HTTP/2 connection preface is 505; none of them reaches a backend
// as anything but a plain, judged HTTP/1.1 request.
import t from 'tap';
import { guarded, request, responses, settle, HOST } from './harness.js';

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

t.test('h2c, CONNECT and the HTTP/2 preface', async (t) => {
  const g = await guarded(t, { port: 18109 });
  const until = (b: Buffer): boolean => responses(b.toString('latin1')).length > 0;

  const up = await g.send(request('GET', '/public/a', H2C), { until });
  t.match(up.text, /^HTTP\/1\.1 200 OK\r\n/, 'an allowed h2c upgrade request is served as HTTP/1.1');
  t.notMatch(up.text, /^HTTP\/1\.1 101/m, 'never 101 Switching Protocols');
  await settle();
  t.equal(g.journal.length, 1);
  const h = g.journal[0]!.headers;
  t.equal(h.upgrade, undefined, 'Upgrade stripped');
  t.equal(h['http2-settings'], undefined, 'HTTP2-Settings stripped');
  t.notMatch(String(h.connection ?? ''), /upgrade/i, 'no Connection: upgrade upstream');

  const denied = await g.send(request('GET', '/private', H2C), { until });
  t.equal(responses(denied.text)[0]?.status, 403, 'a denied h2c upgrade request is a plain 403');

  // Upgrade: h2c without listing it in Connection is just a header: still stripped.
  await g.send(request('GET', '/public/b', 'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'), { until });
  await settle();
  t.equal(g.journal.length, 2);
  t.equal(g.journal[1]!.headers.upgrade, undefined, 'a bare Upgrade header is not forwarded either');
  t.equal(g.journal[1]!.headers['http2-settings'], undefined, 'nor HTTP2-Settings');

  for (const target of [`${HOST}:80`, `${g.ips.deathstar[0]}:18109`]) {
    const c = await g.send(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${request('PUT', '/v1/exhaust-port')}`, { idleMs: 1500 });
    t.equal(responses(c.text)[0]?.status, 501, `CONNECT ${target}: 501`);
    t.equal(c.closed, true);
  }
  const preface = await g.send(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(9)]), { idleMs: 1500 });
  t.equal(responses(preface.text)[0]?.status, 505, 'HTTP/2 prior-knowledge preface: 505');
  t.equal(preface.closed, true);
  const h2 = await g.send(request('GET', '/public/a').replace('HTTP/1.1', 'HTTP/2.0'), { idleMs: 1500 });
  t.equal(responses(h2.text)[0]?.status, 505, 'an HTTP/2.0 request line: 505');
  const h3 = await g.send(request('GET', '/public/a').replace('HTTP/1.1', 'HTTP/1.2'), { idleMs: 1500 });
  t.ok([400, 505].includes(responses(h3.text)[0]?.status ?? 0), 'HTTP/1.2: refused');
  await settle();
  t.equal(g.journal.length, 2, 'none of CONNECT, preface or other versions reached a backend');
});
