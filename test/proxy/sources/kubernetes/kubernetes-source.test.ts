/**
 * `serve --kubernetes` against a test API server that speaks the Kubernetes wire protocol
 * (test/helpers/kube-api-server.ts, checked against the real kubectl in test/kubernetes/), with a
 * bearer token and the ClusterRole of deploy/rbac.yaml enforced: every request l7guard makes must
 * be one that role grants. Real `l7guard serve` process, real backends on loopback.
 */
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsyaml from 'js-yaml';
import t from 'tap';
import { buildCluster, deathstarPolicy, type StarWarsCluster } from '../../../../fixtures/star-wars.js';
import { adminRequest } from '../../../../proxy/admin/client.js';
import { recordingBackend, type RecordingBackend } from '../../../helpers/backend.js';
import { KubeApiServer, writeKubeconfig, type KubeObject } from '../../../helpers/kube-api-server.js';
import { loopbackBlock, rawExchange } from '../../../helpers/net.js';
import { until } from '../../../helpers/poll.js';
import { cliPath, repoRoot, runCli, serve, type Served } from '../../../helpers/serve.js';

const B = loopbackBlock();
const ADDRESSES = { deathstar: [B(4), B(5)], tiefighter: B(2), xwing: B(3), clusterIP: B(10) };
const POD_PORT = 18_000 + Math.floor(Math.random() * 20_000);
const TOKEN = 'l7guard-test-token';
const LANDING = { method: 'POST', path: '/v1/request-landing' };
const EXHAUST = { method: 'PUT', path: '/v1/exhaust-port' };

function kubeconfig(server: string): string {
  return writeKubeconfig(mkdtempSync(join(tmpdir(), 'l7guard-kube-')), server, TOKEN);
}

/** The Star Wars cluster as the API server holds it: Namespace, Service, Pods (scheduled on node-1). */
function clusterObjects(c: StarWarsCluster): KubeObject[] {
  const onNode = (m: Record<string, unknown>) => ({ ...m, spec: { ...(m['spec'] as object), nodeName: 'node-1' } });
  return [c.namespace!, c.service.manifest, ...c.pods.map((p) => onNode(p.manifest))] as unknown as KubeObject[];
}

