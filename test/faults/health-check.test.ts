// Active health checks per pod (proxy/upstream/health-check.ts) combined with passive ejection
// (proxy/upstream/outlier.ts): a dead or sick pod is taken out before any request pays for it, comes back
// by itself, every pod down is an immediate 503, and a passing probe ends a passive ejection early.
// Outcomes only: what clients got, what pods saw, whether a connect to a dead pod was attempted.
import t from 'tap';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { recordingBackend, type RecordingBackend } from '../helpers/backend.js';
import { serve, type Served } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { adminRequest } from '../../proxy/admin/client.js';

const HOST = 'deathstar.default.svc.cluster.local';
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };

interface Active { backend: string; healthy: boolean }
async function health(s: Served): Promise<{ active: Active[]; outlier: { backend: string }[] }> {
  const dump = (await adminRequest(s.admin, 'GET', '/config_dump')).body as { upstream_health: { active: Active[]; outlier: { backend: string }[] } };
  return dump.upstream_health;
}
async function healthyOf(s: Served, podIP: string, port: number): Promise<boolean | undefined> {
  return (await health(s)).active.find((a) => a.backend === `${podIP}|${port}`)?.healthy;
}
const upstreamErrors = (s: Served): number => s.logs.filter((l) => l['msg'] === 'upstream error').length;
async function send(s: Served, path: string) {
  return rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get(path), until: hasCompleteResponse });
}

t.test('TCP checks: a dead pod is skipped before any request tries it, recovers, all down is 503 at once', async (t) => {
  const PORT = 18601;
  let a: RecordingBackend = await recordingBackend('a', ips.deathstar[0], PORT);
  const b = await recordingBackend('b', ips.deathstar[1], PORT);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const s = await serve([
    '-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`,
    '--health-check-interval', '100ms', '--health-check-timeout', '300ms',
    '--health-check-unhealthy-threshold', '2', '--health-check-healthy-threshold', '2',
    // Passive ejection out of the way: only the active checks can keep requests off a dead pod.
    '--outlier-failures', '1000',
  ]);
  t.teardown(() => s.stop());

  const dump = (await adminRequest(s.admin, 'GET', '/config_dump')).body as Record<string, Record<string, Record<string, unknown>>>;
  t.same([dump['timeouts']?.['health-check-interval']?.['ms'], dump['timeouts']?.['health-check-interval']?.['default_ms']], [100, 0], '/config_dump: --health-check-interval, default off');
  t.same([dump['limits']?.['health-check-unhealthy-threshold']?.['value'], dump['limits']?.['health-check-unhealthy-threshold']?.['default']], [2, 3]);
  t.same([dump['limits']?.['health-check-healthy-threshold']?.['value'], dump['limits']?.['health-check-healthy-threshold']?.['default']], [2, 2]);
  t.equal(dump['limits']?.['health-check-path']?.['value'], null, 'no path: TCP connect only');
  await until(async () => (await health(s)).active.length === 2);
  t.same((await health(s)).active.map((x) => x.healthy), [true, true], 'both pods probed and healthy');

  await a.close();
  await until(async () => (await healthyOf(s, ips.deathstar[0], PORT)) === false);
  t.pass('pod a marked unhealthy');
  const errorsBefore = upstreamErrors(s);
  const bBefore = b.seen.length;
  for (let i = 0; i < 6; i++) t.equal(status((await send(s, `/down-${i}`)).text), 200, `request ${i} served`);
  t.equal(b.seen.length - bBefore, 6, 'all by pod b');
  t.equal(upstreamErrors(s), errorsBefore, 'and no connect to the dead pod was even attempted');

  a = await recordingBackend('a', ips.deathstar[0], PORT);
  await until(async () => (await healthyOf(s, ips.deathstar[0], PORT)) === true);
  t.pass('pod a healthy again after 2 passing probes (automatic recovery)');
  for (let i = 0; i < 6; i++) t.equal(status((await send(s, `/back-${i}`)).text), 200);
  t.ok(a.seen.some((r) => r.url.startsWith('/back-')), 'pod a serves again');

  await Promise.all([a.close(), b.close()]);
  await until(async () => (await health(s)).active.every((x) => !x.healthy));
  const errorsAllDown = upstreamErrors(s);
  const r = await send(s, '/all-down');
  t.equal(status(r.text), 503, 'every pod down: 503');
  t.ok(r.text.endsWith('no healthy upstream\r\n'), 'at once, with no connect attempted (not "upstream connect error")');
  t.equal(upstreamErrors(s), errorsAllDown);
  t.equal(s.proc.exitCode, null);
});

t.test('HTTP checks: a pod failing its health path is skipped; a passing probe ends a passive ejection', async (t) => {
  const PORT = 18602;
  let sick = true;
  const responder = (pod: 'a' | 'b') => (r: { url: string }, res: import('node:http').ServerResponse): void => {
    if (r.url === '/healthz') {
      res.writeHead(pod === 'a' && sick ? 503 : 200, { 'content-length': '3' }).end('hc\n');
      return;
    }
    res.writeHead(200, { 'content-length': '3' }).end('ok\n');
  };
  const respond = responder('a');
  let a = await recordingBackend('a', ips.deathstar[0], PORT, respond);
  const b = await recordingBackend('b', ips.deathstar[1], PORT, responder('b'));
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const s = await serve([
    '-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(2)}:0`, '--admin', `${ip(2)}:0`,
    '--health-check-interval', '100ms', '--health-check-path', '/healthz',
    '--health-check-unhealthy-threshold', '2', '--health-check-healthy-threshold', '1',
    '--outlier-failures', '1', '--outlier-ejection-time', '10m',
  ]);
  t.teardown(() => s.stop());

  await until(async () => (await healthyOf(s, ips.deathstar[0], PORT)) === false);
  t.pass('pod a (accepting TCP, answering 503 on /healthz) marked unhealthy');
  const probe = a.seen.find((r) => r.url === '/healthz');
  t.equal(probe?.method, 'GET', 'the probe is a GET of --health-check-path');
  t.equal(probe?.headers['user-agent'], 'l7guard-health-check');
  for (let i = 0; i < 4; i++) t.equal(status((await send(s, `/sick-${i}`)).text), 200);
  t.notOk(a.seen.some((r) => r.url.startsWith('/sick-')), 'no request reached the sick pod');
  t.ok(b.seen.filter((r) => r.url.startsWith('/sick-')).length === 4, 'pod b took them all');

  sick = false;
  await until(async () => (await healthyOf(s, ips.deathstar[0], PORT)) === true);
  await until(async () => status((await send(s, '/well')).text) === 200 && a.seen.some((r) => r.url === '/well'));
  t.pass('recovered: pod a serves again');

  // Passive: one refused connect ejects pod a for 10 minutes...
  await a.close();
  await until(async () => {
    await send(s, '/eject');
    return (await health(s)).outlier.some((o) => o.backend === `${ips.deathstar[0]}|${PORT}`);
  });
  t.pass('pod a passively ejected after a refused connect');
  // ...but once it answers its probe again, the ejection ends (Envoy's successful_active_health_check_uneject_host).
  a = await recordingBackend('a', ips.deathstar[0], PORT, respond);
  await until(async () => (await send(s, '/again')) && a.seen.some((r) => r.url === '/again'));
  t.pass('pod a serves again long before its 10 minute ejection would have ended');
});

async function until(cond: () => boolean | Promise<unknown>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
