// Backends that close keep-alive connections without saying `Connection: close` (docs/hardening.md#retries-and-outliers:
// a request is retried only when none of its bytes can have reached a pod, e.g. on a pooled
// connection found closed).
// A pooled connection the pod closed (FIN or RST) while idle must never cost a client its request:
// it is either not reused, or the request is retried on a fresh connection when it is certain that
// no byte of it was written. A pod that read a request and then closed without answering is the
// opposite case: the request may have done its work, so it is a 502 and never re-sent (RFC 9110
// §9.2.2). Asserted: what every client got, and how many times each request (by a unique id)
// reached a pod. Pods are raw TCP servers so that nothing (no Keep-Alive hint, no
// `Connection: close`) tells the proxy what they are about to do.
import t, { type Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Upstream, type UpstreamClient } from '../../proxy/upstream/upstream.js';
import { Http1Upstream } from '../../proxy/upstream/http1-client.js';
import type { Backend } from '../../policy/model.js';
import { loopbackBlock } from '../helpers/net.js';
import { serve, upstreamClient, type Served } from '../helpers/serve.js';
import { untilTrue } from '../helpers/poll.js';
import { starWarsCluster, clusterDir, deathstarPolicy } from '../helpers/cluster.js';

const HOST = 'deathstar.default.svc.cluster.local';
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const IDLE_CLOSE_MS = 75;

