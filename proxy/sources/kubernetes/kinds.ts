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
