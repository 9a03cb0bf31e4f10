// The native upstream client against raw TCP pods that write exactly the bytes under test:
// what reached the pod (head and body framing), what the sink got, and when a connection is
// reused. The framings and failures every client must agree on run against undici too.
import t, { type Test } from 'tap';
import net from 'node:net';
import { Readable } from 'node:stream';
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