let nextId = 0;
const landing = (extra = ''): string => {
  const body = 'ship=tiefighter';
  return `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nx-request-id: r${nextId++}\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;
};
const getV1 = (extra = ''): string => `GET /v1/ HTTP/1.1\r\nHost: ${HOST}\r\nx-request-id: r${nextId++}\r\n${extra}\r\n`;
const exhaust = (extra = ''): string => `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nx-request-id: r${nextId++}\r\n${extra}Content-Length: 0\r\n\r\n`;

const idOf = (req: string): string => /x-request-id: (\S+)/.exec(req)![1]!;

/**
 * What a pod does with its connections:
 * - `idle-fin`: closes (FIN) a connection idle for IDLE_CLOSE_MS after a response;
 * - `idle-rst`: resets (RST) it instead;
 * - `close-after-response`: closes the connection as soon as each response is written;
 * - `die-on-mark`: answers normally, except a request carrying `x-die` (and every PUT): read in
 *   full, then the connection is closed with no answer (the pod "read it and died");
 * - `keep`: keeps connections until the test calls `resetIdle()`.
 */
type Mode = 'idle-fin' | 'idle-rst' | 'close-after-response' | 'die-on-mark' | 'keep';

interface Hit { readonly id: string; readonly method: string; readonly url: string; readonly body: string; readonly pod: number; readonly conn: number }

interface Pods {
  readonly hits: Hit[];
  /** Connections a pod closed while idle, and connections a pod ever accepted. */
  readonly stats: { idleCloses: number; accepted: number };
  /** Resets (RST) every open connection (all idle between requests); returns how many. */
  resetIdle(): number;
  close(): Promise<void>;
}

/** `extraHead`: header lines added to every response (e.g. a Keep-Alive hint). */
async function pods(port: number, mode: Mode, extraHead = ''): Promise<Pods> {
  const hits: Hit[] = [];
  const stats = { idleCloses: 0, accepted: 0 };
  const sockets = new Set<net.Socket>();
  const servers = await Promise.all(
    ips.deathstar.map(async (host, pod) => {
      const server = net.createServer((sock) => {
        const conn = ++stats.accepted;
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => undefined);
        let buf = Buffer.alloc(0);
        let idle: NodeJS.Timeout | undefined;
        const armIdle = (): void => {
          if (mode !== 'idle-fin' && mode !== 'idle-rst') return;
          idle = setTimeout(() => {
            stats.idleCloses++;
            if (mode === 'idle-rst') sock.resetAndDestroy();
            else sock.destroy();
          }, IDLE_CLOSE_MS);
        };
        sock.on('data', (chunk: Buffer) => {
          if (idle !== undefined) clearTimeout(idle);
          idle = undefined;
          buf = Buffer.concat([buf, chunk]);
          for (;;) {
            const text = buf.toString('latin1');
            const end = text.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = text.slice(0, end + 2);
            const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
            if (buf.length < end + 4 + len) return;
            const reqBody = buf.subarray(end + 4, end + 4 + len).toString('latin1');
            buf = buf.subarray(end + 4 + len);
            const [method = '', url = ''] = head.split(' ', 2);
            const id = /\r\nx-request-id: *(\S+)/i.exec(head)?.[1] ?? '';
            hits.push({ id, method, url, body: reqBody, pod, conn });
            if (mode === 'die-on-mark' && (method === 'PUT' || /\r\nx-die:/i.test(head))) {
              sock.destroy();
              return;
            }
            const body = `pod${pod} ${method} ${url}\n`;
            // No Connection, no Keep-Alive (unless `extraHead`): a pod that says nothing about its plans.
            const res = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n${extraHead}content-length: ${body.length}\r\n\r\n${body}`;
            if (mode === 'close-after-response') {
              sock.write(res, () => sock.destroy());
              return;
            }
            sock.write(res);
            if (buf.length === 0) armIdle();
          }
        });
      });
      server.listen(port, host);
      await once(server, 'listening');
      return server;
    }),
  );
  return {
    hits,
    stats,
    resetIdle: () => {
      const n = sockets.size;
      for (const sock of sockets) sock.resetAndDestroy();
      return n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}

/** One keep-alive client connection (from tiefighter) that reconnects when the proxy closes it. */
class Client {
  #sock: net.Socket | undefined;
  #buf = Buffer.alloc(0);
  #waiter: ((r: { status: number; body: string }) => void) | undefined;
  constructor(readonly s: Served) {}

  async #connect(): Promise<net.Socket> {
    const sock = net.connect({ host: this.s.host, port: this.s.port, localAddress: ips.tiefighter });
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#parse();
    });
    sock.on('close', () => {
      if (this.#sock !== sock) return; // one we dropped after `connection: close`
      this.#sock = undefined;
      const w = this.#waiter;
      this.#waiter = undefined;
      w?.({ status: 0, body: '' });
    });
    await once(sock, 'connect');
    return sock;
  }

  #parse(): void {
    const text = this.#buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end + 2))?.[1] ?? 0);
    if (this.#buf.length < end + 4 + len) return;
    this.#buf = this.#buf.subarray(end + 4 + len);
    if (/\r\nconnection: *close/i.test(text.slice(0, end + 2))) {
      // The proxy closes after this answer: the next request goes on a new connection.
      this.#sock?.destroy();
      this.#sock = undefined;
      this.#buf = Buffer.alloc(0);
    }
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(end + 4, end + 4 + len) });
  }

  async send(bytes: string): Promise<{ status: number; body: string }> {
    this.#sock ??= await this.#connect();
    const answer = new Promise<{ status: number; body: string }>((resolve) => (this.#waiter = resolve));
    this.#sock.write(bytes);
    return answer;
  }

  close(): void {
    this.#sock?.destroy();
  }
}

/** The state letter of /proc/PID/stat (`T` = stopped). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

function policy(port: number): string {
  return deathstarPolicy(port, [
    { method: 'POST', path: '/v1/request-landing' },
    { method: 'GET', path: '/v1/.*' },
    { method: 'PUT', path: '/v1/exhaust-port' },
  ]);
}

async function setup(t: Test, port: number, mode: Mode, extraHead = ''): Promise<{ s: Served; p: Pods }> {
  const p = await pods(port, mode, extraHead);
  t.teardown(() => p.close());
  const dir = clusterDir(starWarsCluster(ips, port), { '10-policy.yaml': policy(port) });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  return { s, p };
}

/** Each id reached a pod exactly once. */
function onceEach(t: Test, p: Pods, ids: readonly string[]): void {
  const counts = new Map<string, number>();
  for (const h of p.hits) counts.set(h.id, (counts.get(h.id) ?? 0) + 1);
  const wrong = ids.filter((id) => counts.get(id) !== 1).map((id) => `${id}×${counts.get(id) ?? 0}`);
  t.same(wrong, [], `each of ${ids.length} requests reached a pod exactly once`);
  t.equal(p.hits.length, ids.length, 'and nothing else reached a pod');
}

for (const [mode, port, name] of [
  ['idle-fin', 18801, 'closes (FIN)'],
  ['idle-rst', 18802, 'resets (RST)'],
] as const) {
  t.test(`a pod that ${name} idle keep-alive connections after ${IDLE_CLOSE_MS} ms, unannounced`, async (t) => {
    const { s, p } = await setup(t, port, mode);
    const c = new Client(s);
    t.teardown(() => c.close());
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const req = i % 2 === 0 ? landing() : getV1();
      ids.push(idOf(req));
      const r = await c.send(req);
      t.equal(r.status, 200, `request ${i} (${req.slice(0, 4).trim()}) answered 200`);
      // The pod closes the proxy's pooled connections before the next request arrives.
      const closes = p.stats.idleCloses;
      await untilTrue(() => p.stats.idleCloses > closes, 'the pod to close its idle connection');
    }
    onceEach(t, p, ids);
    t.ok(p.stats.accepted >= 12, 'every request after an idle close needed a new connection');
    t.equal(s.proc.exitCode, null);
  });
}

