// serve --workers 2 (proxy/cluster/): real processes. The debug header L7GUARD_DEBUG_WORKER_HEADER=1
// tells which worker wrote each response; fresh connections spread over both workers (round robin).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { adminRequest } from '../../../proxy/admin/client.js';
import { recordingBackend } from '../../helpers/backend.js';
import { clusterDir, starWarsCluster } from '../../helpers/cluster.js';
import { loopbackBlock, rawExchange } from '../../helpers/net.js';
import { serve } from '../../helpers/serve.js';
import { captureClientHello, tlsExchange, tlsPolicy, tlsService } from '../../helpers/tls.js';
import { createCA, issueCert, tlsSecretYaml } from '../../../certs/index.js';
import { deathstarPolicy, waitFor } from '../reload/helpers.js';

const B = loopbackBlock();
const ips = { tiefighter: B(2), xwing: B(3), deathstar: [B(4), B(5)] as const, clusterIP: B(10) };
const POD_PORT = 18080;
const LANDING = { method: 'POST', path: '/v1/request-landing' };
const EXHAUST = { method: 'PUT', path: '/v1/exhaust-port' };

interface Answer { readonly status: number; readonly worker: string | undefined; readonly closed: boolean; readonly bytes: number; readonly localPort: number }

/** One request on its own connection (so round robin spreads them). */
async function ask(from: string, host: string, port: number, method: string, path: string): Promise<Answer> {
  const r = await rawExchange({
    from, to: host, port, idleMs: 2000,
    data: `${method} ${path} HTTP/1.1\r\nHost: deathstar.default.svc.cluster.local\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  });
  const status = /^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1];
  const worker = /\r\nx-l7guard-worker: (\d+)\r\n/i.exec(r.text)?.[1];
  return { status: status === undefined ? 0 : Number(status), worker, closed: r.closed, bytes: r.bytes.length, localPort: 0 };
}

/** `n` requests in parallel batches; returns every answer. */
async function many(n: number, from: string, host: string, port: number, method: string, path: string): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < n; i += 8) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => ask(from, host, port, method, path)))));
  }
  return out;
}

const byWorker = (as: readonly Answer[]) => {
  const m: Record<string, number[]> = {};
  for (const a of as) (m[a.worker ?? 'none'] ??= []).push(a.status);
  return m;
};

async function metric(admin: string, line: RegExp): Promise<number> {
  const r = await adminRequest(admin, 'GET', '/metrics');
  const text = String(r.body['message'] ?? '');
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? 0 : Number(m.split(' ').pop());
}

t.test('serve --workers 2', async (t) => {
  const backends = await Promise.all(ips.deathstar.map((ip, i) => recordingBackend(`ds${i}`, ip, POD_PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, POD_PORT), { 'rule1.yaml': deathstarPolicy(POD_PORT, [LANDING]) });
  const flowsFile = join(dir, 'flows.ndjson');
  process.env['L7GUARD_DEBUG_WORKER_HEADER'] = '1';
  const proxy = await serve(['-f', dir, '--listen', `${ips.clusterIP}:0`, '--admin', '127.0.0.1:0', '--workers', '2', '--flows', flowsFile], 60_000);
  delete process.env['L7GUARD_DEBUG_WORKER_HEADER'];
  let stopped = false;
  t.teardown(async () => { if (!stopped) await proxy.stop(); });
  const { host, port, admin } = proxy;

  t.equal((await adminRequest(admin, 'GET', '/ready')).status, 200, '/ready once both workers built the revision');
  const workers = async () => (await adminRequest(admin, 'GET', '/workers')).body as {
    revision: number; in_sync: boolean; workers: { slot: number; pid: number | null; revision: number; serving: boolean; restarts: number }[];
  };
  const w0 = await workers();
  t.equal(w0.workers.length, 2);
  t.ok(w0.in_sync && w0.workers.every((w) => w.serving && w.revision === w0.revision && w.pid !== null), 'both serving the primary revision');
  t.not(w0.workers[0]!.pid, w0.workers[1]!.pid);

  await t.test('the Star Wars verdicts, on both workers', async (t) => {
    const received0 = await metric(admin, /^cilium_policy_l7_total\{rule="received"/);
    const landing = await many(16, ips.tiefighter, host, port, LANDING.method, LANDING.path);
    const exhaust = await many(16, ips.tiefighter, host, port, EXHAUST.method, EXHAUST.path);
    t.same(Object.keys(byWorker(landing)).sort(), ['0', '1'], `landing answered by both workers: ${JSON.stringify(byWorker(landing))}`);
    t.ok(landing.every((a) => a.status === 200), 'tiefighter lands');
    t.same(Object.keys(byWorker(exhaust)).sort(), ['0', '1'], 'exhaust-port answered by both workers');
    t.ok(exhaust.every((a) => a.status === 403), 'exhaust-port is 403 on both');
    t.notOk(backends.some((b) => b.seen.some((r) => r.method === 'PUT')), 'no PUT reached deathstar');
    const xwing = await many(4, ips.xwing, host, port, LANDING.method, LANDING.path);
    t.ok(xwing.every((a) => a.closed && a.bytes === 0), 'xwing: dropped, zero bytes');

    // Metrics: the primary's /metrics counts what both workers judged (32 L7 requests, 4 drops).
    const received = await waitFor('metrics from both workers', async () => {
      const n = await metric(admin, /^cilium_policy_l7_total\{rule="received"/);
      return n - received0 >= 32 ? n - received0 : undefined;
    });
    t.equal(received, 32, 'cilium_policy_l7_total{received} = requests over both workers');
    t.equal(await metric(admin, /^cilium_policy_l7_total\{rule="denied"/), 16, 'denied = the 16 exhaust-port requests');
    t.ok(await metric(admin, /^hubble_drop_total\{reason="POLICY_DENIED"/) >= 4 * 2, 'L3/L4 drops counted (policy-verdict + drop each)');

    // Flows from both workers reach the primary's ring buffer and the --flows file.
    const flows = (await adminRequest(admin, 'GET', '/flows?last=4096')).body;
    const text = String(flows['message'] ?? '');
    const l7 = text.split('\n').filter((l) => l.includes('"l7"') && l.includes('exhaust-port'));
    t.ok(l7.length >= 16, `exhaust-port flows in /flows: ${l7.length}`);
    await waitFor('flow file', () => (readFileSync(flowsFile, 'utf8').split('\n').filter((l) => l.includes('exhaust-port') && l.includes('DROPPED')).length >= 16 ? true : undefined));
  });

  await t.test('apply and delete are in force on every worker when the call returns', async (t) => {
    // A stopped worker cannot acknowledge: the apply must not answer until it can.
    const stoppedPid = (await workers()).workers[1]!.pid!;
    process.kill(stoppedPid, 'SIGSTOP');
    let answered = false;
    const pending = adminRequest(admin, 'PUT', '/v1/cnp/default/rule1', deathstarPolicy(POD_PORT, [LANDING, EXHAUST]))
      .finally(() => { answered = true; });
    await waitFor('worker 0 to acknowledge the new revision', async () => {
      const w = await workers();
      return w.workers[0]!.revision > w0.revision ? true : undefined;
    });
    t.notOk(answered, 'no answer while worker 1 (stopped) has not acknowledged');
    process.kill(stoppedPid, 'SIGCONT');
    const put = await pending;
    t.equal(put.status, 200, JSON.stringify(put.body));
    t.equal(put.body['result'], 'configured', 'the API object overrides the file one');
    const rev = put.body['revision'];
    const after = await many(16, ips.tiefighter, host, port, EXHAUST.method, EXHAUST.path);
    t.same(Object.keys(byWorker(after)).sort(), ['0', '1'], 'both workers answered');
    t.ok(after.every((a) => a.status === 200), `exhaust-port allowed everywhere right after apply: ${JSON.stringify(byWorker(after))}`);
    const w = await workers();
    t.ok(w.workers.every((x) => x.revision === rev), 'every worker acknowledged the applied revision');

    const del = await adminRequest(admin, 'DELETE', '/v1/cnp/default/rule1');
    t.equal(del.status, 200, JSON.stringify(del.body));
    const back = await many(16, ips.tiefighter, host, port, EXHAUST.method, EXHAUST.path);
    t.same(Object.keys(byWorker(back)).sort(), ['0', '1'], 'both workers answered');
    t.ok(back.every((a) => a.status === 403), `denied again everywhere right after delete: ${JSON.stringify(byWorker(back))}`);
  });

  await t.test('a killed worker is replaced and serves the current revision', async (t) => {
    const before = await workers();
    const victim = before.workers[1]!;
    process.kill(victim.pid!, 'SIGKILL');
    const now = await waitFor('replacement worker', async () => {
      const w = await workers();
      const s = w.workers[1]!;
      return s.pid !== null && s.pid !== victim.pid && s.serving && w.in_sync ? w : undefined;
    }, 20_000);
    t.equal(now.workers[1]!.restarts, 1, 'restart counted');
    t.equal(now.workers[1]!.revision, before.revision, 'the replacement built the revision in force');
    t.equal((await adminRequest(admin, 'GET', '/ready')).status, 200, 'ready again');
    const res = await many(16, ips.tiefighter, host, port, EXHAUST.method, EXHAUST.path);
    t.same(Object.keys(byWorker(res)).sort(), ['0', '1'], 'both slots answer again');
    t.ok(res.every((a) => a.status === 403), 'and judge by the same policy');
  });

  await t.test('SIGTERM drains every worker and exits 0', async (t) => {
    const pids = (await workers()).workers.map((w) => w.pid!);
    stopped = true;
    t.equal(await proxy.stop(), 0, 'exit 0');
    await sleep(200);
    for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
  });
});

t.test('serve --workers 2 --health-check-interval: every worker skips a dead pod', async (t) => {
  const HC_PORT = POD_PORT + 1;
  const [dead, alive] = await Promise.all(ips.deathstar.map((ip, i) => recordingBackend(`hc${i}`, ip, HC_PORT)));
  t.teardown(() => Promise.all([dead!.close(), alive!.close()]));
  const dir = clusterDir(starWarsCluster(ips, HC_PORT), { 'rule1.yaml': deathstarPolicy(HC_PORT, [LANDING]) });
  process.env['L7GUARD_DEBUG_WORKER_HEADER'] = '1';
  const proxy = await serve([
    '-f', dir, '--listen', `${B(20)}:0`, '--admin', '127.0.0.1:0', '--workers', '2',
    '--health-check-interval', '200ms', '--health-check-unhealthy-threshold', '2',
    // Passive ejection out of the way: only active checks can keep requests off the dead pod.
    '--outlier-failures', '1000',
  ], 60_000).finally(() => delete process.env['L7GUARD_DEBUG_WORKER_HEADER']);
  t.teardown(() => proxy.stop());

  await dead!.close();
  const deadKey = `${ips.deathstar[0]}:${HC_PORT}`;
  const down = () => new Set(proxy.logs.filter((l) => l['msg'] === 'health check: backend unhealthy' && l['backend'] === deadKey).map((l) => l['worker']));
  await waitFor('both workers to mark the pod down', () => (down().size === 2 ? true : undefined), 10_000).catch(() => undefined);
  t.equal(down().size, 2, 'each worker marked the dead pod down by its own probes');

  const errorsBefore = proxy.logs.filter((l) => l['msg'] === 'upstream error').length;
  const answers = await many(16, ips.tiefighter, proxy.host, proxy.port, LANDING.method, LANDING.path);
  t.same(answers.map((a) => a.status), answers.map(() => 200), 'every request answered 200');
  t.equal(new Set(answers.map((a) => a.worker)).size, 2, 'by both workers');
  t.equal(alive!.seen.length, 16, 'all by the live pod');
  t.equal(proxy.logs.filter((l) => l['msg'] === 'upstream error').length, errorsBefore, 'no worker even tried to connect to the dead pod');
});

t.test('serve --workers 2 --listen-tls: TLS termination on every worker', async (t) => {
  const TLS_PORT = POD_PORT + 2;
  const SNI = 'deathstar-tls.default.svc.cluster.local';
  const ca = await createCA();
  const leaf = await issueCert(ca, { name: 'deathstar-tls', dns: [SNI, 'deathstar-tls'] });
  const backends = await Promise.all(ips.deathstar.map((ip, i) => recordingBackend(`tls${i}`, ip, TLS_PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, TLS_PORT) + tlsService(B(51), TLS_PORT), {
    'secret.yaml': tlsSecretYaml('deathstar-tls', 'default', leaf),
    'policy.yaml': tlsPolicy(TLS_PORT, SNI, undefined),
  });
  process.env['L7GUARD_DEBUG_WORKER_HEADER'] = '1';
  const proxy = await serve(['-f', dir, '--listen-tls', `${B(21)}:0`, '--admin', '127.0.0.1:0', '--workers', '2'], 60_000)
    .finally(() => delete process.env['L7GUARD_DEBUG_WORKER_HEADER']);
  t.teardown(() => proxy.stop());

  const request = (method: string, path: string) => tlsExchange({
    from: ips.tiefighter, to: proxy.host, port: proxy.port, servername: SNI, ca: ca.cert,
    data: `${method} ${path} HTTP/1.1\r\nHost: ${SNI}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
  });
  const worker = (text: string) => /\r\nx-l7guard-worker: (\d+)\r\n/i.exec(text)?.[1];
  const landing = await Promise.all(Array.from({ length: 12 }, () => request(LANDING.method, LANDING.path)));
  t.ok(landing.every((r) => r.error === undefined && /^HTTP\/1\.1 200 /.test(r.text)), 'landing: 200 through TLS');
  t.same([...new Set(landing.map((r) => worker(r.text)))].sort(), ['0', '1'], 'answered by both workers');
  const exhaust = await Promise.all(Array.from({ length: 12 }, () => request(EXHAUST.method, EXHAUST.path)));
  t.ok(exhaust.every((r) => /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*\r\n\r\nAccess denied\r\n$/.test(r.text)), 'exhaust-port: 403 inside TLS');
  t.same([...new Set(exhaust.map((r) => worker(r.text)))].sort(), ['0', '1'], 'denied by both workers');
  t.notOk(backends.some((b) => b.seen.some((r) => r.method === 'PUT')), 'no PUT reached deathstar');
  const hello = await captureClientHello(SNI);
  const xwing = await rawExchange({ from: ips.xwing, to: proxy.host, port: proxy.port, data: hello, idleMs: 2000 });
  t.ok(xwing.closed && xwing.bytes.length === 0, 'xwing: zero bytes, not even a TLS alert');
});
