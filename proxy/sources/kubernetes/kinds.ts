/**
 * What the Kubernetes source lists and watches, cluster-wide (deploy/rbac.yaml grants exactly
 * get/list/watch on these). Secrets are not here: only the ones policies reference are watched,
 * each on its own by name (secret-refs.ts).
 */
export interface WatchedKind {
  readonly kind: string;
  readonly apiVersion: string;
  /** The cluster-wide collection. */
  readonly path: string;
  readonly namespaced: boolean;
}

export const WATCHED_KINDS: readonly WatchedKind[] = [
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces', namespaced: false },
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods', namespaced: true },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services', namespaced: true },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices', namespaced: true },
  { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/networkpolicies', namespaced: true },
  { kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', path: '/apis/cilium.io/v2/ciliumnetworkpolicies', namespaced: true },
  { kind: 'CiliumClusterwideNetworkPolicy', apiVersion: 'cilium.io/v2', path: '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies', namespaced: false },
];

export const SECRET_KIND: WatchedKind = { kind: 'Secret', apiVersion: 'v1', path: '/api/v1/secrets', namespaced: true };

/** The collection of one namespace's objects of `k` (`/api/v1/namespaces/NS/secrets`). */
export function namespacedPath(k: WatchedKind, namespace: string): string {
  const i = k.path.lastIndexOf('/');
  return `${k.path.slice(0, i)}/namespaces/${encodeURIComponent(namespace)}${k.path.slice(i)}`;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Drops, in place, what policy/ never reads from an object the informer caches, before anything
 * else holds it: `managedFields` and kubectl's last-applied copy on every kind (often larger than
 * the object), and on Pods everything but identity, placement, ports and addresses. A real Pod is
 * 5-15 KB of JSON, most of it container specs and statuses; 100,000 of them must fit a node agent.
 */
export function trimObject(kind: string, o: Obj): void {
  const meta = o['metadata'];
  if (isObj(meta)) {
    delete meta['managedFields'];
    const ann = meta['annotations'];
    if (isObj(ann)) {
      delete ann['kubectl.kubernetes.io/last-applied-configuration'];
      if (kind === 'Pod' || Object.keys(ann).length === 0) delete meta['annotations'];
    }
  }
  if (kind !== 'Pod') return;
  const spec = o['spec'];
  if (isObj(spec)) {
    const ports = (list: unknown) => (Array.isArray(list) ? list.filter(isObj).map((c) => ({ name: c['name'], ports: c['ports'] })) : undefined);
    o['spec'] = {
      nodeName: spec['nodeName'], hostNetwork: spec['hostNetwork'], serviceAccountName: spec['serviceAccountName'],
      containers: ports(spec['containers']), initContainers: ports(spec['initContainers']),
    };
  }
  const status = o['status'];
  if (isObj(status)) o['status'] = { phase: status['phase'], podIP: status['podIP'], podIPs: status['podIPs'] };
}
