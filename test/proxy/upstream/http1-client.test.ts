// The native upstream client against raw TCP pods that write exactly the bytes under test:
// what reached the pod (head and body framing), what the sink got, and when a connection is
// reused. The framings and failures every client must agree on run against undici too.
import t, { type Test } from 'tap';
import diagnostics from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Http1Upstream } from '../../../proxy/upstream/http1-client.js';
import { Upstream, upstreamErrorStatus, type UpstreamClient, type UpstreamOptions } from '../../../proxy/upstream/upstream.js';
import type { Backend } from '../../../policy/model.js';

interface Pod {
  readonly backend: Backend;
  /** Everything each connection received, by connection. */
  readonly received: string[];
  readonly accepted: () => number;
}

/** A pod that answers each request (a blank line ends the head; bodies are not parsed) with `answer(n)`. */
async function pod(t: Test, answer: (n: number, head: string) => string | undefined): Promise<Pod> {
  const received: string[] = [];
  let n = 0;
  const srv = net.createServer((sock) => {
    const i = received.push('') - 1;
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      received[i] += d.toString('latin1');
      const text = received[i]!;
      if (!text.endsWith('\r\n\r\n') && !text.endsWith('0\r\n\r\n') && !/content-length: [1-9]/i.test(text)) return;
      const out = answer(n++, text);
      if (out !== undefined) sock.write(out);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => srv.close(r)));
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  return { backend: { ip: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, endpoint: {} } as Backend, received, accepted: () => received.length };
}

interface Got { status: number; headers: string[]; body: string; error?: string; unsent?: boolean }

function exchange(up: UpstreamClient, backend: Backend, method: string, headers: string[], body: Readable | null = null): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { status: 0, headers: [], body: '' };
    up.send(backend, { method, path: '/p', headers, body }, {
      onStart: () => undefined,
      onHeaders: (s, _r, h) => Object.assign(got, { status: s, headers: h }),
      onData: (c) => (got.body += c.toString('latin1')),
      onEnd: () => resolve(got),
      onError: (err, unsent) => resolve({ ...got, error: (err as { code?: string }).code ?? err.message, unsent }),
    });
  });
}

// A full collection on demand, to show what the client no longer holds.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const clients: [string, (o?: Partial<UpstreamOptions>) => UpstreamClient][] = [
  ['native', (o) => new Http1Upstream(o)],
  ['undici', (o) => new Upstream(o)],
];

