// WebSocket upgrades through `l7guard serve`: judged like any request (L3/L4 and L7 on method and
// path), tunnelled to the chosen pod only when allowed and only once that pod answered 101.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { guarded, request, responses, settle } from '../../security/harness.js';

const PORT = 18111;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const WS = `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`;

interface Upgraded {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** Deathstar replicas that complete the handshake (unless X-Refuse) and echo "echo:<bytes>" back. */
async function wsBackends(t: Test, hosts: readonly string[]): Promise<{ upgrades: Upgraded[]; plain: string[]; tunnelled: string[] }> {
  const upgrades: Upgraded[] = [];
  const plain: string[] = [];
  const tunnelled: string[] = [];
  // Upgraded sockets leave the http server's books: closeAllConnections() would not end them.
  const sockets = new Set<net.Socket>();
  for (const host of hosts) {
    const srv = http.createServer((req, res) => {
      plain.push(`${req.method} ${req.url}`);
      res.end('plain');
    });
    srv.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
      sock.on('error', () => undefined);
      sockets.add(sock);
      upgrades.push({ url: req.url ?? '', headers: req.headers });
      if (req.headers['x-refuse'] !== undefined) {
        // Refuse, then keep reading as HTTP: anything the proxy passed on would show up in `plain`.
        sock.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\n\r\nrefused');
        srv.emit('connection', sock);
        return;
      }
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const echo = (d: Buffer): void => {
        tunnelled.push(d.toString('latin1'));
        sock.write(`echo:${d.toString('latin1')}`);
      };
      if (head.length > 0) echo(head);
      sock.on('data', echo);
    });
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    t.teardown(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), srv.closeAllConnections(), srv.close(() => r()))));
  }
  return { upgrades, plain, tunnelled };
}

/** Opens a connection, sends `first`, then after the 101 `then`; resolves with everything received. */
function converse(from: string, host: string, port: number, first: string, then: string[]): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress: from });
    let text = '';
    let step = 0;
    const finish = (closed: boolean): void => {
      sock.destroy();
      resolve({ text, closed });
    };
    let timer = setTimeout(() => finish(false), 1500);
    sock.on('error', reject);
    sock.on('close', () => (clearTimeout(timer), finish(true)));
    sock.on('connect', () => sock.write(first));
    sock.on('data', (d) => {
      text += d.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), 600);
      if (text.includes('\r\n\r\n') && step < then.length && (step === 0 ? text.startsWith('HTTP/1.1 101') : true)) sock.write(then[step++]!);
    });
  });
}

t.test('WebSocket upgrades', async (t) => {
  const g = await guarded(t, { port: PORT, noBackends: true });
  const be = await wsBackends(t, g.ips.deathstar);
  const { tiefighter, xwing } = g.ips;

  await t.test('allowed: 101 from the pod, then bytes flow both ways', async (t) => {
    const r = await converse(tiefighter, g.s.host, g.s.port, request('GET', '/ws', WS), ['hello', 'again']);
    t.match(r.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    t.match(r.text, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/, "the pod's handshake reaches the client unchanged");
    t.match(r.text, /echo:hello/);
    t.match(r.text, /echo:again/);
    t.equal(be.upgrades.length, 1);
    t.equal(be.upgrades[0]!.url, '/ws');
    t.equal(be.upgrades[0]!.headers.upgrade, 'websocket');
    t.equal(be.upgrades[0]!.headers['x-forwarded-for'], tiefighter);
    t.same(be.tunnelled, ['hello', 'again']);
  });

  await t.test('bytes sent right behind the upgrade head are held until the 101, then delivered', async (t) => {
    be.tunnelled.length = 0;
    const r = await converse(tiefighter, g.s.host, g.s.port, request('GET', '/ws', WS) + 'early', []);
    t.match(r.text, /^HTTP\/1\.1 101 /);
    t.match(r.text, /echo:early/);
    t.same(be.tunnelled, ['early']);
  });

  await t.test('the path is normalised before it is judged and sent: /x/../ws is /ws', async (t) => {
    const before = be.upgrades.length;
    const r = await converse(tiefighter, g.s.host, g.s.port, request('GET', '/x/../ws', WS), []);
    t.match(r.text, /^HTTP\/1\.1 101 /);
    t.equal(be.upgrades.at(-1)!.url, '/ws');
    t.equal(be.upgrades.length, before + 1);
  });

  await t.test('denied at L7: 403, no tunnel, and the connection goes on as HTTP', async (t) => {
    const before = be.upgrades.length;
    const r = await g.send(request('GET', '/private', WS) + request('GET', '/public/a'), { idleMs: 600 });
    t.same(responses(r.text).map((x) => x.status), [403, 200]);
    t.equal(be.upgrades.length, before, 'the pod never saw an upgrade');
    await settle();
    t.same(be.plain, ['GET /public/a']);
  });

  await t.test('dropped at L3: zero bytes', async (t) => {
    const before = be.upgrades.length;
    const r = await g.send(request('GET', '/ws', WS), { from: xwing });
    t.equal(r.bytes.length, 0);
    t.equal(r.closed, true);
    t.equal(be.upgrades.length, before);
  });

  await t.test('refused by the pod: its answer is passed on, held bytes are never sent, both close', async (t) => {
    be.plain.length = 0;
    const smuggled = `PUT /v1/exhaust-port HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\n\r\n`;
    const r = await g.send(request('GET', '/ws', `${WS}X-Refuse: 1\r\n`) + smuggled, { idleMs: 1500 });
    t.equal(responses(r.text)[0]?.status, 403);
    t.match(responses(r.text)[0]?.body ?? '', /^refused$/, "the pod's own refusal");
    t.equal(r.closed, true);
    await settle(200);
    t.same(be.plain, [], 'the bytes behind the refused upgrade never reached the pod');
  });

  t.equal(g.s.proc.exitCode, null);
});

t.test('WebSocket upgrade with every pod down: 503, no crash', async (t) => {
  const g = await guarded(t, { port: PORT + 1, noBackends: true });
  const r = await g.send(request('GET', '/ws', WS), { idleMs: 1500 });
  t.equal(responses(r.text)[0]?.status, 503);
  t.equal(r.closed, true);
  t.equal(g.s.proc.exitCode, null);
});

t.test('WebSocket upgrade with every pod down and --server-name envoy: the tunnel\'s own 503 says so', async (t) => {
  const g = await guarded(t, { port: PORT + 2, noBackends: true, args: ['--server-name', 'envoy'] });
  const r = await g.send(request('GET', '/ws', WS), { idleMs: 1500 });
  t.equal(
    r.text.replace(/\r\ndate: [^\r]+\r\n/, '\r\ndate: D\r\n'),
    'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 24\r\ncontent-type: text/plain\r\ndate: D\r\nserver: envoy\r\nconnection: close\r\n\r\nupstream connect error\r\n',
  );
  t.equal(r.closed, true);
});