async function ask(from: string, to: string, port: number, r: { method: string; path: string }): Promise<{ status: number; dropped: boolean }> {
  const res = await rawExchange({
    from, to, port, idleMs: 2000,
    data: `${r.method} ${r.path} HTTP/1.1\r\nHost: deathstar.default.svc.cluster.local\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
  });
  const m = /^HTTP\/1\.1 (\d{3})/.exec(res.text);
  return { status: m === null ? 0 : Number(m[1]), dropped: res.closed && res.bytes.length === 0 };
}

async function dump(admin: string): Promise<Record<string, unknown>> {
  return (await adminRequest(admin, 'GET', '/config_dump')).body;
}

async function metric(admin: string, name: string): Promise<number> {
  const text = String((await adminRequest(admin, 'GET', '/metrics')).body['message'] ?? '');
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

t.test('serve --kubernetes: the Star Wars demo driven through the API server', async (t) => {
  const role = KubeApiServer.roleFromManifest(readFileSync(join(repoRoot, 'deploy', 'rbac.yaml'), 'utf8'));
  const api = await KubeApiServer.start({ tokens: { [TOKEN]: 'system:serviceaccount:l7guard:l7guard' }, role });
  t.teardown(() => api.close());
  const cluster = buildCluster({ addresses: ADDRESSES, podPort: POD_PORT, namespaceObject: true });
  for (const o of clusterObjects(cluster)) api.apply(o);
  const backends: RecordingBackend[] = await Promise.all(ADDRESSES.deathstar.map((ip, i) => recordingBackend(`ds${i}`, ip, POD_PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));

  const proxy: Served = await serve([
    '--kubernetes', '--kubeconfig', kubeconfig(api.url), '--listen', `${ADDRESSES.clusterIP}:80`, '--admin', '127.0.0.1:0',
    '--node-name', 'node-1', '--kube-api-timeout', '2s',
  ]);
  t.teardown(() => proxy.stop());
  const { host, port, admin } = proxy;
  const revision = async () => Number((await dump(admin))['revision']);

  await t.test('no policy: everybody lands', async (t) => {
    t.equal((await ask(ADDRESSES.tiefighter, host, port, LANDING)).status, 200);
    t.equal((await ask(ADDRESSES.xwing, host, port, LANDING)).status, 200);
  });

  await t.test('the L3/L4 policy, created through the API, drops xwing', async (t) => {
    api.apply(deathstarPolicy(POD_PORT));
    await until(() => ask(ADDRESSES.xwing, host, port, LANDING), (r) => r.dropped, 'xwing dropped');
    t.equal((await ask(ADDRESSES.tiefighter, host, port, LANDING)).status, 200, 'tiefighter still lands');
    const d = await dump(admin);
    const objects = d['objects'] as { kind: string; name: string; source: string }[];
    const cnp = objects.find((o) => o.kind === 'CiliumNetworkPolicy');
    t.match(cnp?.source, /^k8s:CiliumNetworkPolicy\/default\/rule1@\d+$/, '/config_dump names the API object and its resourceVersion');
    t.match(objects.find((o) => o.kind === 'Pod')?.source, /^k8s:Pod\/default\/.+@\d+$/);
    const watches = api.requests.filter((r) => r.query['watch'] === 'true');
    t.ok(watches.length >= 7 && watches.every((r) => r.query['allowWatchBookmarks'] === 'true' && r.query['resourceVersion'] !== undefined),
      'every watch asks for bookmarks and starts from the resourceVersion of its list');
    t.notOk(api.requests.some((r) => r.path.includes('/secrets') && r.query['fieldSelector'] === undefined), 'no Secret is ever listed or watched without naming it');
  });

  await t.test('the L7 policy: exhaust-port is 403 and never reaches deathstar', async (t) => {
    api.apply(deathstarPolicy(POD_PORT, [LANDING]));
    await until(() => ask(ADDRESSES.tiefighter, host, port, EXHAUST), (r) => r.status === 403, 'exhaust-port denied');
    // The polling above sent PUTs while only the L3/L4 rule was in force: count from here.
    const puts = () => backends.reduce((n, b) => n + b.seen.filter((r) => r.method === 'PUT').length, 0);
    const before = puts();
    for (let i = 0; i < 4; i++) t.equal((await ask(ADDRESSES.tiefighter, host, port, EXHAUST)).status, 403);
    t.equal((await ask(ADDRESSES.tiefighter, host, port, LANDING)).status, 200);
    t.equal(puts(), before, 'no denied PUT reached deathstar');
  });

  await t.test('a Secret a policy names is watched by name, and its value enforced as it changes', async (t) => {
    const secret = (value: string) => ({
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'door-token', namespace: 'default' }, type: 'Opaque',
      data: { token: Buffer.from(value).toString('base64') },
    }) as unknown as KubeObject;
    api.apply(secret('s3cret'));
    const doorPolicy = (headerMatch: object, extra: object = {}) => ({
      apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'secret-door', namespace: 'default' },
      spec: {
        endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } },
        ingress: [{
          fromEndpoints: [{ matchLabels: { org: 'empire' } }],
          toPorts: [{ ports: [{ port: String(POD_PORT), protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/v1/door', headerMatches: [headerMatch], ...extra }] } }],
        }],
      },
    }) as unknown as KubeObject;
    api.apply(doorPolicy({ name: 'x-token', secret: { name: 'door-token' } }));
    const door = async (token: string | undefined) => {
      const res = await rawExchange({
        from: ADDRESSES.tiefighter, to: host, port, idleMs: 2000,
        data: `GET /v1/door HTTP/1.1\r\nHost: deathstar.default.svc.cluster.local\r\n${token === undefined ? '' : `x-token: ${token}\r\n`}connection: close\r\n\r\n`,
      });
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(res.text)?.[1] ?? 0);
    };
    await until(() => door('s3cret'), (s) => s === 200, 'the door opens with the Secret\'s value');
    t.equal(await door('wrong'), 403, 'another value is denied');
    t.equal(await door(undefined), 403, 'no header is denied');
    const secretRequests = api.requests.filter((r) => r.path.includes('/secrets'));
    t.ok(secretRequests.length >= 2, 'the Secret was listed and watched');
    t.ok(secretRequests.every((r) => r.path === '/api/v1/namespaces/default/secrets' && r.query['fieldSelector'] === 'metadata.name=door-token'), 'by namespace and name only');
    api.apply(secret('n3w'));
    await until(() => door('n3w'), (s) => s === 200, 'the new value opens it');
    t.equal(await door('s3cret'), 403, 'the old value no longer does');
    // An invalid update that no longer names the Secret: the version kept in force still needs it.
    const rejected0 = await metric(admin, 'l7guard_kubernetes_rejections_total');
    api.apply(doorPolicy({ name: 'x-token', value: 'plain' }, { bogusField: true }));
    await until(() => metric(admin, 'l7guard_kubernetes_rejections_total'), (n) => n > rejected0, 'the update rejected');
    t.equal(await door('n3w'), 200, 'the version in force still reads its Secret');
    t.equal(((await dump(admin))['kubernetes'] as { secrets: unknown[] }).secrets.length, 1, 'its watch is kept');
    api.delete('CiliumNetworkPolicy', 'default', 'secret-door');
    await until(() => dump(admin), (d) => (d['kubernetes'] as { secrets: unknown[] }).secrets.length === 0, 'no policy names it: its watch stops');
  });

  await t.test('an invalid CNP is rejected alone; its last valid version stays in force', async (t) => {
    const rejected0 = await metric(admin, 'l7guard_kubernetes_rejections_total');
    // rule1 updated with a field that does not validate: the version in force (the L7 rule) stays.
    const bad = jsyaml.load(deathstarPolicy(POD_PORT, [LANDING])) as { spec: { ingress: { toPorts: { rules: { http: Record<string, unknown>[] } }[] }[] } };
    bad.spec.ingress[0]!.toPorts[0]!.rules.http[0]!['bogusField'] = 1;
    api.apply(bad as unknown as KubeObject);
    // Another namespace's bad policy, absent before: as if absent.
    api.apply({
      apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'broken', namespace: 'other' },
      spec: { endpointSelector: { matchLabels: { app: 'x' } }, ingress: [{ toPorts: [{ ports: [{ port: 'eighty' }] }] }] },
    } as unknown as KubeObject);
    await until(() => metric(admin, 'l7guard_kubernetes_rejected_objects'), (n) => n === 2, 'two rejections');
    t.ok((await metric(admin, 'l7guard_kubernetes_rejections_total')) >= rejected0 + 2, 'counted');
    t.equal((await ask(ADDRESSES.tiefighter, host, port, EXHAUST)).status, 403, 'the previous L7 rule still denies');
    const k = (await dump(admin))['kubernetes'] as { rejected: { kind: string; namespace: string; name: string; problems: string[]; inForce: string | null }[] };
    const rule1 = k.rejected.find((r) => r.name === 'rule1');
    t.match(rule1?.problems.join(' '), /bogusField/, 'the problem names the field');
    t.match(rule1?.inForce, /^k8s:CiliumNetworkPolicy\/default\/rule1@\d+$/, 'the version in force is named');
    t.equal(k.rejected.find((r) => r.name === 'broken')?.inForce ?? null, null, 'the new bad policy has no version in force');
    t.ok(proxy.logs.some((l) => l['msg'] === 'kubernetes: object rejected; its version in force stays (none: it is absent)' && String(l['object']).includes('rule1')), 'logged');
    const get = await runCli(['policy', 'get', '--server', admin]);
    t.match(get.stdout, /rejected/i, '`l7guard policy get` shows the rejection');
    t.match(get.stdout, /broken/);

    // Meanwhile, valid changes still go through: the L3/L4 rule alone again (fixing rule1).
    api.apply(deathstarPolicy(POD_PORT));
    await until(() => ask(ADDRESSES.tiefighter, host, port, EXHAUST), (r) => r.status === 200, 'exhaust-port allowed again');
    await until(() => metric(admin, 'l7guard_kubernetes_rejected_objects'), (n) => n === 1, 'only "broken" still rejected');
    api.delete('CiliumNetworkPolicy', 'other', 'broken');
    await until(() => metric(admin, 'l7guard_kubernetes_rejected_objects'), (n) => n === 0, 'no rejection left');
    api.apply(deathstarPolicy(POD_PORT, [LANDING]));
    await until(() => ask(ADDRESSES.tiefighter, host, port, EXHAUST), (r) => r.status === 403, 'L7 again');
  });

  await t.test('deathstar replaced by a pod with a new IP keeps being served', async (t) => {
    const old = cluster.pods[0]!;
    const newIp = B(6);
    const fresh = await recordingBackend('ds-new', newIp, POD_PORT);
    t.teardown(() => fresh.close());
    api.delete('Pod', 'default', old.name);
    await backends[0]!.close();
    api.apply({ ...old.manifest, metadata: { ...(old.manifest['metadata'] as object), name: `${old.name}-new` }, spec: { ...(old.manifest['spec'] as object), nodeName: 'node-1' }, status: { phase: 'Running', podIP: newIp, podIPs: [{ ip: newIp }] } } as unknown as KubeObject);
    await until(async () => {
      const r = await Promise.all(Array.from({ length: 6 }, () => ask(ADDRESSES.tiefighter, host, port, LANDING)));
      return r.every((x) => x.status === 200) && fresh.seen.length > 0;
    }, (ok) => ok, 'the new replica serves');
    t.pass('every landing answered 200, the new pod among the backends');
  });

  await t.test('tiefighter moved to a new IP keeps its identity; the old IP is world', async (t) => {
    const tie = cluster.pods.find((p) => p.name === 'tiefighter')!;
    const movedIp = B(7);
    api.apply({ ...tie.manifest, spec: { ...(tie.manifest['spec'] as object), nodeName: 'node-1' }, status: { phase: 'Running', podIP: movedIp, podIPs: [{ ip: movedIp }] } } as unknown as KubeObject);
    await until(() => ask(movedIp, host, port, LANDING), (r) => r.status === 200, 'tiefighter lands from its new IP');
    t.equal((await ask(movedIp, host, port, EXHAUST)).status, 403, 'and is judged by the L7 rule');
    t.ok((await ask(ADDRESSES.tiefighter, host, port, LANDING)).dropped, 'the old IP is world now: dropped');
  });

  await t.test('a burst of 1,000 pod events becomes a few revisions', async (t) => {
    const before = await revision();
    for (let i = 0; i < 1000; i++) {
      api.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `burst-${i}`, namespace: 'default', labels: { app: 'burst' } }, spec: { nodeName: 'node-2' }, status: { phase: 'Running', podIP: `10.99.${i >> 8}.${i & 255}` } } as unknown as KubeObject);
    }
    const d = await until(() => dump(admin), (x) => (x['endpoints'] as unknown[]).length >= 1003, 'every burst pod known');
    const revisions = Number(d['revision']) - before;
    t.ok(revisions >= 1 && revisions <= 10, `1,000 events -> ${revisions} revision(s)`);
  });

  await t.test('the API server paused and its history compacted: enforcement goes on, then a relist', async (t) => {
    // The change below is to a CNP: once it is seen, the CNP collection must have been listed again.
    const lists = () => api.requests.filter((r) => r.path === '/apis/cilium.io/v2/ciliumnetworkpolicies' && r.query['watch'] !== 'true').length;
    const listsBefore = lists();
    api.pause();
    t.equal((await ask(B(7), host, port, EXHAUST)).status, 403, 'L7 still enforced while the API server is away');
    t.equal((await ask(B(7), host, port, LANDING)).status, 200);
    await until(() => dump(admin), (d) => (d['kubernetes'] as { connected: boolean }).connected === false, 'the source reports the lost connection', { timeoutMs: 15_000 });
    t.equal(await metric(admin, 'l7guard_kubernetes_watch_connected{kind="Pod",name=""}'), 0, 'metric: Pod watch disconnected');
    api.apply(deathstarPolicy(POD_PORT)); // made while the proxy cannot see it
    api.compact();
    api.resume();
    await until(() => ask(B(7), host, port, EXHAUST), (r) => r.status === 200, 'the change made while away is seen after the relist', { timeoutMs: 20_000 });
    t.ok(lists() > listsBefore, 'the history was gone: the proxy listed again');
    await until(() => dump(admin), (d) => (d['kubernetes'] as { connected: boolean }).connected === true, 'connected again');
  });
});

t.test('serve --kubernetes fails closed until every kind has listed once', async (t) => {
  const api = await KubeApiServer.start({});
  t.teardown(() => api.close());
  const cluster = buildCluster({ addresses: ADDRESSES, podPort: POD_PORT + 1, namespaceObject: true });
  for (const o of clusterObjects(cluster)) api.apply(o);
  api.pause();
  const adminPort = 20_000 + Math.floor(Math.random() * 20_000);
  const listen = `${B(20)}:80`;
  const proc = spawn(process.execPath, [cliPath, 'serve', '--kubernetes', '--kubeconfig', kubeconfig(api.url), '--listen', listen, '--admin', `127.0.0.1:${adminPort}`, '--kube-api-timeout', '1s'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.teardown(() => { proc.kill('SIGKILL'); });
  const admin = `127.0.0.1:${adminPort}`;
  const ready = () => adminRequest(admin, 'GET', '/ready').then((r) => r.status, () => 0);
  await until(ready, (s) => s === 503, '/ready answers 503', { timeoutMs: 20_000 }).catch((err: Error) => {
    throw new Error(`${err.message}; serve stderr:\n${stderr}`);
  });
  const d = await dump(admin);
  t.equal(d['revision'], 0, 'no revision');
  t.ok((d['kubernetes'] as { synced: boolean }).synced === false, '/config_dump: not synced');
  const refused = await rawExchange({ from: ADDRESSES.tiefighter, to: B(20), port: 80, data: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', idleMs: 500 }).then(() => false, () => true);
  t.ok(refused, 'the data-plane port is not open');
  api.resume();
  await until(ready, (s) => s === 200, '/ready once synced', { timeoutMs: 20_000 });
  t.match(stderr, /"msg":"ready"/);
});


t.test('sidecar mode learns its own pod from the API', async (t) => {
  const role = KubeApiServer.roleFromManifest(readFileSync(join(repoRoot, 'deploy', 'rbac.yaml'), 'utf8'));
  const api = await KubeApiServer.start({ tokens: { [TOKEN]: 'system:serviceaccount:default:deathstar-l7guard' }, role });
  t.teardown(() => api.close());
  const port = POD_PORT + 2;
  const cluster = buildCluster({ addresses: { ...ADDRESSES, clusterIP: B(11) }, podPort: port, namespaceObject: true });
  for (const o of clusterObjects(cluster)) api.apply(o);
  api.apply(deathstarPolicy(port, [LANDING]));
  const me = cluster.pods[0]!;
  const backends = await Promise.all(ADDRESSES.deathstar.map((ip, i) => recordingBackend(`sc${i}`, ip, port)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const proxy = await serve([
    '--kubernetes', '--kubeconfig', kubeconfig(api.url), '--mode', 'sidecar', '--pod', `default/${me.name}`,
    '--listen', `${B(30)}:${port}`, '--admin', '127.0.0.1:0',
  ]);
  t.teardown(() => proxy.stop());
  for (let i = 0; i < 3; i++) t.equal((await ask(ADDRESSES.tiefighter, proxy.host, proxy.port, LANDING)).status, 200, 'landing reaches the pod');
  t.equal((await ask(ADDRESSES.tiefighter, proxy.host, proxy.port, EXHAUST)).status, 403, 'the L7 rule of the pod, from the API');
  t.ok((await ask(ADDRESSES.xwing, proxy.host, proxy.port, LANDING)).dropped, 'xwing dropped');
  t.same(backends.map((b) => b.seen.length), [3, 0], 'every request went to the sidecar\'s own pod');
  // The pod's labels change at the API: the sidecar judges by the new ones.
  const meta = me.manifest['metadata'] as { labels: Record<string, string> };
  api.apply({ ...me.manifest, metadata: { ...meta, labels: { ...meta.labels, class: 'decommissioned' } }, spec: { ...(me.manifest['spec'] as object), nodeName: 'node-1' } } as unknown as KubeObject);
  await until(() => ask(ADDRESSES.tiefighter, proxy.host, proxy.port, EXHAUST), (r) => r.status === 200, 'the CNP no longer selects it: exhaust-port allowed');
});