for (const [name, make] of clients) {
  t.test(`${name}: framings, and reuse after each`, async (t) => {
    const answers = [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', // HEAD
      'HTTP/1.1 204 No Content\r\n\r\n',
    ];
    const p = await pod(t, (n) => answers[n]);
    const up = make();
    t.teardown(() => up.close());
    const first = await exchange(up, p.backend, 'GET', ['host', 'pod']);
    t.same({ ...first, headers: first.headers.map((h) => h.toLowerCase()) }, { status: 200, headers: ['content-length', '5'], body: 'hello' });
    const chunked = await exchange(up, p.backend, 'GET', ['host', 'pod']);
    t.same([chunked.status, chunked.body], [200, 'abcde'], 'chunked: the decoded body');
    const head = await exchange(up, p.backend, 'HEAD', ['host', 'pod']);
    t.same([head.status, head.body], [200, ''], 'HEAD: no body whatever Content-Length says');
    t.same((await exchange(up, p.backend, 'GET', ['host', 'pod'])).status, 204);
    // undici's Pool may open a second connection while the first awaits its idle check; ours waits for it.
    if (name === 'native') t.equal(p.accepted(), 1, 'one connection carried all four');
  });

  t.test(`${name}: a response the parser refuses is a 502, and the connection is not reused`, async (t) => {
    const p = await pod(t, (n) => (n === 0 ? 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const up = make();
    t.teardown(() => up.close());
    const bad = await exchange(up, p.backend, 'GET', ['host', 'pod']);
    t.ok(bad.error !== undefined, `failed (${bad.error})`);
    t.equal(upstreamErrorStatus(Object.assign(new Error(), { code: bad.error })), 502);
    t.equal(bad.unsent, false, 'never retried: the pod got the request');
    t.equal((await exchange(up, p.backend, 'GET', ['host', 'pod'])).status, 200);
    t.equal(p.accepted(), 2, 'a new connection after the bad one');
  });

  t.test(`${name}: no response head within the response timeout: 504`, async (t) => {
    const p = await pod(t, () => undefined);
    const up = make({ headersTimeout: 200 });
    t.teardown(() => up.close());
    const r = await exchange(up, p.backend, 'GET', ['host', 'pod']);
    t.equal(upstreamErrorStatus(Object.assign(new Error(), { code: r.error })), 504, `timed out (${r.error})`);
  });
}

t.test('native: the request head in one write, a chunked body re-framed, Content-Length bodies as they are', async (t) => {
  const p = await pod(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  const up = new Http1Upstream();
  t.teardown(() => up.close());
  await exchange(up, p.backend, 'GET', ['host', 'pod', 'x-a', '1']);
  t.equal(p.received[0], 'GET /p HTTP/1.1\r\nhost: pod\r\nx-a: 1\r\n\r\n', 'the head as given, nothing added');
  await exchange(up, p.backend, 'POST', ['host', 'pod'], Readable.from([Buffer.from('ab'), Buffer.from('cde')]));
  t.match(p.received[0], /POST \/p HTTP\/1\.1\r\nhost: pod\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n$/, 'no length: chunked');
  await exchange(up, p.backend, 'POST', ['host', 'pod', 'content-length', '3'], Readable.from([Buffer.from('xyz')]));
  t.match(p.received[0], /POST \/p HTTP\/1\.1\r\nhost: pod\r\ncontent-length: 3\r\n\r\nxyz$/, 'a length: the bytes as they are');
  const bad = await exchange(up, p.backend, 'GET', ['host', 'pod', 'x-evil', 'a\r\nx-injected: 1']);
  t.equal(bad.error, 'L7G_ERR_UPSTREAM_BAD_REQUEST_HEAD', 'a field that would split the head is refused');
  t.notMatch(p.received.join(''), /x-injected/, 'and nothing of it was written');
});

t.test('native: interim responses are skipped; header names keep their case', async (t) => {
  const p = await pod(t, () => 'HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nX-Case: v\r\nContent-Length: 2\r\n\r\nok');
  const up = new Http1Upstream();
  t.teardown(() => up.close());
  t.same(await exchange(up, p.backend, 'GET', ['host', 'pod']), { status: 201, headers: ['X-Case', 'v', 'Content-Length', '2'], body: 'ok' });
});

t.test("native: the pod's Keep-Alive hint, less 2 s", async (t) => {
  const p = await pod(t, () => 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 0\r\n\r\n');
  const up = new Http1Upstream();
  t.teardown(() => up.close());
  for (let i = 0; i < 3; i++) t.equal((await exchange(up, p.backend, 'GET', ['host', 'pod'])).status, 200);
  t.equal(p.accepted(), 3, 'timeout=2 leaves nothing after the margin: a connection per request');
});

t.test('native: a request queued on a pool whose pod left fails as unsent instead of waiting for ever', async (t) => {
  // One connection: the second request waits in the queue. The pod then leaves (retainOnly) and
  // answers the first with Connection: close, so no connection will ever come back for the second.
  const p = await pod(t, (n) => (n === 0 ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno'));
  const up = new Http1Upstream({ connections: 1 });
  t.teardown(() => up.close());
  const first = exchange(up, p.backend, 'GET', ['host', 'pod']);
  const second = exchange(up, p.backend, 'GET', ['host', 'pod']);
  up.retainOnly(new Set());
  const timeout = new Promise<Got>((r) => setTimeout(() => r({ status: -1, headers: [], body: '', error: 'still waiting after 3 s' }), 3_000).unref());
  t.same([(await first).status, (await first).body], [200, 'ok'], 'the in-flight request finishes');
  const got = await Promise.race([second, timeout]);
  t.same([got.error, got.unsent], ['L7G_ERR_UPSTREAM_CLOSED', true], 'the queued one fails, unsent (retry may pick another pod)');
  t.equal(p.accepted(), 1, 'nothing was written for it');
});

t.test('native: a response the client has paused is not cut by the body timeout', async (t) => {
  // The pod sends the head and half the body, the rest 100 ms later; the client pauses at the first
  // bytes for longer than the body timeout, then resumes: the whole body, no timeout.
  const srv = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello');
      setTimeout(() => sock.write('world'), 100);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => srv.close(r)));
  const up = new Http1Upstream({ bodyTimeout: 200 });
  t.teardown(() => up.close());
  const backend = { ip: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, endpoint: {} } as Backend;
  const got = await new Promise<Got>((resolve) => {
    const g: Got = { status: 0, headers: [], body: '' };
    let pause: () => void = () => undefined;
    let resume: () => void = () => undefined;
    let paused = false;
    up.send(backend, { method: 'GET', path: '/p', headers: ['host', 'pod'], body: null }, {
      onStart: (_abort, p, r) => {
        pause = p;
        resume = r;
      },
      onHeaders: (s) => (g.status = s),
      onData: (c) => {
        g.body += c.toString('latin1');
        if (!paused) {
          paused = true;
          pause();
          setTimeout(() => resume(), 600);
        }
      },
      onEnd: () => resolve(g),
      onError: (err, unsent) => resolve({ ...g, error: (err as { code?: string }).code ?? err.message, unsent }),
    });
  });
  t.same([got.status, got.body, got.error], [200, 'helloworld', undefined]);
});

/** A body that sends `chunks` one-byte chunks, `everyMs` apart, then ends; `ended` resolves at its end (performance.now()). */
function trickle(chunks: number, everyMs: number): { body: Readable; ended: Promise<number> } {
  let sent = 0;
  let onEnd: (at: number) => void = () => undefined;
  const ended = new Promise<number>((r) => (onEnd = r));
  const body = new Readable({ read: () => undefined });
  const tick = setInterval(() => {
    body.push('a');
    if (++sent < chunks) return;
    clearInterval(tick);
    body.push(null);
    onEnd(performance.now());
  }, everyMs);
  return { body, ended };
}

/** A pod that hands each connection to `handle`; its connections are closed at teardown. */
async function rawPod(t: Test, handle: (sock: net.Socket) => void): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    handle(sock);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((r) => srv.close(r));
  });
  return { ip: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, endpoint: {} } as Backend;
}

/** A pod that reads a chunked request to its last chunk, then answers `response` (or nothing). */
function chunkedPod(t: Test, response: string | undefined): Promise<Backend> {
  return rawPod(t, (sock) => {
    let text = '';
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.endsWith('\r\n0\r\n\r\n') && response !== undefined) sock.write(response);
    });
  });
}