t.test('a pod that closes every connection right after each response, under 24 concurrent clients', async (t) => {
  const { s, p } = await setup(t, 18803, 'close-after-response');
  const clients = Array.from({ length: 24 }, () => new Client(s));
  t.teardown(() => clients.forEach((c) => c.close()));
  const status = new Map<string, number>();
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; i < 15; i++) {
        const req = (i + k) % 2 === 0 ? landing() : getV1();
        status.set(idOf(req), (await c.send(req)).status);
      }
    }),
  );
  const counts = new Map<string, number>();
  for (const h of p.hits) counts.set(h.id, (counts.get(h.id) ?? 0) + 1);
  // A request written in the instant between the pod's response and its FIN reaching the proxy is
  // the race no proxy can tell from "the pod read it and died" (it reaches no pod here, since this
  // pod answers everything it reads): a 502, never re-sent. Everything else must be served once.
  const wrong: string[] = [];
  let raced = 0;
  for (const [id, st] of status) {
    const n = counts.get(id) ?? 0;
    if (st === 200 && n === 1) continue;
    if (st === 502 && n === 0) raced++;
    else wrong.push(`${id}: ${st}, reached a pod ${n} times`);
  }
  t.same(wrong, [], `each of ${status.size} requests answered 200 and served once, or 502 and never applied (${raced} raced a FIN)`);
  t.equal(p.hits.length, status.size - raced, 'nothing else reached a pod');
  t.ok(raced <= status.size / 10, `the race stays rare: ${raced} of ${status.size}`);
  t.equal(s.proc.exitCode, null);
});

t.test('a pod that reads a request and closes without answering: 502, never re-sent', async (t) => {
  const { s, p } = await setup(t, 18804, 'die-on-mark');
  const c = new Client(s);
  t.teardown(() => c.close());
  for (const [what, req] of [
    ['POST /v1/request-landing', landing('x-die: 1\r\n')],
    ['PUT /v1/exhaust-port', exhaust()],
    ['POST /v1/request-landing', landing('x-die: 1\r\n')],
    ['PUT /v1/exhaust-port', exhaust()],
  ] as const) {
    // One request to each pod first (round robin), so the fatal one goes out on a reused connection.
    for (let i = 0; i < 2; i++) t.equal((await c.send(getV1())).status, 200, 'a request to each pod is served');
    const id = idOf(req);
    const r = await c.send(req);
    t.equal(r.status, 502, `${what}: 502`);
    const hits = p.hits.filter((h) => h.id === id);
    t.equal(hits.length, 1, `${what} reached a pod exactly once (not retried)`);
    t.ok(p.hits.some((h) => h.conn === hits[0]?.conn && h.id !== id), 'on a reused connection');
  }
  t.equal((await c.send(getV1())).status, 200, 'and the proxy keeps serving');
  t.equal(s.proc.exitCode, null);
});

