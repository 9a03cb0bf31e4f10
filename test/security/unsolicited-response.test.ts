// A hostile or broken backend: an extra response nobody asked for, ambiguous response framing, or a
// response sent before the request. Such bytes may never reach a client as the answer to a later
// request (a response queue desync): the backend connection is thrown away instead. Every real
// answer echoes the path it answers, so a desync shows as a body naming another request.
import t, { type Test } from 'tap';
import net from 'node:net';
import { guarded, request, responses, settle } from './harness.js';

const PORT = 18103;

/** Raw backends on `hosts:port`; `onConnect` may speak first; `reply(path)` answers each request head. */
async function rawBackends(
  t: Test,
  hosts: readonly string[],
  port: number,
  reply: (path: string) => string,
  onConnect?: (sock: net.Socket, n: number) => void,
): Promise<string[]> {
  const paths: string[] = [];
  let conns = 0;
  for (const host of hosts) {
    const srv = net.createServer((sock) => {
      sock.on('error', () => undefined);
      onConnect?.(sock, conns++);
      let buf = '';
      sock.on('data', (c) => {
        buf += c.toString('latin1');
        let end;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          const path = buf.slice(0, end).split(' ')[1]!;
          paths.push(path);
          buf = buf.slice(end + 4);
          sock.write(reply(path));
        }
      });
    });
    await new Promise<void>((resolve) => srv.listen(port, host, resolve));
    t.teardown(() => new Promise((r) => srv.close(r)));
  }
  return paths;
}

const ok = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

t.test('an unsolicited second response never reaches the client', async (t) => {
  const g = await guarded(t, { port: PORT, noBackends: true, policy: null });
  const seen = await rawBackends(t, g.ips.deathstar, PORT, (path) => ok(`real-${path}`) + ok('SMUGGLED'));
  // Pipelined on one client connection, then one at a time on fresh ones.
  const r = await g.send(request('GET', '/a') + request('GET', '/b'), { idleMs: 800 });
  t.notMatch(r.text, /SMUGGLED/, 'the extra response is never passed on');
  const got = responses(r.text);
  t.equal(got[0]?.body, 'real-/a', 'the first request gets its own response');
  for (const x of got.slice(1)) t.ok(x.body === 'real-/b' || x.status >= 500, 'the second gets its own response or an error, never another');
  for (const path of ['/c', '/d', '/e']) {
    const again = await g.send(request('GET', path), { idleMs: 600 });
    t.notMatch(again.text, /SMUGGLED/);
    t.equal(responses(again.text)[0]?.body, `real-${path}`, `${path} gets its own response`);
  }
  t.ok(seen.length >= 4);
});

t.test('ambiguous response framing (CL + TE) from the backend is a 502, not passed on', async (t) => {
  const g = await guarded(t, { port: PORT + 1, noBackends: true, policy: null });
  const seen = await rawBackends(t, g.ips.deathstar, PORT + 1, () =>
    'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n' + ok('SMUGGLED'),
  );
  const r = await g.send(request('GET', '/x'), { idleMs: 800 });
  t.notMatch(r.text, /SMUGGLED/);
  t.equal(responses(r.text)[0]?.status, 502);
  t.same(seen, ['/x'], 'the request did reach the backend (the fault is in its answer)');
});

t.test('a response written before the request is never given to a later request', async (t) => {
  const g = await guarded(t, { port: PORT + 2, noBackends: true, policy: null });
  // The first backend connection speaks first. On a fresh connection no client can tell that from
  // an early response to its first request, so /y0 may get it; what must never happen is that the
  // real answer to /y0 is then handed to /y1.
  await rawBackends(t, g.ips.deathstar, PORT + 2, (path) => ok(`real-${path}`), (sock, n) => {
    if (n === 0) sock.write(ok('SMUGGLED'));
  });
  await g.send(request('GET', '/y0'), { idleMs: 600 });
  for (let i = 1; i < 4; i++) {
    const r = await g.send(request('GET', `/y${i}`), { idleMs: 600 });
    t.equal(responses(r.text)[0]?.body, `real-/y${i}`, `/y${i} gets its own response`);
  }
  await settle();
  t.equal(g.s.proc.exitCode, null);
});
