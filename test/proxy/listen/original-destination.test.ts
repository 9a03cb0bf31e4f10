import t from 'tap';
import net from 'node:net';
import { parseInterception, parseMode, parseRedirect } from '../../../proxy/listen/original-destination.js';
import { recordingBackend, type RecordingBackend } from '../../helpers/backend.js';
import { clusterDir, starWarsCluster } from '../../helpers/cluster.js';
import { hasCompleteResponse, loopbackBlock, rawExchange } from '../../helpers/net.js';
import { runCli, serve, type Served } from '../../helpers/serve.js';

t.test('parseRedirect', async (t) => {
  t.same(parseRedirect('0.0.0.0:15080=10.96.0.10:80').dest, { ip: '10.96.0.10', port: 80 });
  t.same(parseRedirect('0.0.0.0:15080=10.96.0.10:80').listen, { host: '0.0.0.0', port: 15080 });
  t.same(parseRedirect('[::]:15080=[fd00::a]:8080').dest, { ip: 'fd00::a', port: 8080 });
  t.same(parseRedirect('127.0.0.1:15001=80').dest, { ip: undefined, port: 80 }, 'PORT alone: the sidecar form');
  for (const bad of ['0.0.0.0:15080', '0.0.0.0=10.0.0.1:80', '0.0.0.0:1=deathstar:80', '0.0.0.0:1=10.0.0.1:0', '0.0.0.0:1=10.0.0.1:70000', '0.0.0.0:1=']) {
    t.throws(() => parseRedirect(bad), { code: 'L7G_ERR_INTERCEPTION' }, bad);
  }
});

t.test('parseMode and parseInterception', async (t) => {
  t.same(parseMode(undefined, undefined), { kind: 'node' });
  t.same(parseMode('sidecar', 'default/deathstar-1'), { kind: 'sidecar', namespace: 'default', name: 'deathstar-1' });
  t.throws(() => parseMode('sidecar', undefined), /--pod NAMESPACE\/NAME/);
  t.throws(() => parseMode('sidecar', 'deathstar'), /--pod NAMESPACE\/NAME/);
  t.throws(() => parseMode('sidecar', 'Default/x'), /--pod NAMESPACE\/NAME/);
  t.throws(() => parseMode('node', 'default/x'), /only valid with --mode sidecar/);
  t.throws(() => parseMode('gateway', undefined), /"node" or "sidecar"/);
  t.throws(() => parseInterception({ redirect: ['0.0.0.0:1=80'] }), /only valid with --mode sidecar/);
  t.equal(parseInterception({ mode: 'sidecar', pod: 'default/x', redirect: ['0.0.0.0:1=80'] }).redirects.length, 1);
});

/** A port free on every given address right now. */
async function freePort(hosts: readonly string[]): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer().once('error', reject).listen(0, hosts[0], () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const ok = await Promise.all(hosts.map((h) => new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false)).listen(port, h, () => s.close(() => resolve(true)));
    })));
    if (ok.every(Boolean)) return port;
  }
}

const ip = loopbackBlock();
const ips = { tiefighter: ip(21), xwing: ip(22), deathstar: [ip(11), ip(12)] as const, clusterIP: ip(100) };
const POD1 = 'deathstar-8c4c77fb7-b9qmw';

function listeners(s: Served): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of s.logs) if (l['msg'] === 'listening') out.set(String(l['redirect'] ?? 'plain'), String(l['address']));
  return out;
}

async function request(addr: string, head: string): Promise<{ status: number; text: string }> {
  const m = /^(.*):(\d+)$/.exec(addr)!;
  const r = await rawExchange({ from: ips.tiefighter, to: m[1]!, port: Number(m[2]), data: head, until: hasCompleteResponse });
  return { status: Number(/^HTTP\/1\.\d (\d{3})/.exec(r.text)?.[1] ?? 0), text: r.text };
}

const post = (host: string | undefined, version = '1.1') =>
  `POST /v1/request-landing HTTP/${version}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Content-Length: 0\r\n\r\n`;

