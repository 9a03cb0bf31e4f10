// A request waiting in the upstream pool for a free connection is not yet on the wire. When its
// client leaves, or the front end answers it meanwhile (the client-body timeout's 408), it must
// never be sent to the pod afterwards: nobody waits for that answer, and the client was told the
// request failed (docs/hardening.md#retries-and-outliers: no fault may turn a failure into a forward). Asserted on what reached
// the pod, by request id, in order.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { loopbackBlock, rawExchange } from '../helpers/net.js';
import { serve, type Served } from '../helpers/serve.js';
import { adminText } from '../helpers/admin.js';
import { until } from '../helpers/poll.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const PORT = 18911;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const HOST = `${ips.deathstar[0]}:${PORT}`;

/** Resolves once the proxy judged (and so handed to the pool) a request for `path`. */
async function forwarded(s: Served, path: string): Promise<void> {
  const judged = (text: string): boolean => text.split('\n').some((l) => l.includes('"REQUEST"') && l.includes(`${HOST}${path}"`) && l.includes('"FORWARDED"'));
  await until(() => adminText(s.admin, '/flows'), judged, `the request flow of ${path}`, { intervalMs: 20 });
}

interface Pod {
  readonly seen: string[];
  /** Resolves with the id of the next request to arrive. */
  next(): Promise<string>;
  /** Answers every held request. */
  release(): void;
}

/** One pod; a request for /v1/hold is answered only on release(). */
async function pod(t: Test): Promise<Pod> {
  const seen: string[] = [];
  const held: http.ServerResponse[] = [];
  const waiting: ((id: string) => void)[] = [];
  const srv = http.createServer((req, res) => {
    const id = req.url ?? '';
    seen.push(id);
    for (const f of waiting.splice(0)) f(id);
    req.resume();
    if (id === '/v1/hold') held.push(res);
    else res.end(`ok ${id}\n`);
  });
  await new Promise<void>((resolve) => srv.listen(PORT, ips.deathstar[0], resolve));
  t.teardown(() => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }));
  return {
    seen,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    release: () => { for (const r of held.splice(0)) r.end('late\n'); },
  };
}

async function proxy(t: Test): Promise<Served> {
  // No policy: every request is allowed. One upstream connection per pod: a second concurrent
  // request queues behind the first.
  const s = await serve([
    '-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`,
    '--upstream-connections', '1', '--client-body-timeout', '400ms', '--response-timeout', '60s',
  ]);
  t.teardown(() => s.stop());
  return s;
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;

/**
 * The pod's only connection is busy with /v1/hold; a second request is queued behind it and then
 * ended by `endQueued` (its client gone, or answered by the proxy). Once /v1/hold completes, the
 * next request the pod sees must be /v1/after, queued after it: in a FIFO queue, a request still
 * going out would come first.
 */
async function queuedThenEnded(t: Test, endQueued: (s: Served) => Promise<void>): Promise<void> {
  const p = await pod(t);
  const s = await proxy(t);
  const arrivedHold = p.next();
  const hold = rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/v1/hold'), idleMs: 20_000, until: (b) => b.includes('late') });
  t.equal(await arrivedHold, '/v1/hold', 'the only connection is busy');
  await endQueued(s);
  const arrived = p.next();
  const after = rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/v1/after'), until: (b) => b.includes('ok /v1/after') });
  await forwarded(s, '/v1/after');
  p.release();
  t.equal(status((await hold).text), 200);
  t.equal(await arrived, '/v1/after', 'the next request the pod sees is the one queued after it');
  t.equal(status((await after).text), 200);
  t.same(p.seen, ['/v1/hold', '/v1/after'], 'the ended request never reached the pod');
  // Ours, not the pod's: no upstream error is logged, and no 502 is reported for it.
  t.same(s.logs.filter((l) => l['msg'] === 'upstream error'), [], 'no upstream error logged');
  const flows = await adminText(s.admin, '/flows');
  t.notMatch(flows, /"code":502/, 'no 502 response flow');
  t.notMatch(await adminText(s.admin, '/metrics'), /l7guard_upstream_errors_total\{[^}]*\} [1-9]/, 'no upstream error counted');
}

t.test('the client left while its request was queued', (t) =>
  queuedThenEnded(t, async (s) => {
    const gone = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter });
    gone.on('error', () => undefined);
    gone.write(get('/v1/abandoned'));
    await forwarded(s, '/v1/abandoned');
    // A reset, not a FIN: the front end keeps half-closed clients (allowHalfOpen), as HAProxy does
    // without `option abortonclose`; a reset is a client that is gone.
    gone.resetAndDestroy();
    await new Promise((r) => gone.once('close', r));
  }));

// A guard more than a proof: here undici also drops the request itself, because its body stream
// is destroyed with the 408; the client-left case above is the one the proxy's check decides.
t.test('the front end answered (408) while the request was queued', (t) =>
  queuedThenEnded(t, async (s) => {
    // Half a body, then silence: the client-body timeout answers 408 while the request is queued.
    const slow = await rawExchange({
      from: ips.tiefighter, to: s.host, port: s.port, idleMs: 5_000,
      data: `POST /v1/slow-body HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 10\r\n\r\n01234`,
    });
    t.equal(status(slow.text), 408, 'the queued request got its answer from the proxy');
  }));
