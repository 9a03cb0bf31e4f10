// SIGTERM drains: /ready turns 503 at once, the listener stops accepting, the request in flight
// completes (announced with `connection: close`), idle keep-alive connections are closed, and the
// process exits 0; past --drain-timeout what is left is reset and the process still exits 0.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { loopbackBlock } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { adminRequest } from '../../proxy/admin/client.js';
import { waitFor } from '../proxy/reload/helpers.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18080;
const req = (path: string) => `GET ${path} HTTP/1.1\r\nHost: deathstar\r\n\r\n`;

/** /slow answers when `release()` is called; everything else at once. */
async function slowBackends(t: { teardown(fn: () => unknown): void }) {
  const waiting: http.ServerResponse[] = [];
  const servers = await Promise.all(ips.deathstar.map(async (host) => {
    const srv = http.createServer((rq, rs) => {
      if (rq.url === '/slow') waiting.push(rs);
      else rs.end('fast\n');
    });
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    return srv;
  }));
  t.teardown(() => Promise.all(servers.map((s) => { s.closeAllConnections(); return new Promise((r) => s.close(r)); })));
  return { waiting, release: () => waiting.splice(0).forEach((rs) => rs.end('slow done\n')) };
}

/** A raw client connection from the tiefighter that collects everything it receives. */
async function client(host: string, port: number) {
  const sock = net.connect({ host, port, localAddress: ips.tiefighter });
  sock.on('error', () => undefined);
  let text = '';
  sock.setEncoding('latin1').on('data', (s: string) => (text += s));
  const closed = once(sock, 'close');
  await once(sock, 'connect');
  return { sock, closed, text: () => text };
}

function connectRefused(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: ips.tiefighter });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

t.test('drain with a request in flight', async (t) => {
  const backend = await slowBackends(t);
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--drain-timeout', '20s']);
  t.teardown(() => s.stop());

  const idle = await client(s.host, s.port);
  idle.sock.write(req('/fast'));
  await waitFor('the first response', () => (idle.text().endsWith('fast\n') ? true : undefined));
  t.notMatch(idle.text(), /connection: close/i, 'kept alive before the drain');

  const busy = await client(s.host, s.port);
  busy.sock.write(req('/slow'));
  await waitFor('the slow request at the backend', () => (backend.waiting.length === 1 ? true : undefined));

  const exited = once(s.proc, 'exit');
  s.proc.kill('SIGTERM');
  await waitFor('/ready 503', async () => ((await adminRequest(s.admin, 'GET', '/ready').catch(() => ({ status: 0 }))).status === 503 ? true : undefined));
  await idle.closed;
  t.pass('the idle keep-alive connection was closed');
  t.equal(await connectRefused(s.host, s.port), 'ECONNREFUSED', 'a new connection is refused');
  t.equal(s.proc.exitCode, null, 'still running while a request is in flight');

  backend.release();
  await busy.closed;
  t.match(busy.text(), /^HTTP\/1\.1 200 OK\r\n/, 'the in-flight request completed');
  t.match(busy.text(), /\r\nconnection: close\r\n/i, 'announcing the close');
  t.match(busy.text(), /slow done\n$/, 'with its whole body');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit 0');
  t.ok(s.logs.some((l) => l['msg'] === 'draining'), 'the drain is logged');
});

t.test('drain deadline: what is left is reset, exit 0', async (t) => {
  const backend = await slowBackends(t);
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--drain-timeout', '500ms']);
  t.teardown(() => s.stop());
  const busy = await client(s.host, s.port);
  busy.sock.write(req('/slow'));
  await waitFor('the slow request at the backend', () => (backend.waiting.length === 1 ? true : undefined));
  const exited = once(s.proc, 'exit');
  s.proc.kill('SIGTERM');
  await busy.closed;
  t.equal(busy.text(), '', 'the unfinished exchange got no partial response');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit 0');
  t.ok(s.logs.some((l) => l['msg'] === 'drain deadline reached: closing the remaining connections' && l['connections'] === 1), 'the forced close is logged');
});
