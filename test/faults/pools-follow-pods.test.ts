// Pools follow the pods: when a policy revision no longer has a pod's address (the pod left; under
// the Kubernetes source that is routine churn), the proxy's pooled keep-alive connections to it are
// closed — after the requests in flight on them have finished — instead of being kept until exit.
// Asserted from the pod's side: the connections it sees open, and what its held request answered.
// For both upstream clients (`--upstream-client native|undici`).
import t from 'tap';
import http from 'node:http';
import { join } from 'node:path';
import { loopbackBlock, rawExchange } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { untilTrue } from '../helpers/poll.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { atomicWrite, reloadStats, waitFor } from '../proxy/reload/helpers.js';

const PORT = 18931;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
/** Where the second deathstar pod is after it was replaced. */
const MOVED = ip(23);

interface Pod {
  /** TCP connections open right now. */
  readonly open: () => number;
  readonly served: string[];
  release(): void;
  close(): Promise<void>;
}

/** A keep-alive pod; `/v1/hold` is answered only on release(). */
async function pod(host: string): Promise<Pod> {
  const served: string[] = [];
  const held: http.ServerResponse[] = [];
  const srv = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    served.push(req.url ?? '');
    req.resume();
    if (req.url === '/v1/hold') held.push(res);
    else res.end('ok\n');
  });
  let open = 0;
  srv.on('connection', (s) => {
    open++;
    s.on('close', () => open--);
  });
  await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
  return {
    open: () => open,
    served,
    release: () => { for (const r of held.splice(0)) r.end('held answer\n'); },
    close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: deathstar\r\n\r\n`;

for (const client of ['native', 'undici'] as const) {
  t.test(`${client}: the pool of a pod that left drains, then closes`, async (t) => {
    const pods = await Promise.all([pod(ips.deathstar[0]), pod(ips.deathstar[1]), pod(MOVED)]);
    t.teardown(() => Promise.all(pods.map((p) => p.close())));
    const arrives = pods[2]!;
    const dir = clusterDir(starWarsCluster(ips, PORT));
    const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--upstream-client', client]);
    t.teardown(() => s.stop());
    const send = (path: string, idleMs = 3000) =>
      rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get(path), idleMs, until: (b) => /\r\n\r\n[\s\S]*\n$/.test(b.toString('latin1')) });

    // Round robin: one request to each pod, then a held one; the pod it reached is the one that leaves.
    for (let i = 0; i < 2; i++) t.match((await send('/v1/')).text, /^HTTP\/1\.1 200 /);
    const hold = send('/v1/hold', 20_000);
    await untilTrue(() => pods.some((p) => p.served.includes('/v1/hold')), 'the held request to reach a pod');
    const k = pods[0]!.served.includes('/v1/hold') ? 0 : 1;
    const [leaves, stays] = [pods[k]!, pods[1 - k]!];
    t.equal(leaves.open(), 1, 'the leaving pod has one pooled connection, busy with the held request');

    // The pod is replaced by one at another address: a new revision without the old address.
    const before = (await reloadStats(s.admin)).revision;
    const next = k === 0 ? [MOVED, ips.deathstar[1]] as const : [ips.deathstar[0], MOVED] as const;
    atomicWrite(join(dir, '00-cluster.yaml'), starWarsCluster({ ...ips, deathstar: next }, PORT));
    s.proc.kill('SIGHUP');
    await waitFor('the new revision', async () => ((await reloadStats(s.admin)).revision > before ? true : undefined));

    t.ok(leaves.open() >= 1, 'the connection with a request in flight stays open');
    leaves.release();
    t.match((await hold).text, /^HTTP\/1\.1 200 [\s\S]*held answer\n$/, 'the request in flight finished normally');
    await untilTrue(() => leaves.open() === 0, 'the drained pool to close its connections');
    t.equal(stays.open(), 1, 'the pod that stayed keeps its pooled connection');

    // New traffic goes to the pods of the new revision only.
    for (let i = 0; i < 2; i++) t.match((await send('/v1/')).text, /^HTTP\/1\.1 200 /);
    t.equal(arrives.served.length, 1, 'the new pod is served');
    t.equal(leaves.open(), 0, 'nothing reconnects to the pod that left');
  });
}