for (const [name, make] of clients) {
  t.test(`${name}: a body uploaded for longer than the response timeout still gets its response`, async (t) => {
    // 8 chunks 100 ms apart: the upload takes ~800 ms, the response timeout is 300 ms. The pod
    // (rightly) answers only once it has the whole body.
    const backend = await chunkedPod(t, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const up = make({ headersTimeout: 300 });
    t.teardown(() => up.close());
    const r = await exchange(up, backend, 'POST', ['host', 'pod'], trickle(8, 100).body);
    t.same([r.status, r.body, r.error], [200, 'ok', undefined]);
  });

  t.test(`${name}: the response timeout counts from the end of the body: 504 when the pod never answers`, async (t) => {
    const backend = await chunkedPod(t, undefined);
    const up = make({ headersTimeout: 300 });
    t.teardown(() => up.close());
    const { body, ended } = trickle(5, 100);
    const r = await exchange(up, backend, 'POST', ['host', 'pod'], body);
    const after = performance.now() - (await ended);
    t.equal(upstreamErrorStatus(Object.assign(new Error(), { code: r.error })), 504, `timed out (${r.error})`);
    // No earlier than the timeout after the last byte, and not much later: our queues' slack is
    // 10 %, undici's headers timer ticks every ~500 ms (lib/util/timers.js, RESOLUTION_MS 1 s).
    t.ok(after >= 280 && after < (name === 'native' ? 1_000 : 2_000), `504 ${Math.round(after)} ms after the body ended`);
  });
}

/** The client's sockets as net.connect makes them (Node's `net.client.socket` diagnostics channel). */
function clientSockets(t: Test): net.Socket[] {
  const sockets: net.Socket[] = [];
  const onSocket = (m: unknown): void => void sockets.push((m as { socket: net.Socket }).socket);
  diagnostics.subscribe('net.client.socket', onSocket);
  t.teardown(() => diagnostics.unsubscribe('net.client.socket', onSocket));
  return sockets;
}

function listenerCounts(e: EventEmitter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of e.eventNames()) out[String(name)] = e.listenerCount(name);
  return out;
}

