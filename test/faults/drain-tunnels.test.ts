// WebSocket tunnels handed over by takeOver() stay tracked by the front end: a SIGTERM drain lets an
// open tunnel carry on (it is a request in flight) until --drain-timeout, then closes both of its
// sockets and exits 0; a tunnel that ends on its own lets the drain finish at once.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { loopbackBlock } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { adminRequest } from '../../proxy/admin/client.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18501;
const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: deathstar.default.svc.cluster.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Pods that accept the upgrade and then echo every byte; `open` counts their live tunnel sockets. */
async function echoPods(t: { teardown(fn: () => unknown): void }) {
  const state = { open: 0, accepted: 0 };
  const servers = await Promise.all(ips.deathstar.map(async (host) => {
    const srv = net.createServer((sock) => {
      sock.on('error', () => undefined);
      let head = '';
      const onData = (d: Buffer): void => {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData);
        state.open++;
        state.accepted++;
        sock.once('close', () => state.open--);
        sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        const rest = head.slice(end + 4);
        if (rest.length > 0) sock.write(rest, 'latin1');
        sock.pipe(sock);
      };
      sock.on('data', onData);
    });
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    return srv;
  }));
  t.teardown(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
  return state;
}

async function openTunnel(host: string, port: number) {
  const sock = net.connect({ host, port, localAddress: ips.tiefighter });
  sock.on('error', () => undefined);
  let text = '';
  sock.setEncoding('latin1').on('data', (d: string) => (text += d));
  const closed = once(sock, 'close');
  await once(sock, 'connect');
  sock.write(UPGRADE);
  await until(() => text.includes('\r\n\r\n'));
  return {
    sock, closed, text: () => text,
    async echo(word: string): Promise<boolean> {
      const before = text.length;
      sock.write(word);
      try {
        await until(() => text.slice(before).includes(word) || sock.destroyed, 3000);
      } catch {
        return false;
      }
      return text.slice(before).includes(word);
    },
  };
}

t.test('an open tunnel carries on during the drain and is closed at --drain-timeout; exit 0', async (t) => {
  const pods = await echoPods(t);
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--drain-timeout', '1500ms']);
  t.teardown(() => s.stop());
  const ws = await openTunnel(s.host, s.port);
  t.match(ws.text(), /^HTTP\/1\.1 101 /, 'upgraded');
  t.equal(await ws.echo('ping-1'), true, 'the tunnel works');
  const exited = once(s.proc, 'exit');
  s.proc.kill('SIGTERM');
  await until(async () => (await adminRequest(s.admin, 'GET', '/ready').catch(() => ({ status: 0 }))).status === 503);
  t.equal(await ws.echo('ping-2'), true, 'still carried while draining (it is in flight)');
  t.equal(s.proc.exitCode, null, 'the drain waits for it');
  await ws.closed;
  t.pass('the drain deadline closed the client side');
  await until(() => pods.open === 0);
  t.pass('and the pod side');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit 0');
  t.ok(s.logs.some((l) => l['msg'] === 'drain deadline reached: closing the remaining connections' && Number(l['connections']) >= 1), 'the tunnel counted as a connection reset at the deadline');
});

t.test('a tunnel that ends during the drain lets it finish at once', async (t) => {
  const pods = await echoPods(t);
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(2)}:0`, '--admin', `${ip(2)}:0`, '--drain-timeout', '60s']);
  t.teardown(() => s.stop());
  const ws = await openTunnel(s.host, s.port);
  t.equal(await ws.echo('hello'), true);
  const exited = once(s.proc, 'exit');
  s.proc.kill('SIGTERM');
  await until(async () => (await adminRequest(s.admin, 'GET', '/ready').catch(() => ({ status: 0 }))).status === 503);
  t.equal(s.proc.exitCode, null, 'not gone while the tunnel is open');
  ws.sock.end();
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit 0 once the tunnel closed, long before the 60 s deadline');
  t.notOk(s.logs.some((l) => l['msg'] === 'drain deadline reached: closing the remaining connections'), 'nothing had to be reset');
  await until(() => pods.open === 0);
});

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
