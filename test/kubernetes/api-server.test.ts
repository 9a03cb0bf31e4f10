/**
 * test/helpers/kube-api-server.ts is only worth testing a Kubernetes client against if it answers as
 * a real apiserver does. (a) The wire protocol, read with raw node:http: list and watch shapes,
 * resourceVersion semantics, bookmarks, 410 Gone, selectors, tokens and RBAC with deploy/rbac.yaml.
 * (b) The real kubectl, over https with a CA it must verify, lists, gets and watches through it.
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import https from 'node:https';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createCA, issueCert } from '../../certs/index.js';
import { kubeconfigText, KubeApiServer, type KubeApiServerOptions, type KubeObject } from '../helpers/kube-api-server.js';
import { until, untilTrue } from '../helpers/poll.js';
import { repoRoot } from '../helpers/serve.js';

const SA = 'system:serviceaccount:l7guard:l7guard';
const RBAC_YAML = readFileSync(join(repoRoot, 'deploy', 'rbac.yaml'), 'utf8');
const MAIN = fileURLToPath(new URL('../helpers/kube-api-server-main.js', import.meta.url));

type Body = Record<string, unknown>;
interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Body;
}
interface WatchEvent {
  readonly type: string;
  readonly object: KubeObject & { code?: number; message?: string; reason?: string; status?: string };
}

const pod = (namespace: string, name: string, labels: Record<string, string> = {}, nodeName = 'node-a'): KubeObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { nodeName, containers: [{ name: 'app', image: 'nginx' }] },
});
const names = (body: Body): string[] => (body.items as KubeObject[]).map((o) => (o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`));

async function startServer(t: Test, opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const server = await KubeApiServer.start(opts);
  t.teardown(() => server.close());
  return server;
}

function request(base: string, path: string, opts: { token?: string; method?: string; ca?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const get = base.startsWith('https:') ? https.request : http.request;
    const req = get(new URL(path, base), {
      method: opts.method ?? 'GET', agent: false,
      headers: opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` },
      ...(opts.ca !== undefined && { ca: opts.ca }),
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A watch as a client reads it: events as they arrive, and how the stream ended. */
class WatchStream {
  readonly events: WatchEvent[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  /** 'clean': the chunked body ended; 'broken': the connection dropped mid-stream. */
  end: 'open' | 'clean' | 'broken' = 'open';
  private readonly req: http.ClientRequest;

  constructor(base: string, path: string, token?: string) {
    this.req = http.get(new URL(path, base), { agent: false, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      const lines = createInterface({ input: res });
      lines.on('line', (line) => this.events.push(JSON.parse(line) as WatchEvent));
      // readline re-emits the response's errors: a dropped stream is an outcome here, not a crash.
      lines.on('error', () => (this.end = 'broken'));
      res.on('end', () => (this.end = 'clean'));
    });
    this.req.on('error', () => (this.end = 'broken'));
  }

  /** Waits for the response headers. */
  async opened(): Promise<this> {
    await untilTrue(() => this.status !== 0, 'watch response headers');
    return this;
  }

  /** Waits until `n` events have arrived and returns them all. */
  async upTo(n: number): Promise<WatchEvent[]> {
    return until(() => this.events, (e) => e.length >= n, `${n} watch events (have ${this.events.length})`);
  }

  async ended(): Promise<string> {
    await untilTrue(() => this.end !== 'open', 'the watch stream to end');
    return this.end;
  }

  close(): void {
    this.req.destroy();
  }
}

async function openWatch(t: Test, base: string, path: string, token?: string): Promise<WatchStream> {
  const w = new WatchStream(base, path, token);
  t.teardown(() => w.close());
  return w.opened();
}

const brief = (e: WatchEvent) => `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`;

t.test('discovery: /version, /api, /api/v1, /apis, /apis/{group}/{version}', async (t) => {
  const s = await startServer(t);
  const version = await request(s.url, '/version');
  t.match(version.body, { major: '1', minor: String, gitVersion: /^v1\./ });
  t.match((await request(s.url, '/api')).body, { kind: 'APIVersions', versions: ['v1'] });
  const core = await request(s.url, '/api/v1');
  t.match(core.body, { kind: 'APIResourceList', groupVersion: 'v1' });
  const byName = new Map((core.body.resources as Body[]).map((r) => [r.name, r]));
  t.same(byName.get('pods'), { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'], shortNames: ['po'] });
  t.match(byName.get('namespaces'), { namespaced: false, kind: 'Namespace', shortNames: ['ns'] });
  t.same([...byName.keys()].sort(), ['namespaces', 'pods', 'secrets', 'services']);
  const groups = await request(s.url, '/apis');
  t.match(groups.body, { kind: 'APIGroupList', apiVersion: 'v1' });
  t.same((groups.body.groups as Body[]).map((g) => g.name).sort(), ['cilium.io', 'discovery.k8s.io', 'networking.k8s.io']);
  t.match((groups.body.groups as Body[]).find((g) => g.name === 'cilium.io'), { preferredVersion: { groupVersion: 'cilium.io/v2', version: 'v2' } });
  const cilium = await request(s.url, '/apis/cilium.io/v2');
  t.same((cilium.body.resources as Body[]).map((r) => [r.name, r.kind, r.namespaced, r.shortNames]), [
    ['ciliumnetworkpolicies', 'CiliumNetworkPolicy', true, ['cnp', 'ciliumnp']],
    ['ciliumclusterwidenetworkpolicies', 'CiliumClusterwideNetworkPolicy', false, ['ccnp']],
  ]);
  t.match((await request(s.url, '/apis/cilium.io')).body, { kind: 'APIGroup', name: 'cilium.io', versions: [{ groupVersion: 'cilium.io/v2' }] });
  t.match((await request(s.url, '/apis/discovery.k8s.io/v1')).body, { resources: [{ name: 'endpointslices', kind: 'EndpointSlice' }] });
  const unknown = await request(s.url, '/apis/apps/v1');
  t.equal(unknown.status, 404);
  t.match(unknown.body, { kind: 'Status', reason: 'NotFound', code: 404 });
});

t.test('list: List kind and resourceVersion, items as a real apiserver returns them, single GET, NotFound', async (t) => {
  const s = await startServer(t);
  s.apply(pod('default', 'b'));
  s.apply(pod('prod', 'c'));
  s.apply(pod('default', 'a'));
  const applied = s.apply(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-rule, namespace: default}
spec: {endpointSelector: {matchLabels: {app: web}}}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: cw}
spec: {endpointSelector: {}}
`);
  t.same(applied.map((o) => o.metadata.resourceVersion), ['4', '5'], 'every write bumps the one counter');
  t.equal(s.resourceVersion, '5');
  const fromList = s.apply('apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: prod}}\n- {apiVersion: v1, kind: Service, metadata: {name: web}}\n');
  t.same(fromList.map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}@${o.metadata.resourceVersion}`), ['Namespace -/prod@6', 'Service default/web@7'],
    'a List contributes its items; a namespaced object without a namespace goes to "default", as kubectl apply does');
  t.same(names((await request(s.url, '/api/v1/namespaces')).body), ['prod']);
  t.match((await request(s.url, '/api/v1/namespaces/prod')).body, { kind: 'Namespace', metadata: { name: 'prod' } });

  const all = await request(s.url, '/api/v1/pods');
  t.equal(all.status, 200);
  t.match(all.headers['content-type'], /^application\/json/);
  t.match(all.body, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '7' } });
  t.same(names(all.body), ['default/a', 'default/b', 'prod/c'], 'in key order, every namespace');
  const item = (all.body.items as Body[])[0]!;
  t.notOk('kind' in item || 'apiVersion' in item, 'built-in list items carry no kind/apiVersion');
  t.match(item.metadata, { resourceVersion: '3', uid: /^[0-9a-f-]{36}$/, creationTimestamp: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ });

  t.same(names((await request(s.url, '/api/v1/namespaces/default/pods')).body), ['default/a', 'default/b']);
  t.same(names((await request(s.url, '/api/v1/namespaces/default/pods?limit=1')).body), ['default/a', 'default/b'], 'limit: everything, no continue');
  const cnps = await request(s.url, '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies');
  t.match(cnps.body, { kind: 'CiliumNetworkPolicyList', apiVersion: 'cilium.io/v2', items: [{ kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2' }] });
  t.match((await request(s.url, '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies/cw')).body, { kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' } });
  t.match((await request(s.url, '/api/v1/namespaces/default/pods/a')).body, { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'a' } });

  const missing = await request(s.url, '/api/v1/namespaces/default/pods/zzz');
  t.equal(missing.status, 404);
  t.same(missing.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "zzz" not found', reason: 'NotFound', details: { name: 'zzz', kind: 'pods' }, code: 404 });
  t.match((await request(s.url, '/apis/cilium.io/v2/namespaces/prod/ciliumnetworkpolicies/l7-rule')).body, {
    message: 'ciliumnetworkpolicies.cilium.io "l7-rule" not found', details: { group: 'cilium.io' },
  });
  t.equal((await request(s.url, '/api/v1/pods/a')).status, 404, 'a namespaced object has no URL outside its namespace');

  const before = s.get('Pod', 'default', 'a')!;
  const updated = s.apply(pod('default', 'a', { v: '2' }));
  t.equal(updated.metadata.resourceVersion, '8');
  t.equal(updated.metadata.uid, before.metadata.uid, 'an update keeps uid');
  t.equal(updated.metadata.creationTimestamp, before.metadata.creationTimestamp);
  t.equal(s.delete('Pod', 'default', 'a')?.metadata.resourceVersion, '9', 'a delete is a write');
  t.equal(s.get('Pod', 'default', 'a'), undefined);
  t.equal(s.delete('Pod', 'default', 'a'), undefined);
  t.throws(() => s.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } }), /not served/);
  t.throws(() => s.apply({ apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' } }), /served as cilium.io\/v2/);

  const post = await request(s.url, '/api/v1/namespaces/default/pods', { method: 'POST' });
  t.equal(post.status, 405);
  t.match(post.body, { kind: 'Status', reason: 'MethodNotAllowed', code: 405 });
});

t.test('watch: replay after a resourceVersion, then live events, each with kind and apiVersion', async (t) => {
  const s = await startServer(t);
  s.apply(pod('default', 'a'));
  const from = s.resourceVersion;
  s.apply(pod('default', 'b', { app: 'b' }));
  s.apply(pod('default', 'a', { v: '2' }));
  s.apply(pod('prod', 'elsewhere'));
  s.delete('Pod', 'default', 'b');

  const w = await openWatch(t, s.url, `/api/v1/namespaces/default/pods?watch=true&resourceVersion=${from}`);
  t.equal(w.status, 200);
  t.match(w.headers['content-type'], /^application\/json/);
  t.equal(w.headers['transfer-encoding'], 'chunked');
  const replayed = await w.upTo(3);
  t.same(replayed.map(brief), ['ADDED b@2', 'MODIFIED a@3', 'DELETED b@5'], 'every event after the version, in this namespace only');
  t.match(replayed[2]!.object, { kind: 'Pod', apiVersion: 'v1', metadata: { labels: { app: 'b' } } }, 'DELETED carries the final state');
  t.ok(replayed.every((e) => e.object.kind === 'Pod' && e.object.apiVersion === 'v1'));

  s.apply(pod('prod', 'elsewhere-2'));
  s.apply(pod('default', 'c'));
  s.apply(pod('default', 'c', { v: '2' }));
  s.delete('Pod', 'default', 'c');
  t.same((await w.upTo(6)).slice(3).map(brief), ['ADDED c@7', 'MODIFIED c@8', 'DELETED c@9']);
  t.equal(s.watchCount(), 1);

  const fresh = await openWatch(t, s.url, '/api/v1/pods?watch=1');
  t.same((await fresh.upTo(3)).map(brief), ['ADDED a@3', 'ADDED elsewhere@4', 'ADDED elsewhere-2@6'], 'no resourceVersion: the current state as ADDED first');
  s.apply(pod('default', 'd'));
  t.equal((await fresh.upTo(4))[3]!.type, 'ADDED');
  t.equal((await w.upTo(7))[6]!.object.metadata.name, 'd');
  const zero = await openWatch(t, s.url, '/api/v1/namespaces/prod/pods?watch=true&resourceVersion=0');
  t.same((await zero.upTo(2)).map(brief), ['ADDED elsewhere@4', 'ADDED elsewhere-2@6'], 'resourceVersion=0 too');

  const cnp = await openWatch(t, s.url, '/apis/cilium.io/v2/ciliumnetworkpolicies?watch=true');
  s.apply({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p', namespace: 'default' }, spec: {} });
  t.match((await cnp.upTo(1))[0], { type: 'ADDED', object: { kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2' } });
});

t.test('BOOKMARK on demand and on a timer, only to watches that allow them; timeoutSeconds ends a watch', async (t) => {
  const s = await startServer(t);
  s.apply(pod('default', 'a'));
  const withBookmarks = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=1&allowWatchBookmarks=true');
  const without = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=1');
  s.bookmark();
  t.same((await withBookmarks.upTo(1))[0], { type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: '1' } } });
  s.apply(pod('default', 'b'));
  t.same((await without.upTo(1)).map(brief), ['ADDED b@2'], 'no bookmark without allowWatchBookmarks');
  t.same((await withBookmarks.upTo(2)).map((e) => e.type), ['BOOKMARK', 'ADDED']);

  const timed = await startServer(t, { bookmarkIntervalMs: 50 });
  const w = await openWatch(t, timed.url, '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies?watch=true&allowWatchBookmarks=1');
  t.match((await w.upTo(2)).map((e) => e.object), [
    { kind: 'CiliumClusterwideNetworkPolicy', apiVersion: 'cilium.io/v2', metadata: { resourceVersion: '0' } },
    { kind: 'CiliumClusterwideNetworkPolicy' },
  ], 'the timer sends them');

  const short = await openWatch(t, s.url, '/api/v1/pods?watch=true&timeoutSeconds=1');
  t.equal(await short.ended(), 'clean', 'timeoutSeconds ends the stream with its last chunk, not a reset');
  t.same(short.events.map(brief), ['ADDED a@1', 'ADDED b@2']);
});

t.test('selectors filter lists and watches as the apiserver does', async (t) => {
  const s = await startServer(t);
  s.apply(pod('default', 'a', { app: 'web', tier: 'front' }, 'node-a'));
  s.apply(pod('default', 'b', { app: 'web', tier: 'back' }, 'node-b'));
  s.apply(pod('default', 'c', { app: 'db' }, 'node-a'));
  s.apply(pod('prod', 'd', {}, 'node-b'));
  const list = async (query: string) => names((await request(s.url, `/api/v1/pods?${query}`)).body).map((n) => n.split('/')[1]).join(',');
  const labels: [string, string][] = [
    ['app=web', 'a,b'], ['app==web', 'a,b'], ['app!=web', 'c,d'], ['tier', 'a,b'], ['!tier', 'c,d'],
    ['app in (web,db)', 'a,b,c'], ['app notin (web)', 'c,d'], ['app=web,tier=back', 'b'], ['app in (web, db),!tier', 'c'],
  ];
  for (const [selector, want] of labels) t.equal(await list(`labelSelector=${encodeURIComponent(selector)}`), want, `labelSelector ${selector}`);
  const fields: [string, string][] = [
    ['metadata.name=a', 'a'], ['metadata.namespace=prod', 'd'], ['spec.nodeName=node-a', 'a,c'],
    ['spec.nodeName!=node-a', 'b,d'], ['metadata.namespace=default,spec.nodeName=node-b', 'b'], ['metadata.name==c', 'c'],
  ];
  for (const [selector, want] of fields) t.equal(await list(`fieldSelector=${encodeURIComponent(selector)}`), want, `fieldSelector ${selector}`);

  const bad = await request(s.url, `/api/v1/pods?labelSelector=${encodeURIComponent('app in web')}`);
  t.equal(bad.status, 400);
  t.match(bad.body, { kind: 'Status', reason: 'BadRequest', code: 400 });
  t.match((await request(s.url, '/api/v1/pods?fieldSelector=spec.foo%3Dx')).body, { code: 400, message: 'field label not supported: spec.foo' });
  t.equal((await request(s.url, '/api/v1/services?fieldSelector=spec.nodeName%3Dx')).status, 400, 'spec.nodeName is a Pod field only');

  const w = await openWatch(t, s.url, `/api/v1/pods?watch=true&labelSelector=app%3Dweb&resourceVersion=${s.resourceVersion}`);
  s.apply(pod('default', 'c', { app: 'web' }, 'node-a'));
  s.apply(pod('default', 'a', { app: 'other' }, 'node-a'));
  s.apply(pod('prod', 'd', { app: 'none' }, 'node-b'));
  s.delete('Pod', 'default', 'b');
  const events = await w.upTo(3);
  t.same(events.map(brief), ['ADDED c@5', 'DELETED a@6', 'DELETED b@8'], 'entering the selector is ADDED, leaving it DELETED');
  t.same(events[1]!.object.metadata.labels, { app: 'web', tier: 'front' }, 'leaving: the last content that matched, at the new version');
  const byField = await openWatch(t, s.url, '/api/v1/pods?watch=true&fieldSelector=metadata.name%3Dd');
  t.same((await byField.upTo(1)).map(brief), ['ADDED d@7']);
});

t.test('410 Gone after compaction: an ERROR event by default, an HTTP 410 Status with expiredAs: status', async (t) => {
  for (const expiredAs of ['event', 'status'] as const) {
    const s = await startServer(t, { expiredAs });
    s.apply(pod('default', 'a'));
    s.apply(pod('default', 'b'));
    s.compact();
    s.apply(pod('default', 'c'));
    const gone = {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (2)', reason: 'Expired', code: 410,
    };
    const w = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=1');
    if (expiredAs === 'event') {
      t.equal(w.status, 200, 'a real apiserver answers a watch 200, then the error');
      t.equal(await w.ended(), 'clean');
      t.same(w.events, [{ type: 'ERROR', object: gone }]);
    } else {
      const r = await request(s.url, '/api/v1/pods?watch=true&resourceVersion=1');
      t.equal(r.status, 410);
      t.same(r.body, gone);
    }
    const resumed = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=2');
    t.same((await resumed.upTo(1)).map(brief), ['ADDED c@3'], `${expiredAs}: from the compaction point on, history is there`);
    t.equal(names((await request(s.url, '/api/v1/pods')).body).length, 3, 'a relist still works');
  }
});

t.test('closeWatches ends streams cleanly; pause hangs requests and breaks watches; resume answers', async (t) => {
  const s = await startServer(t);
  s.apply(pod('default', 'a'));
  const w = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=1');
  s.closeWatches();
  t.equal(await w.ended(), 'clean', 'as a server-side timeout');
  await untilTrue(() => s.watchCount() === 0, 'no open watch');

  const broken = await openWatch(t, s.url, '/api/v1/pods?watch=true&resourceVersion=1');
  await untilTrue(() => s.watchCount() === 1, 'the watch to register');
  s.pause();
  t.equal(await broken.ended(), 'broken', 'a paused server breaks open watches');
  let answered = false;
  const pending = request(s.url, '/api/v1/pods').then((r) => {
    answered = true;
    return r;
  });
  const hung = new WatchStream(s.url, '/api/v1/pods?watch=true&resourceVersion=1');
  t.teardown(() => hung.close());
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(answered, 'no answer while paused');
  t.equal(hung.status, 0, 'not even headers for a watch');
  s.apply(pod('default', 'b'));
  s.resume();
  const r = await pending;
  t.equal(r.status, 200);
  t.same(names(r.body), ['default/a', 'default/b']);
  t.same((await (await hung.opened()).upTo(1)).map(brief), ['ADDED b@2'], 'the held watch starts on resume');
});

t.test('bearer tokens, and deploy/rbac.yaml\'s ClusterRole enforced as RBAC does', async (t) => {
  const role = KubeApiServer.roleFromManifest(RBAC_YAML);
  t.same([...new Set(role.flatMap((r) => r.verbs))].sort(), ['get', 'list', 'watch'], 'read-only');
  t.same(role.flatMap((r) => (r.resources ?? []).map((res) => `${r.apiGroups?.join('|')}/${res}`)).sort(), [
    '/namespaces', '/pods', '/secrets', '/services', 'cilium.io/ciliumclusterwidenetworkpolicies', 'cilium.io/ciliumnetworkpolicies',
    'discovery.k8s.io/endpointslices', 'networking.k8s.io/networkpolicies',
  ]);
  const s = await startServer(t, { tokens: { 'sa-token': SA }, role });
  s.apply(pod('default', 'a'));
  s.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'default' }, data: {} });

  for (const token of [undefined, 'wrong']) {
    const r = await request(s.url, '/api/v1/pods', token === undefined ? {} : { token });
    t.equal(r.status, 401, `token ${String(token)}`);
    t.same(r.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  }
  t.equal((await request(s.url, '/apis')).status, 401, 'discovery needs a token too');
  t.equal((await request(s.url, '/apis', { token: 'sa-token' })).status, 200, 'discovery is open to any authenticated user');
  t.equal((await request(s.url, '/version', { token: 'sa-token' })).status, 200);

  t.same(names((await request(s.url, '/api/v1/pods', { token: 'sa-token' })).body), ['default/a'], 'a granted list');
  t.equal((await request(s.url, '/api/v1/namespaces/default/secrets/tls', { token: 'sa-token' })).status, 200, 'a granted get');
  const watch = await openWatch(t, s.url, '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies?watch=true', 'sa-token');
  t.equal(watch.status, 200, 'a granted watch');

  const configmaps = await request(s.url, '/api/v1/configmaps', { token: 'sa-token' });
  t.equal(configmaps.status, 403);
  t.same(configmaps.body, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: `configmaps is forbidden: User "${SA}" cannot list resource "configmaps" in API group "" at the cluster scope`,
    reason: 'Forbidden', details: { kind: 'configmaps' }, code: 403,
  }, 'authorized before routing: a type this server does not serve is still 403');
  t.match((await request(s.url, '/api/v1/namespaces/default/pods', { token: 'sa-token', method: 'POST' })).body, {
    code: 403, message: `pods is forbidden: User "${SA}" cannot create resource "pods" in API group "" in the namespace "default"`,
  });
  t.same((await request(s.url, '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/p', { token: 'sa-token', method: 'DELETE' })).body.details,
    { name: 'p', group: 'cilium.io', kind: 'ciliumnetworkpolicies' });
  t.match((await request(s.url, '/api/v1/namespaces/default/pods/a/log', { token: 'sa-token' })).body, {
    code: 403, message: /cannot get resource "pods\/log"/,
  }, 'subresources are resources of their own');
  t.match(s.requests.find((r) => r.path === '/api/v1/configmaps'), { method: 'GET', query: {}, user: SA, status: 403 });
  t.match(s.requests.at(-1), { method: 'GET', path: '/api/v1/namespaces/default/pods/a/log', user: SA, status: 403 });
});

t.test('RBAC resourceNames: get by name, list and watch only through fieldSelector=metadata.name', async (t) => {
  const s = await startServer(t, {
    tokens: { t: 'alice' },
    role: [
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'], resourceNames: ['tls'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['create'] },
    ],
  });
  s.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'default' } });
  s.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'other', namespace: 'default' } });
  const get = (path: string, method = 'GET') => request(s.url, path, { token: 't', method });
  t.equal((await get('/api/v1/namespaces/default/secrets/tls')).status, 200);
  t.match((await get('/api/v1/namespaces/default/secrets/other')).body, {
    code: 403, message: 'secrets "other" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "default"', details: { name: 'other' },
  });
  t.equal((await get('/api/v1/namespaces/default/secrets')).status, 403, 'a plain list is not a named request');
  const named = await get('/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dtls');
  t.equal(named.status, 200);
  t.same(names(named.body), ['default/tls']);
  const w = await openWatch(t, s.url, '/api/v1/secrets?watch=true&fieldSelector=metadata.name%3Dtls', 't');
  t.same((await w.upTo(1)).map(brief), ['ADDED tls@1']);
  t.match((await get('/api/v1/namespaces/default/pods', 'POST')).body, { code: 405, reason: 'MethodNotAllowed' }, 'a granted write is still not served');
});