/** 4 MiB: more than loopback socket buffers take while the pod does not read, so the write waits for `drain`. */
const BIG = 4 * 1024 * 1024;

t.test('native: a request whose body write still waited for drain leaves nothing on the socket that goes back to the pool', async (t) => {
  // The pod answers as soon as the head is in, and reads nothing more for 300 ms: the response ends
  // (the body was all handed to the socket) while the write still waits for `drain`.
  let bodyBytes = 0;
  const backend = await rawPod(t, (sock) => {
    let heads = 0;
    let tail = '';
    sock.on('data', (d: Buffer) => {
      // A request line may straddle two reads: the tail of the last one is searched again.
      const text = tail + d.toString('latin1');
      for (let i = text.indexOf(' HTTP/1.1\r\n'); i >= 0; i = text.indexOf(' HTTP/1.1\r\n', i + 1)) {
        heads++;
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        if (heads === 2) {
          sock.pause();
          setTimeout(() => sock.resume(), 300);
        }
      }
      tail = text.slice(-11).replace(/^.* HTTP\/1\.1\r\n/s, '');
      for (const byte of d) if (byte === 0x78) bodyBytes++;
    });
  });
  const sockets = clientSockets(t);
  const up = new Http1Upstream({ connections: 1 });
  t.teardown(() => up.close());

  t.equal((await exchange(up, backend, 'GET', ['host', 'pod'])).status, 200);
  await new Promise((r) => setImmediate(r));
  const idle = listenerCounts(sockets[0]!);

  // The body is made and sent out of this scope: only the WeakRef stays here.
  const sent = ((): { ref: WeakRef<Readable>; got: Promise<Got> } => {
    const body = new Readable({ read: () => undefined });
    body.push(Buffer.alloc(BIG, 'x'));
    body.push(null);
    return { ref: new WeakRef(body), got: exchange(up, backend, 'POST', ['host', 'pod', 'content-length', String(BIG)], body) };
  })();
  t.equal((await sent.got).status, 200);
  await new Promise((r) => setImmediate(r));
  t.equal(bodyBytes < BIG, true, 'the pod has not read the whole body yet');
  t.same(up.connectionCounts.get(`127.0.0.1:${backend.port}`), 1, 'the connection is pooled');
  t.same(listenerCounts(sockets[0]!), idle, 'the pooled socket has the listeners of an idle one, no drain listener');
  await new Promise((r) => setImmediate(r));
  gc();
  t.equal(sent.ref.deref(), undefined, "nothing holds the ended request's body");

  t.equal((await exchange(up, backend, 'GET', ['host', 'pod'])).status, 200, 'the next request on it is answered');
  t.equal(bodyBytes, BIG, 'the pod got the whole body');
  t.equal(sockets.length, 1, 'all three on one connection');
  t.same(listenerCounts(sockets[0]!), idle);
});