t.test('serve with --redirect and --mode sidecar (loopback)', async (t) => {
  const port = await freePort([...ips.deathstar, ip(1), ip(2)]);
  const dir = clusterDir(starWarsCluster(ips, port));
  const backends: RecordingBackend[] = [];
  for (const [i, addr] of ips.deathstar.entries()) backends.push(await recordingBackend(`ds${i + 1}`, addr, port));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const seen = () => backends.map((b) => b.seen.length);

  await t.test('node mode: a Service clusterIP:port redirect outranks Host', async (t) => {
    const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--redirect', `${ip(1)}:0=${ips.clusterIP}:80`, '--admin', `${ip(1)}:0`]);
    t.teardown(() => s.stop());
    const l = listeners(s);
    const redirect = l.get(`${ip(1)}:0=${ips.clusterIP}:80`)!;
    t.ok(redirect, 'the redirect listener logged its spec');
    const before = seen();
    for (const host of ['tatooine.example', ips.clusterIP, 'deathstar']) {
      const r = await request(redirect, post(host));
      t.equal(r.status, 200, `Host: ${host} reaches deathstar`);
    }
    const after = seen();
    t.equal(after[0]! + after[1]! - before[0]! - before[1]!, 3, 'three requests reached the replicas');
    t.ok(after[0]! > before[0]! && after[1]! > before[1]!, 'balanced over both replicas');
    t.equal((await request(redirect, post(undefined, '1.0'))).status, 200, 'HTTP/1.0 without Host: the original destination suffices');
    t.equal((await request(l.get('plain')!, post('tatooine.example'))).status, 421, 'the plain listener still resolves Host: unknown -> 421');
  });

  await t.test('node mode: a Pod IP:port redirect pins the pod', async (t) => {
    const spec = `${ip(1)}:0=${ips.deathstar[1]}:${port}`;
    const s = await serve(['-f', dir, '--redirect', spec, '--admin', `${ip(1)}:0`]);
    t.teardown(() => s.stop());
    const l = listeners(s);
    t.notOk(l.has('plain'), 'with only --redirect, no default 0.0.0.0:80 listener');
    const before = seen();
    for (let i = 0; i < 3; i++) t.equal((await request(l.get(spec)!, post('deathstar'))).status, 200);
    t.same(seen(), [before[0], before[1]! + 3], 'all three went to the second replica, whatever Host said');
  });

  await t.test('sidecar mode: every connection goes to the pod', async (t) => {
    // A --redirect with PORT only, and a plain --listen whose own port is the app port.
    const s = await serve(['-f', dir, '--mode', 'sidecar', '--pod', `default/${POD1}`,
      '--redirect', `${ip(2)}:0=${port}`, '--listen', `${ip(2)}:${port}`, '--admin', `${ip(2)}:0`]);
    t.teardown(() => s.stop());
    const l = listeners(s);
    const before = seen();
    t.equal((await request(l.get(`${ip(2)}:0=${port}`)!, post('deathstar'))).status, 200, 'Service name');
    t.equal((await request(l.get(`${ip(2)}:0=${port}`)!, post(ips.deathstar[1]))).status, 200, "the other replica's IP");
    t.equal((await request(l.get('plain')!, post('tatooine.example'))).status, 200, 'plain listener, bogus Host');
    t.same(seen(), [before[0]! + 3, before[1]], 'all three reached the sidecar pod only');
  });

  await t.test('load failures', async (t) => {
    const missing = await runCli(['serve', '-f', dir, '--mode', 'sidecar', '--pod', 'default/nope', '--listen', `${ip(3)}:0`, '--admin', `${ip(3)}:0`]);
    t.not(missing.code, 0, 'sidecar pod absent: non-zero exit');
    t.match(missing.stderr, /--pod default\/nope: no such Pod/);
    const foreign = await runCli(['serve', '-f', dir, '--mode', 'sidecar', '--pod', `default/${POD1}`,
      '--redirect', `${ip(3)}:0=${ips.deathstar[1]}:${port}`, '--admin', `${ip(3)}:0`]);
    t.not(foreign.code, 0, 'sidecar redirect to another pod: non-zero exit');
    t.match(foreign.stderr, /is not an IP of Pod/);
    const unknown = await runCli(['serve', '-f', dir, '--redirect', `${ip(3)}:0=10.255.0.1:80`, '--admin', `${ip(3)}:0`]);
    t.not(unknown.code, 0, 'redirect to an unknown address: non-zero exit');
    t.match(unknown.stderr, /no Service clusterIP:port or Pod IP/);
    const usage = await runCli(['serve', '-f', dir, '--redirect', `${ip(3)}:0=80`]);
    t.not(usage.code, 0, 'PORT-only redirect in node mode: usage error');
    t.match(usage.stderr, /only valid with --mode sidecar/);
  });
});
