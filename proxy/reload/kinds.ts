/**
 * The object kinds the admin API accepts, named the way kubectl names API resources: the URL says
 * `ciliumnetworkpolicies` (or `cnp`, `ciliumnetworkpolicy`, `CiliumNetworkPolicy`,
 * `ciliumnetworkpolicies.cilium.io`), the answer says `ciliumnetworkpolicy.cilium.io/rule1 created`.
 * Only kinds `serve` reads are listed: anything else would be skipped at load, so applying it would
 * be a silent no-op.
 */
export interface KindInfo {
  readonly kind: string;
  /** Lower-case plural resource name (the URL segment). */
  readonly resource: string;
  /** API group ('' for the core group). */
  readonly group: string;
  /** The apiVersion a body without one gets. */
  readonly apiVersion: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
}

export const KINDS: readonly KindInfo[] = [
  { kind: 'CiliumNetworkPolicy', resource: 'ciliumnetworkpolicies', group: 'cilium.io', apiVersion: 'cilium.io/v2', namespaced: true, shortNames: ['cnp', 'ciliumnp'] },
  { kind: 'CiliumClusterwideNetworkPolicy', resource: 'ciliumclusterwidenetworkpolicies', group: 'cilium.io', apiVersion: 'cilium.io/v2', namespaced: false, shortNames: ['ccnp'] },
  { kind: 'NetworkPolicy', resource: 'networkpolicies', group: 'networking.k8s.io', apiVersion: 'networking.k8s.io/v1', namespaced: true, shortNames: ['netpol'] },
  { kind: 'Pod', resource: 'pods', group: '', apiVersion: 'v1', namespaced: true, shortNames: ['po'] },
  { kind: 'Service', resource: 'services', group: '', apiVersion: 'v1', namespaced: true, shortNames: ['svc'] },
  { kind: 'Namespace', resource: 'namespaces', group: '', apiVersion: 'v1', namespaced: false, shortNames: ['ns'] },
  { kind: 'Secret', resource: 'secrets', group: '', apiVersion: 'v1', namespaced: true, shortNames: [] },
];

const byName = new Map<string, KindInfo>();
for (const k of KINDS) {
  const names = [k.resource, k.kind.toLowerCase(), ...k.shortNames];
  for (const n of names) {
    byName.set(n, k);
    if (k.group !== '') byName.set(`${n}.${k.group}`, k);
  }
}

/** Resource name, singular, short name or Kind (any case), optionally `.group`-qualified. */
export function lookupKind(name: string): KindInfo | undefined {
  return byName.get(name.toLowerCase());
}

/** kubectl's `TYPE/NAME`: `ciliumnetworkpolicy.cilium.io/rule1`, `pod/xwing`. */
export function displayName(k: KindInfo, name: string): string {
  const type = k.group === '' ? k.kind.toLowerCase() : `${k.kind.toLowerCase()}.${k.group}`;
  return `${type}/${name}`;
}
