/**
 * A generated cluster as the Kubernetes source hands it to policy/: SourcedObjects with the API
 * server's shapes (test/policy/kube-objects.ts), no YAML. Used by test/policy/scale.test.ts and
 * bench/reload/cluster.mjs.
 *
 * Layout: `services` Services spread round-robin over `namespaces`; pod j backs Service j % services
 * (a Deployment's pods: app=svc-i, version v0/v1, a pod-template-hash) and the Service's pods
 * are spread over every node;
 * each Service has EndpointSlices of at most 100 endpoints (the EndpointSlice controller's default
 * --max-endpoints-per-slice) with every 53rd pod not ready; every 97th pod is a finished Job pod
 * (phase Succeeded, IP still in its status); each node runs two hostNetwork pods on its node IP.
 * One CNP per Service: its pods accept GET /api/.* on 8080 from the next Service's pods.
 */
import type { SourcedObject } from '../../policy/load.js';
import { apiObject } from './kube-objects.js';

export interface ScaleOptions {
  readonly pods: number;
  readonly namespaces: number;
  readonly nodes: number;
  readonly services: number;
  readonly policies: number;
}

export const SCALE_100K: ScaleOptions = { pods: 100_000, namespaces: 200, nodes: 10, services: 1000, policies: 1000 };

export const podIP = (j: number) => `10.${64 + (j >> 16)}.${(j >> 8) & 255}.${j & 255}`;
export const nodeIP = (n: number) => `192.168.${n >> 8}.${(n & 255) + 1}`;
/** Pod j's node: every Service has pods on every node. */
export const nodeIndex = (j: number, o: ScaleOptions) => (j + Math.floor(j / o.services)) % o.nodes;
export const nodeOf = (j: number, o: ScaleOptions) => `node-${nodeIndex(j, o)}`;
export const serviceOf = (j: number, o: ScaleOptions) => j % o.services;
export const namespaceOf = (i: number, o: ScaleOptions) => `ns-${i % o.namespaces}`;
export const finished = (j: number) => j % 97 === 96;
const templateHash = (i: number) => (0x5f3759df ^ i).toString(16).slice(-9).padStart(9, '7');
export const podName = (j: number, o: ScaleOptions) => {
  const i = serviceOf(j, o);
  return finished(j) ? `job-${i}-${j}` : `svc-${i}-${templateHash(i)}-${j.toString(36).padStart(5, 'x')}`;
};
export const notReady = (j: number) => j % 53 === 52;

export function scaleCluster(o: ScaleOptions): SourcedObject[] {
  const out: SourcedObject[] = [];
  for (let n = 0; n < o.namespaces; n++) {
    const name = `ns-${n}`;
    out.push(apiObject('v1', 'Namespace', { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, team: `team-${n % 7}` } } }));
  }
  const t0 = Date.UTC(2024, 0, 1);
  for (let j = 0; j < o.pods; j++) {
    const i = serviceOf(j, o);
    const ns = namespaceOf(i, o);
    const hash = templateHash(i);
    const name = podName(j, o);
    const ip = podIP(j);
    out.push(apiObject('v1', 'Pod', {
      metadata: {
        name, namespace: ns, uid: `pod-${j}`, resourceVersion: String(10_000 + j), creationTimestamp: new Date(t0 + j * 1000).toISOString().replace('.000Z', 'Z'),
        labels: finished(j) ? { job: `job-${i}` } : { app: `svc-${i}`, version: `v${Math.floor(j / o.services) % 2}`, 'pod-template-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: finished(j) ? 'Job' : 'ReplicaSet', name: finished(j) ? `job-${i}` : `svc-${i}-${hash}`, uid: `rs-${i}`, controller: true }],
      },
      spec: {
        nodeName: nodeOf(j, o), serviceAccountName: 'default',
        containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
      },
      status: {
        phase: finished(j) ? 'Succeeded' : 'Running', hostIP: nodeIP(nodeIndex(j, o)), hostIPs: [{ ip: nodeIP(nodeIndex(j, o)) }],
        podIP: ip, podIPs: [{ ip }], startTime: '2024-01-01T00:00:00Z',
      },
    }));
  }
  for (let n = 0; n < o.nodes; n++) {
    for (const app of ['cilium', 'kube-proxy']) {
      out.push(apiObject('v1', 'Pod', {
        metadata: { name: `${app}-${n}`, namespace: 'kube-system', uid: `${app}-${n}`, labels: { 'k8s-app': app } },
        spec: { nodeName: `node-${n}`, hostNetwork: true, containers: [{ name: app, image: app }] },
        status: { phase: 'Running', hostIP: nodeIP(n), podIP: nodeIP(n), podIPs: [{ ip: nodeIP(n) }] },
      }));
    }
  }
  for (let i = 0; i < o.services; i++) {
    const ns = namespaceOf(i, o);
    out.push(apiObject('v1', 'Service', {
      metadata: { name: `svc-${i}`, namespace: ns, uid: `svc-${i}` },
      spec: {
        type: 'ClusterIP', clusterIP: `10.96.${i >> 8}.${i & 255}`, clusterIPs: [`10.96.${i >> 8}.${i & 255}`], selector: { app: `svc-${i}` },
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    }));
    const members: number[] = [];
    for (let j = i; j < o.pods; j += o.services) if (!finished(j)) members.push(j);
    for (let k = 0; k * 100 < Math.max(members.length, 1); k++) {
      out.push(apiObject('discovery.k8s.io/v1', 'EndpointSlice', {
        metadata: { name: `svc-${i}-${k.toString(36).padStart(5, 'z')}`, namespace: ns, labels: { 'kubernetes.io/service-name': `svc-${i}`, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
        addressType: 'IPv4',
        endpoints: members.slice(k * 100, k * 100 + 100).map((j) => ({
          addresses: [podIP(j)],
          conditions: { ready: !notReady(j), serving: !notReady(j), terminating: false },
          nodeName: nodeOf(j, o),
          targetRef: { kind: 'Pod', namespace: ns, name: podName(j, o), uid: `pod-${j}` },
        })),
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      }));
    }
  }
  for (let i = 0; i < o.policies; i++) {
    const s = i % o.services;
    const peer = (s + 1) % o.services;
    out.push(apiObject('cilium.io/v2', 'CiliumNetworkPolicy', {
      apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy',
      metadata: { name: `allow-${i}`, namespace: namespaceOf(s, o) },
      spec: {
        endpointSelector: { matchLabels: { app: `svc-${s}` } },
        ingress: [{
          fromEndpoints: [{ matchLabels: { app: `svc-${peer}`, 'k8s:io.kubernetes.pod.namespace': namespaceOf(peer, o) } }],
          toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/api/.*' }] } }],
        }],
      },
    }));
  }
  // Through JSON, as the objects come from the API server (flat strings, no shared substructure).
  return out.map((x) => apiObject(x.apiVersion, x.kind, JSON.parse(JSON.stringify(x.raw)) as Record<string, unknown>));
}