t.test('a pod resets its pooled connections while requests wait to be written on them', async (t) => {
  // The proxy is paused (SIGSTOP) while the clients' requests and then the pods' RSTs arrive, so
  // on SIGCONT it reads the requests, queues each on an idle pooled connection, and only then
  // reads that connection's reset: undici fails such a queued request with ECONNRESET although
  // not one byte of it was written. That is the retryable case of docs/hardening.md#retries-and-outliers.
  const { s, p } = await setup(t, 18805, 'keep');
  const clients = [new Client(s), new Client(s), new Client(s), new Client(s)];
  t.teardown(() => clients.forEach((c) => c.close()));
  for (let round = 0; round < 3; round++) {
    // Warm-up: every client connection accepted and read by the proxy, a pooled connection per pod.
    for (const c of clients) t.equal((await c.send(getV1())).status, 200, 'warm-up answered');
    const reqs = [getV1(), landing(), exhaust(), landing()];
    const hitsBefore = p.hits.length;
    s.proc.kill('SIGSTOP');
    let answers: Promise<{ status: number; body: string }>[];
    try {
      // Stopped for real before anything arrives: a proxy still on its way out of epoll_wait could
      // otherwise read the requests in one batch and the resets only in the next.
      await untilTrue(() => processState(s.proc.pid!) === 'T', 'the proxy to be stopped');
      answers = clients.map((c, i) => c.send(reqs[i]!));
      t.ok(p.resetIdle() >= 2, 'the pods reset their pooled connections');
    } finally {
      s.proc.kill('SIGCONT');
    }
    const got = await Promise.all(answers);
    if (!t.same(got.map((r) => r.status), reqs.map(() => 200), `round ${round}: every request answered 200`)) {
      t.comment(s.logs.filter((l) => l['msg'] === 'upstream error'));
    }
    const ids = reqs.map(idOf);
    t.same(ids.map((id) => p.hits.filter((h) => h.id === id).length), ids.map(() => 1), 'each reached a pod exactly once');
    t.equal(p.hits.length - hitsBefore, reqs.length, 'and nothing else reached a pod');
    const landed = p.hits.slice(hitsBefore).filter((h) => h.method === 'POST').map((h) => h.body);
    t.same(landed, ['ship=tiefighter', 'ship=tiefighter'], 'a retried POST carries its body intact');
  }
  if (upstreamClient === 'undici') {
    // The answers above would be the same had the proxy read the resets first and simply opened new
    // connections: the logged resets show that requests did meet a dead connection and were retried.
    const resets = s.logs.filter((l) => l['msg'] === 'upstream error' && l['code'] === 'ECONNRESET').length;
    t.ok(resets >= 1, `queued requests met a reset connection and were retried (${resets} times over 3 rounds)`);
  } else {
    // Our client writes on a reused connection only after the next poll (http1-client.ts `reuse`):
    // each reset is read first, and the request goes on a new connection without any error.
    t.same(s.logs.filter((l) => l['msg'] === 'upstream error'), [], 'no request met a dead connection');
    t.ok(p.stats.accepted >= 2 + 3 * 2, `new connections replaced the reset ones (${p.stats.accepted} accepted)`);
  }
  t.equal(s.proc.exitCode, null);
});

t.test('a pod’s Keep-Alive: timeout hint is honoured (less a 2 s margin)', async (t) => {
  // `timeout=2` leaves no time at all once the margin is taken: never reused. The same pod saying
  // nothing gets its connection reused (the control: the count below can tell the difference).
  for (const [extraHead, port, reused] of [['keep-alive: timeout=2\r\n', 18807, false], ['', 18808, true]] as const) {
    const { s, p } = await setup(t, port, 'keep', extraHead);
    const c = new Client(s);
    t.teardown(() => c.close());
    const n = 8;
    for (let i = 0; i < n; i++) t.equal((await c.send(i % 2 === 0 ? getV1() : landing())).status, 200);
    const label = extraHead === '' ? 'no hint' : extraHead.trim();
    if (reused) t.ok(p.stats.accepted < n, `${label}: pooled connections reused (${p.stats.accepted} for ${n} requests)`);
    else t.equal(p.stats.accepted, n, `${label}: a new connection for every request`);
  }
});

