import t from 'tap';
import { namespacedPath, SECRET_KIND, trimObject, WATCHED_KINDS } from '../../../../proxy/sources/kubernetes/kinds.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jsyaml from 'js-yaml';
import { repoRoot } from '../../../helpers/serve.js';

t.test('a Pod keeps what policy reads, and nothing else', async (t) => {
  const pod = {
    metadata: {
      name: 'deathstar-1', namespace: 'default', labels: { org: 'empire' }, resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z',
      ownerReferences: [{ kind: 'ReplicaSet', name: 'deathstar-5d7dd7c4d5' }],
      managedFields: [{ manager: 'kubelet', fieldsV1: { 'f:status': {} } }], annotations: { 'cni.projectcalico.org/podIP': '10.0.0.1/32' },
    },
    spec: {
      nodeName: 'node-1', hostNetwork: false, serviceAccountName: 'sa', volumes: [{ name: 'token' }],
      containers: [{ name: 'app', image: 'docker.io/cilium/starwars', env: [{ name: 'X', value: 'y' }], ports: [{ name: 'http', containerPort: 80 }] }],
      initContainers: [{ name: 'init', image: 'busybox', command: ['true'] }],
    },
    status: { phase: 'Running', podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }], conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'app' }] },
  };
  trimObject('Pod', pod);
  t.same(pod, {
    metadata: {
      name: 'deathstar-1', namespace: 'default', labels: { org: 'empire' }, resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z',
      ownerReferences: [{ kind: 'ReplicaSet', name: 'deathstar-5d7dd7c4d5' }],
    },
    spec: {
      nodeName: 'node-1', hostNetwork: false, serviceAccountName: 'sa',
      containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 80 }] }], initContainers: [{ name: 'init', ports: undefined }],
    },
    status: { phase: 'Running', podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }] },
  });
});

t.test('other kinds lose only managedFields and the last-applied copy', async (t) => {
  const cnp = {
    metadata: { name: 'rule1', namespace: 'default', managedFields: [{}], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{...}', team: 'empire' } },
    spec: { endpointSelector: { matchLabels: { org: 'empire' } } },
  };
  trimObject('CiliumNetworkPolicy', cnp);
  t.same(cnp, { metadata: { name: 'rule1', namespace: 'default', annotations: { team: 'empire' } }, spec: { endpointSelector: { matchLabels: { org: 'empire' } } } });
  const svc = { metadata: { name: 's', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } }, spec: { clusterIP: '10.96.0.1' } };
  trimObject('Service', svc);
  t.same(svc, { metadata: { name: 's' }, spec: { clusterIP: '10.96.0.1' } });
});

t.test('the ClusterRole in deploy/ grants exactly get/list/watch on what is watched', async (t) => {
  const docs = jsyaml.loadAll(readFileSync(join(repoRoot, 'deploy', 'rbac.yaml'), 'utf8')) as { kind?: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
  const role = docs.find((d) => d?.kind === 'ClusterRole')!;
  const granted = new Set(role.rules!.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`))));
  const watched = [...WATCHED_KINDS, SECRET_KIND].map((k) => {
    const m = /^\/apis?\/(?:(.+)\/)?[^/]+\/([^/]+)$/.exec(k.path)!;
    return `${k.path.startsWith('/apis/') ? m[1] : ''}/${m[2]}`;
  });
  t.same([...granted].sort(), [...new Set(watched)].sort(), 'the same resources');
  t.ok(role.rules!.every((r) => [...r.verbs].sort().join() === 'get,list,watch'), 'read verbs only');
});

t.test('namespaced paths', async (t) => {
  t.equal(namespacedPath(SECRET_KIND, 'kube-system'), '/api/v1/namespaces/kube-system/secrets');
  const cnp = WATCHED_KINDS.find((k) => k.kind === 'CiliumNetworkPolicy')!;
  t.equal(namespacedPath(cnp, 'default'), '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies');
});
