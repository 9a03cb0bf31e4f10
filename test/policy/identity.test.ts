/**
 * Identities: Cilium's label filter (cilium/cilium pkg/labelsfilter/filter.go defaultLabelPrefixCfg),
 * labels Cilium adds (docs/semantics.md#identities), reserved numbers (pkg/identity/numericidentity.go),
 * CIDR identities, and stability across rebuilds.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { allocate, RESERVED_IDS } from '../../policy/identity.js';
import { isIdentityRelevant, podIdentityLabels } from '../../policy/labels.js';
import { build, CLUSTER, pod } from './helpers.js';

const cluster = readFileSync(CLUSTER, 'utf8');

t.test('label filter', async (t) => {
  const rows: [string, boolean, string][] = [
    ['app.kubernetes.io/name', true, 'include app.kubernetes.io'],
    ['pod-template-hash', false, '!pod-template-hash'],
    ['controller-revision-hash', false, '!controller-revision-hash'],
    ['pod-template-generation', false, '!pod-template-generation'],
    ['io.kubernetes.pod.namespace', true, 'include beats !io.kubernetes (longer match)'],
    ['io.kubernetes.container.name', false, '!io.kubernetes'],
    ['kubernetes.io/hostname', false, '!kubernetes.io'],
    ['statefulset.kubernetes.io/pod-name', false, '!statefulset pod-name'],
    ['topology.beta.kubernetes.io/zone', false, '!.*beta.kubernetes.io'],
    ['k8s.io/foo', false, '!k8s.io'],
    ['annotation.x', false, '!annotation'],
    ['io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name', true, 'namespace labels included'],
    ['io.cilium.k8s.policy.serviceaccount', true, 'no ignore matches'],
    ['org', true, 'plain label'],
  ];
  for (const [key, want, why] of rows) t.equal(isIdentityRelevant('k8s', key), want, `${key}: ${why}`);
});

t.test('pod identity labels', async (t) => {
  // docs/semantics.md#identities: the tiefighter identity as `cilium monitor` shows it
  t.same(
    podIdentityLabels({ namespace: 'default', serviceAccount: 'default', clusterName: 'default', podLabels: { org: 'empire', class: 'tiefighter', 'app.kubernetes.io/name': 'tiefighter' }, namespaceLabels: {} }),
    [
      'k8s:app.kubernetes.io/name=tiefighter', 'k8s:class=tiefighter', 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
      'k8s:io.cilium.k8s.policy.cluster=default', 'k8s:io.cilium.k8s.policy.serviceaccount=default', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=empire',
    ],
  );
  const s = build([cluster]);
  const ds = pod(s, 'deathstar-8c4c77fb7-b9qmw');
  t.notOk(ds.identity.labels.some((l) => l.includes('pod-template-hash')), 'pod-template-hash dropped');
  t.equal(ds.podLabels['pod-template-hash'], '8c4c77fb7', 'podLabels unfiltered');
  t.equal(ds.identity, pod(s, 'deathstar-8c4c77fb7-vhj8x').identity, 'same labels -> same identity');
  t.same(ds.workload, { name: 'deathstar', kind: 'Deployment' }, 'workload via ReplicaSet naming');
  t.ok(ds.identity.id >= 256 && ds.identity.id <= 65535, 'cluster identity range');
  t.not(pod(s, 'tiefighter').identity.id, pod(s, 'xwing').identity.id, 'different labels -> different ids');
  const ns = build([cluster, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {team: empire}}']);
  t.ok(pod(ns, 'xwing').identity.labels.includes('k8s:io.cilium.k8s.namespace.labels.team=empire'), 'Namespace labels added');
  const other = build([cluster], { clusterName: 'c2' });
  t.ok(pod(other, 'xwing').identity.labels.includes('k8s:io.cilium.k8s.policy.cluster=c2'), 'cluster label');
});

t.test('reserved identities and identify()', async (t) => {
  t.same(RESERVED_IDS, { host: 1, world: 2, unmanaged: 3, health: 4, init: 5, 'remote-node': 6, 'kube-apiserver': 7, ingress: 8, 'world-ipv4': 9, 'world-ipv6': 10 });
  const s = build([cluster, 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspec:\n  endpointSelector: {}\n  ingress: [{fromCIDRSet: [{cidr: 198.51.100.0/24, except: [198.51.100.128/25]}]}]']);
  t.same(s.identities.get(2)?.labels, ['reserved:world']);
  t.equal(s.identify('192.168.49.2').identity.id, 1, 'node IP is host');
  t.equal(s.identify('127.0.0.1').identity.id, 2, 'other address is world, not host');
  t.equal(s.identify('10.0.1.20').endpoint?.name, 'tiefighter', 'pod IP');
  t.equal(s.identify('::ffff:10.0.1.20').endpoint?.name, 'tiefighter', 'IPv4-mapped IPv6');
  const c = s.identify('198.51.100.7').identity;
  t.ok(c.id >= 16777216, 'CIDR identity in local scope');
  t.same(c.labels, ['cidr:198.51.100.0/24', 'reserved:world']);
  t.same(s.identify('198.51.100.200').identity.labels, ['cidr:198.51.100.128/25', 'reserved:world'], 'longest prefix (except) wins');
  t.equal(s.identify('2001:db8::1').identity.id, 2, 'IPv6 world');
});

t.test('stability across reloads', async (t) => {
  const s1 = build([cluster]);
  const extra = 'apiVersion: v1\nkind: Pod\nmetadata: {name: aaa, namespace: default, labels: {org: alliance, class: xwing, app.kubernetes.io/name: xwing, extra: "1"}}\nstatus: {podIP: 10.0.1.40}';
  const s2 = build([cluster, extra], { previous: s1, revision: 2 });
  for (const e of s1.endpoints) {
    t.equal(pod(s2, e.name).identity.id, e.identity.id, `identity of ${e.name} kept`);
    t.equal(pod(s2, e.name).id, e.id, `endpoint id of ${e.name} kept`);
  }
  t.ok(pod(s2, 'aaa').id >= 1 && pod(s2, 'aaa').id <= 4095, 'endpoint id range');
  // Deterministic without previous: same input, same numbers
  t.same(build([cluster]).endpoints.map((e) => [e.id, e.identity.id]), s1.endpoints.map((e) => [e.id, e.identity.id]));
  // Previous numbers win even over a hash slot now taken by another key
  const a = allocate(['x', 'y'], new Map([['y', 300]]), 256, 65535);
  t.equal(a.get('y'), 300, 'previous number reused');
  const clash = allocate(['k1', 'k2'], new Map(), 256, 257);
  t.same(new Set(clash.values()), new Set([256, 257]), 'collision probes to the next free number');
});