for (const how of ['the pod resets', 'the pod stops reading', 'the exchange is aborted'] as const) {
  t.test(`native: ${how} while a body write waits for drain: no listener is left on the body or the socket`, async (t) => {
    const backend = await rawPod(t, (sock) =>
      sock.once('data', () => {
        sock.pause();
        if (how === 'the pod resets') setTimeout(() => sock.resetAndDestroy(), 100);
      }),
    );
    const sockets = clientSockets(t);
    const up = new Http1Upstream({ headersTimeout: 300 });
    t.teardown(() => up.close());
    // Half the body, and the client still sending: the request cannot end by itself.
    const body = new Readable({ read: () => undefined });
    body.push(Buffer.alloc(BIG, 'x'));
    const got = await new Promise<Got>((resolve) => {
      up.send(backend, { method: 'POST', path: '/p', headers: ['host', 'pod', 'content-length', String(2 * BIG)], body }, {
        onStart: (abort) => {
          if (how === 'the exchange is aborted') setTimeout(() => abort(Object.assign(new Error('client gone'), { code: 'TEST_ABORT' })), 100);
        },
        onHeaders: () => undefined,
        onData: () => undefined,
        onEnd: () => resolve({ status: 200, headers: [], body: '' }),
        onError: (err, unsent) => resolve({ status: 0, headers: [], body: '', error: (err as { code?: string }).code ?? err.message, unsent }),
      });
    });
    const expected = { 'the pod resets': /^(ECONNRESET|EPIPE|L7G_ERR_UPSTREAM_CLOSED)$/, 'the pod stops reading': /^L7G_ERR_UPSTREAM_HEADERS_TIMEOUT$/, 'the exchange is aborted': /^TEST_ABORT$/ }[how];
    t.match(got.error, expected, `failed: ${got.error}`);
    t.equal(sockets.length, 1);
    t.equal(sockets[0]!.listenerCount('drain'), 0, 'no drain listener on the dead socket');
    t.same(listenerCounts(body), {}, 'none of its listeners on the body');
    // The client goes on sending: nothing takes it any more, nothing is written anywhere.
    body.push(Buffer.alloc(1024, 'y'));
    body.push(null);
    await new Promise((r) => setTimeout(r, 50));
    t.equal(sockets.length, 1, 'no new connection for it');
  });
}

t.test('native: a pod that starts answering before the body is all sent owes its head within the response timeout from then', async (t) => {
  // The pod writes a status line at the first bytes and nothing more; the client keeps uploading
  // for 2 s. The timeout runs from the pod's first byte, not from the (much later) end of the body.
  const backend = await rawPod(t, (sock) => sock.once('data', () => sock.write('HTTP/1.1 200 OK\r\n')));
  const up = new Http1Upstream({ headersTimeout: 300 });
  t.teardown(() => up.close());
  const start = performance.now();
  const r = await exchange(up, backend, 'POST', ['host', 'pod'], trickle(20, 100).body);
  const took = performance.now() - start;
  t.equal(r.error, 'L7G_ERR_UPSTREAM_HEADERS_TIMEOUT');
  t.ok(took >= 280 && took < 1_200, `504 after ${Math.round(took)} ms, the upload still going`);
});

t.test('native: a body destroyed without an error mid-upload fails the request at once (no timer runs while the client is awaited)', async (t) => {
  const backend = await chunkedPod(t, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const up = new Http1Upstream({ headersTimeout: 5_000 });
  t.teardown(() => up.close());
  const body = new Readable({ read: () => undefined });
  body.push('a');
  setTimeout(() => body.destroy(), 100);
  const start = performance.now();
  const r = await exchange(up, backend, 'POST', ['host', 'pod'], body);
  const took = performance.now() - start;
  t.equal(r.error, 'L7G_ERR_CLIENT_ABORTED');
  t.ok(took < 1_000, `failed after ${Math.round(took)} ms, not at the 5 s response timeout`);
  t.same(listenerCounts(body), {}, 'none of its listeners left on the body');
});