// A pod in its own process, so that it can act while this process is blocked: answers each request
// (no Connection, no Keep-Alive), prints each path, and on SIGUSR1 closes (FIN) / on SIGUSR2
// resets (RST) every connection, then creates the marker file.
const POD_MAIN = String.raw`
const net = require('node:net');
const fs = require('node:fs');
const [host, port, marker] = process.argv.slice(1);
const socks = new Set();
net.createServer((s) => {
  socks.add(s);
  s.on('close', () => socks.delete(s));
  s.on('error', () => {});
  let buf = '';
  s.on('data', (d) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
      process.stdout.write(buf.slice(0, i).split(' ')[1] + '\n');
      buf = buf.slice(i + 4);
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    }
  });
}).listen(Number(port), host, () => process.stdout.write('ready\n'));
const close = (how) => { for (const s of socks) how === 'rst' ? s.resetAndDestroy() : s.destroy(); fs.writeFileSync(marker, how); };
process.on('SIGUSR1', () => close('fin'));
process.on('SIGUSR2', () => close('rst'));
`;

interface Outcome { status: number; err?: string; unsent?: boolean }

function exchange(up: UpstreamClient, backend: Backend, path: string, beforeWrite?: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    up.send(backend, { method: 'GET', path, headers: ['host', 'pod'], body: null }, {
      onStart: () => beforeWrite?.(),
      onHeaders: (s) => (status = s),
      onData: () => undefined,
      onEnd: () => resolve({ status }),
      onError: (err, unsent) => resolve({ status, err: (err as { code?: string }).code ?? err.message, unsent }),
    });
  });
}

for (const [client, how, signal, expected] of [
  ['undici', 'resets', 'SIGUSR2', { code: 'ECONNRESET', unsent: true }],
  ['undici', 'closes', 'SIGUSR1', { code: 'UND_ERR_SOCKET', unsent: false }],
  ['native', 'resets', 'SIGUSR2', { code: 'ECONNRESET', unsent: true }],
  ['native', 'closes', 'SIGUSR1', { code: 'L7G_ERR_UPSTREAM_CLOSED', unsent: false }],
] as const) {
  t.test(`upstream client (${client}): a pod that ${how} the pooled connection just before the write (${expected.unsent ? 'unsent' : 'maybe sent'})`, async (t) => {
    const host = ip(31);
    const port = 18806;
    const marker = join(mkdtempSync(join(tmpdir(), 'l7guard-pod-')), 'closed');
    const pod = spawn(process.execPath, ['-e', POD_MAIN, host, String(port), marker], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => pod.kill('SIGKILL'));
    let out = '';
    pod.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await untilTrue(() => out.includes('ready\n'), 'the pod to listen');
    const up = client === 'undici' ? new Upstream({ connections: 1 }) : new Http1Upstream({ connections: 1 });
    t.teardown(() => up.close());
    const backend = { ip: host, port, endpoint: {} } as Backend;

    t.same(await exchange(up, backend, '/first'), { status: 200 }, 'a first exchange leaves one idle pooled connection');
    // onStart runs inside the client's write path, after its idle-socket check and right before the
    // bytes go out: block there until the pod has closed the connection.
    const r = await exchange(up, backend, '/second', () => {
      pod.kill(signal);
      const deadline = Date.now() + 10_000;
      while (!existsSync(marker) && Date.now() < deadline);
    });
    t.equal(r.err, expected.code, `the request fails with ${expected.code}`);
    t.equal(r.unsent, expected.unsent, expected.unsent
      ? 'the write was refused at once: certainly unsent, so retryable'
      : 'the bytes were handed to the kernel before the FIN was read: maybe sent, never retried');
    t.notMatch(out, /\/second/, 'the pod never read it (it was closed first) — unknowable for the proxy after a FIN');
    t.equal((await exchange(up, backend, '/third')).status, 200, 'the next request gets a new connection');
  });
}