t.test('https with the given certificate', async (t) => {
  const ca = await createCA();
  const leaf = await issueCert(ca, { name: 'apiserver', ips: ['127.0.0.1'] });
  const s = await startServer(t, { tls: { key: leaf.key, cert: leaf.cert } });
  t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.match((await request(s.url, '/api', { ca: ca.cert })).body, { kind: 'APIVersions' });
  await t.rejects(request(s.url, '/api', { ca: (await createCA()).cert }), /self-signed|unable to verify|certificate/);
});

t.test('kube-api-server-main: a child process, driven by JSON lines on stdin', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-api-main-'));
  writeFileSync(join(dir, 'objects.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n');
  writeFileSync(join(dir, 'rbac.yaml'), RBAC_YAML);
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--token', `sa=${SA}`, '--role', join(dir, 'rbac.yaml'), '-f', join(dir, 'objects.yaml')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
  t.teardown(() => proc.kill());
  const lines: Body[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Body));
  const next = async (): Promise<Body> => {
    const want = lines.length + 1;
    await until(() => lines.length, (n) => n >= want, 'a line from kube-api-server-main');
    return lines[want - 1]!;
  };
  const command = (cmd: Body) => {
    proc.stdin.write(JSON.stringify(cmd) + '\n');
    return next();
  };
  const { url } = (await next()) as { url: string };
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.same(names((await request(url, '/api/v1/pods', { token: 'sa' })).body), ['default/a'], '-f objects are applied at start');
  t.same(names((await request(url, '/api/v1/namespaces', { token: 'sa' })).body), ['prod']);
  t.equal((await request(url, '/api/v1/configmaps', { token: 'sa' })).status, 403, '--role is enforced');

  const w = await openWatch(t, url, '/api/v1/pods?watch=true&resourceVersion=2&allowWatchBookmarks=true', 'sa');
  t.same(await command({ op: 'watchCount' }), { ok: true, resourceVersion: '2', watchCount: 1 });
  t.same(await command({ op: 'apply', object: pod('default', 'b') }), { ok: true, resourceVersion: '3' });
  t.same(await command({ op: 'bookmark' }), { ok: true, resourceVersion: '3' });
  t.same(await command({ op: 'delete', kind: 'Pod', namespace: 'default', name: 'b' }), { ok: true, resourceVersion: '4', deleted: true });
  t.same((await w.upTo(3)).map((e) => e.type), ['ADDED', 'BOOKMARK', 'DELETED']);
  t.match(await command({ op: 'apply', object: { kind: 'Deployment' } }), { ok: false, error: /Deployment/ });
  t.match(await command({ op: 'nope' }), { ok: false, error: /unknown op/ });
  t.same(await command({ op: 'compact' }), { ok: true, resourceVersion: '4' });
  t.same(await command({ op: 'closeWatches' }), { ok: true, resourceVersion: '4' });
  t.equal(await w.ended(), 'clean');
  t.same(await command({ op: 'pause' }), { ok: true, resourceVersion: '4' });
  t.same(await command({ op: 'resume' }), { ok: true, resourceVersion: '4' });
  proc.stdin.end();
  t.equal(await exited, 0, 'exits when stdin ends');
});

