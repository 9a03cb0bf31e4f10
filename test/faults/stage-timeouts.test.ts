// The whole-request, client-body and send timeouts (proxy/http1/server-connection.ts, flags in
// proxy/hardening.ts) with short values: each shows in /config_dump with its default, and each ends
// a stuck exchange the way it says — never a hang. Assertions are outcomes (status, closed, what a
// pod saw, whether the upstream exchange was aborted), never durations.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { adminRequest } from '../../proxy/admin/client.js';

const HOST = 'deathstar.default.svc.cluster.local';
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const PORT = 18401;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const BIG = 64 * 1024 * 1024;

interface Seen { url: string; bodyBytes: number; completed: boolean; aborted: boolean }

/**
 * Pods: /stall never answers; /half sends a head and 5 bytes of 10, then stalls; /big streams BIG
 * bytes with backpressure; /kb answers 16 KiB; anything else reads the body and answers "ok".
 */
async function pods(t: { teardown(fn: () => unknown): void }): Promise<Seen[]> {
  const seen: Seen[] = [];
  const servers = await Promise.all(ips.deathstar.map(async (host) => {
    const srv = http.createServer((req, res) => {
      const rec: Seen = { url: req.url ?? '', bodyBytes: 0, completed: false, aborted: false };
      seen.push(rec);
      req.on('data', (c: Buffer) => (rec.bodyBytes += c.length));
      req.on('end', () => (rec.completed = true));
      res.on('close', () => (rec.aborted = !res.writableFinished));
      const path = rec.url.split('?')[0];
      if (path === '/stall') return;
      if (path === '/kb') {
        res.end(Buffer.alloc(16 * 1024, 0x62));
        return;
      }
      if (path === '/half') {
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345');
        return;
      }
      if (path === '/big') {
        res.writeHead(200, { 'content-length': String(BIG) });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        const pump = (): void => {
          while (sent < BIG) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      req.on('end', () => res.end('ok\n'));
      req.resume();
    });
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    return srv;
  }));
  t.teardown(() => Promise.all(servers.map((s) => { s.closeAllConnections(); return new Promise((r) => s.close(r)); })));
  return seen;
}

t.test('request, client body and send timeouts', async (t) => {
  const seen = await pods(t);
  const s = await serve([
    '-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`,
    '--request-timeout', '400ms', '--client-body-timeout', '300ms', '--send-timeout', '300ms',
    // Far away, so only the timeouts under test can end these exchanges.
    '--response-timeout', '60s', '--body-timeout', '60s', '--header-timeout', '60s',
    '--log-level', 'debug', // client errors (with their codes) are debug lines
  ]);
  t.teardown(() => s.stop());

  const dump = (await adminRequest(s.admin, 'GET', '/config_dump')).body as unknown as { timeouts: Record<string, { ms: number; default_ms: number; source: string }> };
  t.same([dump.timeouts['request-timeout']?.ms, dump.timeouts['request-timeout']?.default_ms], [400, 3_600_000], '/config_dump: --request-timeout and its default (1 h)');
  t.same([dump.timeouts['client-body-timeout']?.ms, dump.timeouts['client-body-timeout']?.default_ms], [300, 60_000], '--client-body-timeout (nginx 60 s)');
  t.same([dump.timeouts['send-timeout']?.ms, dump.timeouts['send-timeout']?.default_ms], [300, 60_000], '--send-timeout (nginx 60 s)');
  t.match(dump.timeouts['send-timeout']?.source, /nginx send_timeout/);

  await t.test('no response head within --request-timeout: 504 and close, upstream aborted', async (t) => {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /stall HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, idleMs: 5000 });
    t.equal(status(r.text), 504);
    t.match(r.text, /\r\nconnection: close\r\n/i);
    t.equal(r.closed, true, 'the connection was closed');
    await waitUntil(() => seen.find((x) => x.url === '/stall')?.aborted === true);
    t.pass('the pod saw its exchange aborted');
  });

  await t.test('response started but not finished within --request-timeout: closed, never completed', async (t) => {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /half HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, idleMs: 5000 });
    t.equal(status(r.text), 200, 'the head had been passed on');
    t.ok(r.text.endsWith('\r\n\r\n12345'), 'with the 5 bytes the pod sent, nothing invented');
    t.equal(r.closed, true, 'then the connection was closed (the only honest signal)');
  });

  await t.test('a client that stops sending its declared body: 408 and close', async (t) => {
    const r = await rawExchange({
      from: ips.tiefighter, to: s.host, port: s.port, idleMs: 5000,
      data: `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`,
    });
    t.equal(status(r.text), 408);
    t.match(r.text, /\r\nconnection: close\r\n/i);
    t.equal(r.closed, true);
    const up = seen.find((x) => x.url === '/upload');
    t.equal(up?.completed, false, 'the pod never got a complete request');
    t.ok(s.logs.some((l) => l['code'] === 'L7G_ERR_CLIENT_BODY_TIMEOUT'), 'ended by the client body timeout');
    t.ok(up === undefined || up.bodyBytes <= 10, 'nor more than the client sent');
  });

  await t.test('a body that keeps trickling within the body timeout is not cut by it', async (t) => {
    const sock = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter });
    sock.on('error', () => undefined);
    let text = '';
    sock.setEncoding('latin1').on('data', (d: string) => (text += d));
    await once(sock, 'connect');
    sock.write(`POST /trickle HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\n\r\n`);
    // 3 × 100 ms gaps: each under the 300 ms body timeout, together (and with the response) near
    // the 400 ms request timeout. That one may answer 504 on a slow machine — it bounds the whole
    // exchange — but the body timeout must not fire while bytes keep coming: never a 408.
    for (const b of ['a', 'b', 'c']) {
      await new Promise((r) => setTimeout(r, 100));
      sock.write(b);
    }
    await waitUntil(() => hasCompleteResponse(Buffer.from(text, 'latin1')) || sock.destroyed);
    sock.destroy();
    t.not(status(text), 408, 'no 408 while bytes keep coming');
    t.ok([200, 504].includes(status(text)), `answered (${status(text)})`);
  });

  await t.test('a client that does not read the response: closed after --send-timeout, upstream aborted', async (t) => {
    const sock = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter });
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    sock.pause(); // never read until the end
    sock.write(`GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await waitUntil(() => seen.find((x) => x.url === '/big')?.aborted === true, 10_000);
    t.pass('the pod saw the /big exchange aborted before it finished');
    t.ok(s.logs.some((l) => l['code'] === 'L7G_ERR_SEND_TIMEOUT'), 'ended by the send timeout');
    let got = 0;
    sock.on('data', (c: Buffer) => (got += c.length));
    const closed = once(sock, 'close');
    sock.resume();
    await closed;
    t.ok(got < BIG, `the client got ${got} bytes of ${BIG}, then the close`);
  });

  await t.test('a pipelining client that never reads: the proxy stops taking its requests, then closes', async (t) => {
    // 4,000 pipelined requests for 16 KiB each (64 MiB of answers) from a client that never reads:
    // once the socket buffers are full, no further request is parsed (responses are not queued
    // in memory), and after --send-timeout the connection is closed.
    const N = 4000;
    const sock = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter });
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    sock.pause();
    let all = '';
    for (let i = 0; i < N; i++) all += `GET /kb?${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
    sock.write(all);
    const flood = (): number => seen.filter((x) => x.url.startsWith('/kb?')).length;
    await waitUntil(() => flood() > 0);
    let got = 0;
    const closed = once(sock, 'close');
    // Read only after the send timeout had every chance to fire (what counts is the outcome).
    await new Promise((r) => setTimeout(r, 1500));
    sock.on('data', (c: Buffer) => (got += c.length));
    sock.resume();
    await closed;
    t.ok(flood() < N, `${flood()} of ${N} pipelined requests reached a pod before the close`);
    t.ok(got < N * 16 * 1024, 'the client did not get every answer');
  });
  t.equal(s.proc.exitCode, null, 'the proxy is still running');
});

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
