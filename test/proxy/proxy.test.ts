// End to end through `l7guard serve` as a real child process: real sockets, sources on distinct
// loopback addresses, recording backends. Each case checks the bytes the client got and what
// reached (or never reached) the backends.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { recordingBackend, type Recorded, type RecordingBackend } from '../helpers/backend.js';
import { serve, runCli, type Served } from '../helpers/serve.js';
import { starWarsCluster, clusterDir, copyFixture } from '../helpers/cluster.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const proxyIP = ip(1);
const HOST = 'deathstar.default.svc.cluster.local';
const root = process.getuid?.() === 0;

function req(method: string, path: string, host = HOST, extra = ''): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n${extra}\r\n`;
}

const DENIED = /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\nserver: l7guard\r\n\r\nAccess denied\r\n$/;

t.test('Star Wars through l7guard serve', { skip: root ? false : 'needs root to bind <pod-ip>:80' }, async (t) => {
  const journal: Recorded[] = [];
  const backends: RecordingBackend[] = [
    await recordingBackend('deathstar-b9qmw', ips.deathstar[0], 80, undefined, journal),
    await recordingBackend('deathstar-vhj8x', ips.deathstar[1], 80, undefined, journal),
  ];
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const seen = () => journal;
  const dir = clusterDir(starWarsCluster(ips));
  copyFixture('examples__minikube__sw_l3_l4_policy.yaml', dir, '10-policy.yaml');

  const start = async (files: string[]): Promise<Served> => {
    const s = await serve(['-f', ...files.flatMap((f, i) => (i === 0 ? [f] : ['-f', f])), '--listen', `${proxyIP}:0`, '--admin', `${proxyIP}:0`]);
    t.teardown(() => s.stop());
    return s;
  };

  await t.test('no policy: both ships land, round robin over both replicas', async (t) => {
    const noPolicyDir = clusterDir(starWarsCluster(ips));
    const s = await start([noPolicyDir]);
    const before = seen().length;
    for (const from of [ips.tiefighter, ips.xwing, ips.tiefighter, ips.xwing]) {
      const r = await rawExchange({ from, to: s.host, port: s.port, data: req('POST', '/v1/request-landing'), until: hasCompleteResponse });
      t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
      t.match(r.text, /deathstar-\w+ POST \/v1\/request-landing\n$/);
    }
    const got = seen().slice(before);
    t.equal(got.length, 4, 'four requests reached deathstar');
    t.equal(backends[0]!.seen.length, 2, 'replica 1 got half');
    t.equal(backends[1]!.seen.length, 2, 'replica 2 got half');
    t.equal(got[0]!.headers['host'], HOST, 'Host is passed through');
    t.equal(got[0]!.headers['x-forwarded-for'], ips.tiefighter, 'x-forwarded-for names the ship');
    t.equal(got[0]!.headers['x-forwarded-proto'], 'http');
    await s.stop();
  });

  await t.test('L3/L4 policy: tiefighter lands, xwing gets no bytes at all', async (t) => {
    const s = await start([dir]);
    const before = seen().length;
    const ok = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing'), until: hasCompleteResponse });
    t.match(ok.text, /^HTTP\/1\.1 200 OK\r\n/);
    const dropped = await rawExchange({ from: ips.xwing, to: s.host, port: s.port, data: req('POST', '/v1/request-landing') });
    t.equal(dropped.bytes.length, 0, 'xwing got zero bytes');
    t.equal(dropped.closed, true, 'and the connection was closed');
    const got = seen().slice(before);
    t.equal(got.length, 1, 'only the tiefighter request reached deathstar');
    const exhaust = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('PUT', '/v1/exhaust-port'), until: hasCompleteResponse });
    t.match(exhaust.text, /^HTTP\/1\.1 200 OK\r\n/, 'without L7 rules, PUT exhaust-port reaches deathstar');
    t.equal(seen().at(-1)!.method, 'PUT');
    await s.stop();
  });

  await t.test('L7 policy: POST lands, PUT exhaust-port gets the exact 403, xwing still dropped', async (t) => {
    const l7dir = clusterDir(starWarsCluster(ips));
    copyFixture('examples__minikube__sw_l3_l4_policy.yaml', l7dir, '10-l3l4.yaml');
    copyFixture('examples__minikube__sw_l3_l4_l7_policy.yaml', l7dir, '20-l7.yaml'); // same name rule1: replaces
    const s = await start([l7dir]);
    const before = seen().length;

    // Two requests on one keep-alive connection: the denial keeps the connection open.
    const both = req('PUT', '/v1/exhaust-port') + req('POST', '/v1/request-landing');
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: both, idleMs: 800 });
    const first = r.text.slice(0, r.text.indexOf('Access denied\r\n') + 15);
    t.match(first, DENIED, 'byte-exact cilium-envoy denial');
    t.match(r.text.slice(first.length), /^HTTP\/1\.1 200 OK\r\n[\s\S]*POST \/v1\/request-landing\n$/, 'next request on the same connection lands');
    t.equal(r.closed, false, 'connection kept open after a 403');

    const got = seen().slice(before);
    t.same(got.map((g) => `${g.method} ${g.url}`), ['POST /v1/request-landing'], 'the PUT never reached deathstar');

    const q = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing?x=1'), until: hasCompleteResponse });
    t.match(q.text, DENIED, 'path is matched with its query string (full match)');
    const lower = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('post', '/v1/request-landing'), until: hasCompleteResponse });
    t.match(lower.text, DENIED, 'methods are case-sensitive: a valid token no rule allows gets 403');
    const norm = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1//x/../request-landing'), until: hasCompleteResponse });
    t.match(norm.text, /^HTTP\/1\.1 200 OK\r\n/, 'merged slashes and dot segments are normalised before matching');
    t.equal(seen().at(-1)!.url, '/v1/request-landing', 'and the backend receives the normalised path');

    const x = await rawExchange({ from: ips.xwing, to: s.host, port: s.port, data: req('POST', '/v1/request-landing') });
    t.equal(x.bytes.length, 0, 'xwing still gets no bytes');
    t.equal(seen().length - before, 2, 'nothing else reached deathstar');
    await s.stop();
  });

  await t.test('destinations: clusterIP, short names, unknown names', async (t) => {
    const s = await start([clusterDir(starWarsCluster(ips))]);
    for (const host of ['deathstar', 'deathstar.default', 'DeathStar.default.svc', `${HOST}.`, ips.clusterIP, `${ips.clusterIP}:80`]) {
      const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing', host), until: hasCompleteResponse });
      t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, `Host: ${host}`);
    }
    const before = seen().length;
    const unknown = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing', 'alderaan.default.svc.cluster.local'), until: hasCompleteResponse });
    t.match(unknown.text, /^HTTP\/1\.1 421 Misdirected Request\r\n/);
    const badPort = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing', `${HOST}:8080`), until: hasCompleteResponse });
    t.match(badPort.text, /^HTTP\/1\.1 421 Misdirected Request\r\n/, 'a port the Service does not have names nothing');
    t.equal(seen().length, before, 'misdirected requests reach no backend');
    await s.stop();
  });

  await t.test('hop-by-hop headers are removed, the body is streamed', async (t) => {
    const s = await start([clusterDir(starWarsCluster(ips))]);
    const before = seen().length;
    const body = 'x'.repeat(100_000);
    const r = await rawExchange({
      from: ips.tiefighter,
      to: s.host,
      port: s.port,
      data: req('POST', '/v1/request-landing', HOST, `Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: ${body.length}\r\n`) + body,
      until: hasCompleteResponse,
    });
    t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
    const got = seen()[before]!;
    t.equal(got.body.length, body.length, 'the whole body reached deathstar');
    t.equal(got.headers['x-secret'], undefined, 'a header named by Connection is removed');
    t.equal(got.headers['keep-alive'], undefined, 'Keep-Alive is removed');
    await s.stop();
  });
});

t.test('an invalid policy at startup: exit non-zero, message on stderr, nothing served', async (t) => {
  const dir = clusterDir(starWarsCluster(ips), {
    '10-bad.yaml': readFileSync(new URL('../../../test/fixtures/manifests/examples__policies__l3__match-expressions__and-statement.yaml', import.meta.url), 'utf8'),
  });
  const r = await runCli(['serve', '-f', dir, '--listen', `${proxyIP}:0`, '--admin', `${proxyIP}:0`]);
  t.not(r.code, 0);
  t.match(r.stderr, /and-statement-policy/, 'names the object');
  t.match(r.stderr, /operator/, 'names the field');
  t.notMatch(r.stderr, /"msg":"listening"/, 'never listened');
});

t.test('/ready is 200 once loaded and bound; admin answers nothing else but GETs', async (t) => {
  const s = await serve(['-f', clusterDir(starWarsCluster(ips)), '--listen', `${proxyIP}:0`, '--admin', `${proxyIP}:0`]);
  t.teardown(() => s.stop());
  const ready = await fetch(`http://${s.admin}/ready`);
  t.equal(ready.status, 200);
  t.equal(await ready.text(), 'LIVE\n');
  const dump = (await (await fetch(`http://${s.admin}/config_dump`)).json()) as { revision: number; endpoints: unknown[] };
  t.equal(dump.revision, 1);
  t.equal(dump.endpoints.length, 4);
  const post = await fetch(`http://${s.admin}/ready`, { method: 'POST' });
  t.equal(post.status, 405);
  const code = await s.stop();
  t.equal(code, 0, 'SIGTERM exits cleanly');
});
