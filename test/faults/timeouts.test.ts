// Timeouts and limits from `serve` flags (proxy/hardening.ts), with short values: each shows up in
// /config_dump and does what it says. Assertions are about outcomes (status, closed, what a pod
// saw), never about how long anything took.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { recordingBackend } from '../helpers/backend.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const HOST = 'deathstar.default.svc.cluster.local';
const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${extra}\r\n`;
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const PORT = 18301;

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const dir = clusterDir(starWarsCluster(ips, PORT));

function fetchJson(admin: string, path: string): Promise<Record<string, unknown>> {
  const [host, port] = [admin.slice(0, admin.lastIndexOf(':')), Number(admin.slice(admin.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    http.get({ host, port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    }).on('error', reject);
  });
}

t.test('client-side timeouts and limits', async (t) => {
  const backends = await Promise.all(ips.deathstar.map((h, i) => recordingBackend(`d${i}`, h, PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const seen = () => backends[0]!.seen.length + backends[1]!.seen.length;
  const s = await serve([
    '-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`,
    '--header-timeout', '300ms', '--idle-timeout', '300ms',
    '--max-header-bytes', '1k', '--max-headers', '5', '--max-target-length', '64', '--max-connections', '2',
  ]);
  t.teardown(() => s.stop());

  const dump = await fetchJson(s.admin, '/config_dump');
  const limits = dump['limits'] as Record<string, { value: number; default: number }>;
  const timeouts = dump['timeouts'] as Record<string, { ms: number; default_ms: number }>;
  t.equal(timeouts['header-timeout']?.ms, 300, '/config_dump shows --header-timeout');
  t.equal(timeouts['header-timeout']?.default_ms, 60_000, 'and its default');
  t.equal(timeouts['idle-timeout']?.ms, 300);
  t.equal(timeouts['connect-timeout']?.ms, 5000, 'untouched ones show their defaults');
  t.equal(limits['max-header-bytes']?.value, 1024);
  t.equal(limits['max-headers']?.value, 5);
  t.equal(limits['max-target-length']?.value, 64);
  t.equal(limits['max-connections']?.value, 2);

  const stalled = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /a HTTP/1.1\r\nHost: ${HOST}\r\n`, idleMs: 5000 });
  t.equal(status(stalled.text), 408, 'an unfinished head gets 408 after --header-timeout');
  t.equal(stalled.closed, true);

  const idle = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/a'), idleMs: 5000 });
  t.equal(status(idle.text), 200);
  t.equal(idle.closed, true, 'a kept-alive connection is closed after --idle-timeout');

  const cases: [string, string, number][] = [
    ['6 fields', get('/a', 'A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n'), 431],
    ['a 1.1 KiB head', get('/a', `X: ${'x'.repeat(1100)}\r\n`), 431],
    ['a 65-byte target', get(`/${'a'.repeat(64)}`), 414],
  ];
  const before = seen();
  for (const [name, bytes, want] of cases) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: bytes, idleMs: 2000 });
    t.equal(status(r.text), want, `${name}: ${want}`);
    t.equal(r.closed, true);
  }
  t.equal(seen(), before, 'none reached a pod');
  const inside = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get(`/${'a'.repeat(63)}`, 'A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n'), until: hasCompleteResponse });
  t.equal(status(inside.text), 200, 'exactly at the limits: served');

  // --max-connections 2: a third concurrent connection is closed at accept, with no bytes.
  const open = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve) => {
    const c = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter }, () => resolve(c));
    c.on('error', () => undefined);
  })));
  await new Promise((r) => setTimeout(r, 50));
  const third = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/third'), idleMs: 2000 });
  t.equal(third.bytes.length, 0, 'the third connection got nothing');
  t.equal(third.closed, true, 'and was closed');
  open.forEach((c) => c.destroy());
  await new Promise((r) => setTimeout(r, 100));
  const after = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/after'), until: hasCompleteResponse });
  t.equal(status(after.text), 200, 'once they closed, a new one is served');
  t.equal(backends.flatMap((b) => b.seen).filter((r) => r.url === '/third').length, 0);
});

t.test('upstream response timeout and outlier recovery', async (t) => {
  const port = PORT + 1;
  const d2 = clusterDir(starWarsCluster(ips, port));
  // Pods that accept and read but never answer.
  const silent: net.Server[] = [];
  for (const h of ips.deathstar) {
    const srv = net.createServer((sock) => sock.on('error', () => undefined).resume());
    await new Promise<void>((r) => srv.listen(port, h, r));
    silent.push(srv);
  }
  const s = await serve([
    '-f', d2, '--listen', `${ip(2)}:0`, '--admin', `${ip(2)}:0`,
    '--response-timeout', '300ms', '--outlier-failures', '1', '--outlier-ejection-time', '500ms',
  ]);
  t.teardown(() => s.stop());
  const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/slow'), idleMs: 5000, until: hasCompleteResponse });
  t.equal(status(r.text), 504, 'no response head within --response-timeout: 504');
  await Promise.all(silent.map((srv) => new Promise((res) => (srv.close(res), srv.unref()))));
  await new Promise((res) => setTimeout(res, 100));

  // Now nothing listens: connect refused, each pod ejected after one failure.
  const a = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/a'), until: hasCompleteResponse });
  t.equal(status(a.text), 503);
  const b = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/b'), until: hasCompleteResponse });
  t.match(b.text, /no healthy upstream/, 'both ejected');
  const back = await Promise.all(ips.deathstar.map((h, i) => recordingBackend(`d${i}`, h, port)));
  t.teardown(() => Promise.all(back.map((x) => x.close())));
  await new Promise((res) => setTimeout(res, 700));
  const c = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/c'), until: hasCompleteResponse });
  t.equal(status(c.text), 200, 'after the ejection time the pods are used again (automatic recovery)');
  t.same(back.flatMap((x) => x.seen).map((x) => x.url), ['/c']);
});