// ---------------------------------------------------------------------------------------------
// (b) The real kubectl. `KUBECTL` may name another binary (e.g. Debian's 1.20 next to a newer one).

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const kubectlVersion = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' });
const haveKubectl = kubectlVersion.error === undefined && kubectlVersion.status === 0;

interface Kubectl {
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  readonly env: NodeJS.ProcessEnv;
}

let kubeconfigs = 0;

/** kubectl with its own kubeconfig, and HOME in the test's directory (its discovery cache goes there). */
function kubectl(dir: string, kubeconfig: string): Kubectl {
  const path = join(dir, `kubeconfig-${++kubeconfigs}`);
  writeFileSync(path, kubeconfig);
  const env = { ...process.env, KUBECONFIG: path, HOME: dir };
  return {
    env,
    run: (args) => new Promise((resolve) => {
      execFile(KUBECTL, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
      });
    }),
  };
}

const kubeconfig = (server: string, token: string, ca: string): string => kubeconfigText(server, token, ca);

t.test('the real kubectl lists, gets and watches through it, over https with the l7guard ServiceAccount', {
  skip: !haveKubectl && process.env.CI === undefined ? `${KUBECTL} is not installed (apt-get install -y kubernetes-client)` : false,
}, async (t) => {
  t.ok(haveKubectl, `${KUBECTL} is installed (CI installs kubernetes-client)`);
  if (!haveKubectl) return;
  t.comment(kubectlVersion.stdout.split('\n')[0] ?? '');
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-'));
  const ca = await createCA({ commonName: 'test cluster CA' });
  const leaf = await issueCert(ca, { name: 'kube-apiserver', ips: ['127.0.0.1'], dns: ['localhost'] });
  const s = await startServer(t, { tls: { key: leaf.key, cert: leaf.cert }, tokens: { 'sa-token': SA }, role: KubeApiServer.roleFromManifest(RBAC_YAML) });
  s.apply(pod('default', 'web-1', { app: 'web' }));
  s.apply(pod('prod', 'db-1', { app: 'db' }));
  s.apply(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-rule, namespace: default}
spec: {endpointSelector: {matchLabels: {app: web}}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: other-ns, namespace: prod}
spec: {endpointSelector: {}}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: cluster-wide}
spec: {endpointSelector: {}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc12, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
`);
  const k = kubectl(dir, kubeconfig(s.url, 'sa-token', ca.cert));

  const pods = await k.run(['get', 'pods', '-A', '-o', 'json']);
  t.equal(pods.code, 0, pods.stderr);
  const list = JSON.parse(pods.stdout) as { items: KubeObject[] };
  t.same(list.items.map((p) => `${p.kind} ${p.metadata.namespace}/${p.metadata.name}`), ['Pod default/web-1', 'Pod prod/db-1']);
  const cnp = await k.run(['get', 'cnp', '-n', 'default', '-o', 'name']);
  t.equal(cnp.stdout, 'ciliumnetworkpolicy.cilium.io/l7-rule\n', cnp.stderr);
  const ccnp = await k.run(['get', 'ccnp']);
  t.match(ccnp.stdout, /^NAME\s+AGE\ncluster-wide\s+\S+\n$/, ccnp.stderr);
  const slices = await k.run(['get', 'endpointslices', '-A']);
  t.match(slices.stdout, /^NAMESPACE\s+NAME\s+AGE\ndefault\s+web-abc12\s+\S+\n$/, slices.stderr);
  const one = await k.run(['get', 'pod', 'db-1', '-n', 'prod', '-o', 'jsonpath={.metadata.uid}']);
  t.equal(one.stdout, s.get('Pod', 'prod', 'db-1')!.metadata.uid, one.stderr);
  const missing = await k.run(['get', 'pod', 'nope']);
  t.match(missing.stderr, /NotFound.*pods "nope" not found/);

  writeFileSync(join(dir, 'pod.json'), JSON.stringify(pod('default', 'intruder')));
  const create = await k.run(['create', '-f', join(dir, 'pod.json'), '--validate=false']);
  t.not(create.code, 0);
  t.match(create.stderr, `Forbidden`);
  t.match(create.stderr, `User "${SA}" cannot create resource "pods" in API group "" in the namespace "default"`, 'the role has no write verb');

  const wrongCa = kubectl(dir, kubeconfig(s.url, 'sa-token', (await createCA()).cert));
  const refused = await wrongCa.run(['get', 'pods']);
  t.not(refused.code, 0);
  t.match(refused.stderr, /x509|certificate/, 'certificate-authority-data is what kubectl verifies the server with');
  const noToken = kubectl(dir, kubeconfig(s.url, 'not-a-token', ca.cert));
  t.match((await noToken.run(['get', 'pods'])).stderr, /Unauthorized|must be logged in/);

  await watchWithKubectl(t, s, k);
});

/** `kubectl get pods -w -o name`: the existing pod from its list, then one applied while it watches. */
async function watchWithKubectl(t: Test, s: KubeApiServer, k: Kubectl): Promise<void> {
  const proc = spawn(KUBECTL, ['get', 'pods', '-w', '-o', 'name'], { env: k.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => proc.kill('SIGKILL'));
  const out: string[] = [];
  let stderr = '';
  createInterface({ input: proc.stdout }).on('line', (l) => out.push(l));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await until(() => out, (o) => o.includes('pod/web-1'), 'kubectl to print the listed pod').catch((err: Error) => {
    throw new Error(`${err.message}; stderr: ${stderr}`);
  });
  await untilTrue(() => s.watchCount() === 1, 'kubectl to open its watch');
  s.apply(pod('default', 'web-2'));
  await until(() => out, (o) => o.includes('pod/web-2'), 'kubectl to print the pod applied during its watch');
  t.same(out, ['pod/web-1', 'pod/web-2'], 'only the default namespace, each pod once');
  const watchReq = s.requests.find((r) => r.query.watch === 'true' && r.path === '/api/v1/namespaces/default/pods');
  t.match(watchReq, { user: SA, status: 200, query: { resourceVersion: /^\d+$/ } }, 'a watch from the list\'s resourceVersion');
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
}
