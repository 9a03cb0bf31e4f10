/**
 * A cluster as big as the Kubernetes source may hand over: 100,000 pods in 200 namespaces over 10
 * nodes, 1,000 Services with EndpointSlices, 1,000 CNPs (test/policy/scale-cluster.ts), built as
 * one node sees it. Correctness only; bench/reload/cluster.mjs measures time and heap.
 */
import t from 'tap';
import { buildPolicyState } from '../../policy/build.js';
import { RESERVED_IDS } from '../../policy/identity.js';
import type { Destination, Endpoint, PolicyState } from '../../policy/model.js';
import { endpointsView } from '../../observe/operator-views.js';
import { OPTS, req, verdict } from './helpers.js';
import { apiObject } from './kube-objects.js';
import { finished, namespaceOf, nodeIP, nodeOf, notReady, podIP, podName, SCALE_100K as O, scaleCluster, serviceOf } from '../../fixtures/scale-cluster.js';

const LOCAL = 'node-3';
const objects = scaleCluster(O);
const opts = { ...OPTS, nodeName: LOCAL };
const s: PolicyState = buildPolicyState(objects, opts);

const live: number[] = [];
for (let j = 0; j < O.pods; j++) if (!finished(j)) live.push(j);
const epOf = (j: number): Endpoint => {
  const e = s.identify(podIP(j)).endpoint;
  if (e === undefined || e.name !== podName(j, O)) throw new Error(`pod ${j} is not the endpoint at ${podIP(j)}`);
  return e;
};
/** The first live pod of Service i on a node (local or not). */
const podOf = (i: number, local: boolean): number => {
  const j = live.find((x) => serviceOf(x, O) === i && (nodeOf(x, O) === LOCAL) === local);
  if (j === undefined) throw new Error(`no ${local ? 'local' : 'remote'} pod of svc-${i}`);
  return j;
};

t.test('built: every live pod an endpoint, IDs for this node\'s only', async (t) => {
  t.equal(s.endpoints.length, live.length, `${live.length} endpoints (finished Job pods are not)`);
  const local = s.endpoints.filter((e) => e.id !== 0);
  const wantLocal = live.filter((j) => nodeOf(j, O) === LOCAL).map((j) => podName(j, O)).sort();
  t.same(local.map((e) => e.name).sort(), wantLocal, `${wantLocal.length} endpoints numbered: ${LOCAL}'s pods, and only them`);
  t.equal(new Set(local.map((e) => e.id)).size, local.length, 'local IDs distinct');
  t.ok(local.every((e) => e.id >= 1 && e.id <= 65535), 'local IDs in range');
  // ~9,900 pods on one node is past a Cilium agent's 4,095 endpoint IDs: said once.
  t.same(s.warnings, [`${wantLocal.length} pods on node ${LOCAL}: more than a Cilium agent's 4095 endpoint IDs; numbered in [1, 65535]`]);
  t.equal(s.identities.size, 10 + 2 * O.services, 'reserved + one identity per (Service, version)');
  t.equal(endpointsView(s).length, wantLocal.length + 1, '`endpoint list`: this node\'s endpoints and the host');
  t.equal(s.services.length, O.services);
});

t.test('verdicts for remote pods\' identities', async (t) => {
  // CNP allow-i: svc-i's pods accept GET /api/.* on 8080 from svc-(i+1)'s pods.
  for (const i of [0, 1, 457, 999]) {
    const peer = (i + 1) % O.services;
    const other = (i + 2) % O.services;
    const rows: [string, number, number, string, string][] = [
      [`remote svc-${peer} -> local svc-${i}`, podOf(peer, false), podOf(i, true), 'GET', '200'],
      [`remote svc-${peer} -> local svc-${i}, POST`, podOf(peer, false), podOf(i, true), 'POST', '403'],
      [`remote svc-${peer} -> remote svc-${i}`, podOf(peer, false), podOf(i, false), 'GET', '200'],
      [`local svc-${peer} -> remote svc-${i}`, podOf(peer, true), podOf(i, false), 'GET', '200'],
      [`remote svc-${other} -> local svc-${i}`, podOf(other, false), podOf(i, true), 'GET', 'drop:POLICY_DENIED:INGRESS'],
    ];
    for (const [why, from, to, method, want] of rows) {
      const src = s.identify(podIP(from));
      t.equal(src.endpoint?.id === 0, nodeOf(from, O) !== LOCAL, `${why}: source endpoint ID`);
      t.equal(verdict(s.decide(src, epOf(to), 8080), req(method, '/api/v1/x')), want, why);
    }
    t.equal(verdict(s.decide(s.identify(podIP(podOf(peer, false))), epOf(podOf(i, true)), 9090)), 'drop:POLICY_DENIED:INGRESS', `svc-${i}: another port`);
  }
  t.equal(s.identify(nodeIP(3)).identity.id, RESERVED_IDS.host, 'this node\'s address (its hostNetwork pods): host');
  t.equal(s.identify(nodeIP(5)).identity.id, RESERVED_IDS['remote-node'], 'another node\'s: remote-node');
});

t.test('Service backends from EndpointSlices', async (t) => {
  for (const i of [0, 123, 999]) {
    const d = s.resolve(`svc-${i}.${namespaceOf(i, O)}:80`, undefined) as Extract<Destination, { kind: 'service' }>;
    const want = live.filter((j) => serviceOf(j, O) === i && !notReady(j)).map((j) => podName(j, O)).sort();
    t.same(d.backends.map((b) => b.endpoint.name), want, `svc-${i}: the slices' ready endpoints, in name order`);
    t.ok(d.backends.every((b) => b.port === 8080 && b.ip === b.endpoint.ips[0]), `svc-${i}: target port 8080 from the slices`);
    t.ok(d.backends.some((b) => b.endpoint.id === 0) && d.backends.some((b) => b.endpoint.id !== 0), `svc-${i}: local and remote backends`);
  }
});

t.test('a rebuild: numbering kept, a reused IP switches identity', async (t) => {
  // Pod j's IP handed to a new pod of another Service, the old pod still listed (terminating).
  const j = podOf(5, true);
  const newer = apiObject('v1', 'Pod', {
    metadata: { name: 'newcomer', namespace: namespaceOf(7, O), uid: 'new', creationTimestamp: '2030-01-01T00:00:00Z', labels: { app: 'svc-7', version: 'v0' } },
    spec: { nodeName: LOCAL, containers: [{ name: 'app', image: 'x' }] },
    status: { phase: 'Running', podIP: podIP(j), podIPs: [{ ip: podIP(j) }] },
  });
  const next = buildPolicyState([...objects, newer], { ...opts, previous: s, revision: 2 });
  t.equal(next.identify(podIP(j)).endpoint?.name, 'newcomer', 'the newer pod owns the IP');
  t.equal(next.endpoints.length, s.endpoints.length, 'one endpoint gone, one come');
  const before = new Map(s.endpoints.map((e) => [`${e.namespace}/${e.name}`, e.id]));
  let moved = 0;
  for (const e of next.endpoints) if (before.has(`${e.namespace}/${e.name}`) && before.get(`${e.namespace}/${e.name}`) !== e.id) moved++;
  t.equal(moved, 0, 'every other endpoint keeps its ID');
  t.equal(next.identify(podIP(podOf(1, false))).identity.id, s.identify(podIP(podOf(1, false))).identity.id, 'identity numbers kept');
});
