import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { buildTopology, podsOf, podTemplateHash, serviceNamed, writeClusterDir } from '../../demo/topology.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const APP = readFileSync(join(ROOT, 'demo', 'manifests', 'http-sw-app.yaml'), 'utf8');

t.test('the Deployment becomes 2 Pods named like the ReplicaSet controller names them', async (t) => {
  const topo = buildTopology(APP);
  const ds = podsOf(topo, 'deathstar');
  t.equal(ds.length, 2, 'replicas: 2');
  const hash = topo.templateHashes.get('deathstar')!;
  t.match(hash, /^[4-9bcdf]{8,10}$/, 'SafeEncodeString of a decimal uint32');
  for (const p of ds) {
    t.match(p.name, /^deathstar-[a-z0-9]{8,10}-[a-z0-9]{5}$/);
    t.ok(p.name.startsWith(`deathstar-${hash}-`));
    t.same(p.labels, { org: 'empire', class: 'deathstar', 'app.kubernetes.io/name': 'deathstar', 'pod-template-hash': hash });
    t.equal(p.namespace, 'default');
  }
  t.not(ds[0]!.name, ds[1]!.name, 'distinct suffixes');
  t.same(buildTopology(APP).pods.map((p) => p.name), topo.pods.map((p) => p.name), 'deterministic');
});

t.test('ships, addresses and the Service', async (t) => {
  const topo = buildTopology(APP);
  t.same(topo.pods.map((p) => p.name.replace(/-.*/, '')), ['deathstar', 'deathstar', 'tiefighter', 'xwing']);
  const tf = topo.pods.find((p) => p.name === 'tiefighter')!;
  const xw = topo.pods.find((p) => p.name === 'xwing')!;
  t.same(tf.labels, { org: 'empire', class: 'tiefighter', 'app.kubernetes.io/name': 'tiefighter' });
  t.same(xw.labels, { org: 'alliance', class: 'xwing', 'app.kubernetes.io/name': 'xwing' });
  const svc = serviceNamed(topo, 'deathstar');
  const ips = [...topo.pods.map((p) => p.ip), svc.clusterIP];
  t.equal(new Set(ips).size, ips.length, 'all addresses distinct');
  for (const ip of ips) t.match(ip, /^127\.0\.10\.\d{1,3}$/, 'in 127.0.10.0/24');
  t.same(svc.ports, [80]);
  t.same(svc.selector, { org: 'empire', class: 'deathstar' });
  const other = buildTopology(APP, { block: '127.0.42.0/24' });
  t.match(serviceNamed(other, 'deathstar').clusterIP, /^127\.0\.42\./);
  t.throws(() => buildTopology(APP, { block: '10.0.0.0/24' }), /loopback \/24/);
});

t.test('the template hash follows the template, not YAML key order', async (t) => {
  const a = podTemplateHash({ metadata: { labels: { a: '1', b: '2' } }, spec: {} });
  t.equal(a, podTemplateHash({ spec: {}, metadata: { labels: { b: '2', a: '1' } } }));
  t.not(a, podTemplateHash({ metadata: { labels: { a: '1', b: '3' } }, spec: {} }));
});

t.test('the cluster folder holds Services and Pods, no Deployment', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'l7guard-topology-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const topo = buildTopology(APP);
  const file = await writeClusterDir(topo, join(dir, 'cluster'));
  const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
  t.same(docs.map((d) => `${d.kind}/${d.metadata.name}`), [
    'Service/deathstar', ...topo.pods.map((p) => `Pod/${p.name}`),
  ]);
  const svc = docs[0]!;
  t.equal(svc.spec.clusterIP, serviceNamed(topo, 'deathstar').clusterIP);
  t.same(svc.spec.clusterIPs, [svc.spec.clusterIP]);
  t.same(svc.spec.selector, { org: 'empire', class: 'deathstar' });
  for (const [i, pod] of topo.pods.entries()) {
    const d = docs[i + 1]!;
    t.equal(d.apiVersion, 'v1');
    t.equal(d.metadata.namespace, 'default');
    t.same(d.metadata.labels, pod.labels);
    t.equal(d.status.podIP, pod.ip);
    t.same(d.status.podIPs, [{ ip: pod.ip }]);
    t.equal(d.status.phase, 'Running');
    t.ok(Array.isArray(d.spec.containers) && d.spec.containers.length === 1, 'containers kept from the manifest');
  }
  const owner = docs[1]!.metadata.ownerReferences[0];
  t.match(owner, { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `deathstar-${topo.templateHashes.get('deathstar')}`, controller: true });
});
