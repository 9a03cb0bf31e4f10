/**
 * Kubernetes objects as the API server returns them, for policy tests: list items of built-in
 * kinds carry no kind/apiVersion (https://kubernetes.io/docs/reference/using-api/api-concepts/),
 * so the objects here have none in `raw`; the Kubernetes source sets both on each SourcedObject.
 */
import type { SourcedObject } from '../../policy/load.js';
import { apiObject } from '../../fixtures/scale-cluster.js';

type Raw = Record<string, unknown>;

let uid = 0;

export { apiObject };

export interface PodSpec {
  readonly ns?: string;
  readonly labels?: Record<string, string>;
  /** status.podIP; the first of `ips` when that is given. */
  readonly ip?: string;
  readonly ips?: readonly string[];
  readonly phase?: string;
  readonly node?: string;
  readonly hostNetwork?: boolean;
  /** metadata.creationTimestamp (RFC 3339). */
  readonly created?: string;
  /** Named container ports. */
  readonly ports?: Record<string, number>;
  readonly owner?: string;
}

/** A Pod as `GET /api/v1/pods` lists it (the fields policy reads, and a few it does not). */
export function podObject(name: string, p: PodSpec = {}): SourcedObject {
  const ns = p.ns ?? 'default';
  const ips = p.ips ?? (p.ip === undefined ? [] : [p.ip]);
  const metadata: Raw = { name, namespace: ns, uid: `uid-${++uid}`, resourceVersion: String(1000 + uid), labels: p.labels ?? {} };
  if (p.created !== undefined) metadata.creationTimestamp = p.created;
  if (p.owner !== undefined) metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: p.owner, uid: 'rs', controller: true }];
  const spec: Raw = {
    containers: [{ name: 'c', image: 'x', ports: Object.entries(p.ports ?? {}).map(([n, containerPort]) => ({ name: n, containerPort, protocol: 'TCP' })) }],
    serviceAccountName: 'default',
  };
  if (p.node !== undefined) spec.nodeName = p.node;
  if (p.hostNetwork !== undefined) spec.hostNetwork = p.hostNetwork;
  const status: Raw = { phase: p.phase ?? 'Running', hostIP: '192.168.0.1' };
  if (ips.length > 0) {
    status.podIP = ips[0];
    status.podIPs = ips.map((ip) => ({ ip }));
  }
  return apiObject('v1', 'Pod', { metadata, spec, status });
}

export interface ServiceSpec {
  readonly ns?: string;
  readonly selector?: Record<string, string>;
  readonly clusterIP?: string;
  readonly ports?: readonly { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
}

export function serviceObject(name: string, s: ServiceSpec = {}): SourcedObject {
  const spec: Raw = {
    type: 'ClusterIP',
    clusterIP: s.clusterIP ?? 'None',
    ports: (s.ports ?? [{ port: 80, targetPort: 8080 }]).map((p) => ({ protocol: 'TCP', ...p })),
  };
  if (s.selector !== undefined) spec.selector = s.selector;
  return apiObject('v1', 'Service', { metadata: { name, namespace: s.ns ?? 'default' }, spec });
}

export interface SliceEndpointSpec {
  readonly ip: string;
  /** conditions.ready: undefined leaves it out (nil = ready). */
  readonly ready?: boolean;
  /** targetRef Pod name (same namespace unless "ns/name"). */
  readonly pod?: string;
  readonly node?: string;
}

export interface SliceSpec {
  readonly ns?: string;
  /** kubernetes.io/service-name; null leaves the label out. */
  readonly service: string | null;
  readonly addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly SliceEndpointSpec[];
  readonly ports?: readonly { name?: string; port?: number; protocol?: string }[];
}

/** An EndpointSlice as `GET /apis/discovery.k8s.io/v1/endpointslices` lists it. */
export function sliceObject(name: string, s: SliceSpec): SourcedObject {
  const ns = s.ns ?? 'default';
  const labels: Record<string, string> = { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' };
  if (s.service !== null) labels['kubernetes.io/service-name'] = s.service;
  return apiObject('discovery.k8s.io/v1', 'EndpointSlice', {
    metadata: { name, namespace: ns, labels, generateName: `${s.service ?? 'x'}-` },
    addressType: s.addressType ?? 'IPv4',
    endpoints: s.endpoints.map((e) => {
      const out: Raw = { addresses: [e.ip], conditions: e.ready === undefined ? {} : { ready: e.ready, serving: e.ready, terminating: false } };
      if (e.pod !== undefined) {
        const [pns, pname] = e.pod.includes('/') ? e.pod.split('/') : [ns, e.pod];
        out.targetRef = { kind: 'Pod', namespace: pns, name: pname, uid: 'x' };
      }
      if (e.node !== undefined) out.nodeName = e.node;
      return out;
    }),
    ports: (s.ports ?? [{ name: '', port: 8080 }]).map((p) => ({ protocol: 'TCP', ...p })),
  });
}

export function namespaceObject(name: string, labels: Record<string, string> = {}): SourcedObject {
  return apiObject('v1', 'Namespace', { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
}

export function cnpObject(name: string, ns: string, spec: Raw): SourcedObject {
  // Custom resources in a list do carry kind and apiVersion.
  return apiObject('cilium.io/v2', 'CiliumNetworkPolicy', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: ns }, spec });
}
