/**
 * Label selectors and policy peers, with Cilium's namespace rewriting (docs/semantics.md#which-endpoints-a-rule-selects,
 * docs/semantics.md#peer-selection; cilium/cilium pkg/k8s/apis/cilium.io/utils/utils.go ParseToCiliumRule/getEndpointSelector).
 * Everything here runs at load time: the request path only sees the tables built from it.
 */
import { type Prefix, prefixContains } from './cidr.js';
import { CLUSTER_LABEL, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, type LabelSet, parseSelectorKey } from './labels.js';

export const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type Operator = (typeof OPERATORS)[number];

export const ENTITIES = [
  'all', 'world', 'world-ipv4', 'world-ipv6', 'host', 'remote-node', 'cluster', 'init', 'ingress', 'health',
  'unmanaged', 'kube-apiserver', 'none',
] as const;
export type Entity = (typeof ENTITIES)[number];

export interface Requirement {
  /** undefined = any source. */
  readonly source: string | undefined;
  readonly key: string;
  readonly op: Operator;
  readonly values: ReadonlySet<string>;
}

export interface LabelSelectorSpec {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?: readonly { key: string; operator: Operator; values?: readonly string[] | undefined }[] | undefined;
}

export function selectorRequirements(spec: LabelSelectorSpec, keyPrefix = ''): Requirement[] {
  const out: Requirement[] = [];
  const ml = spec.matchLabels;
  if (ml !== undefined) for (const k in ml) out.push(labelEquals(keyPrefix === '' ? k : `${keyPrefix}${k}`, ml[k] as string));
  for (const e of spec.matchExpressions ?? []) {
    const { source, key } = parseSelectorKey(keyPrefix ? `${keyPrefix}${e.key}` : e.key);
    out.push({ source, key, op: e.operator, values: new Set(e.values ?? []) });
  }
  return out;
}

/**
 * Requirements are immutable, and a large policy names the same `key: value` many times (every rule
 * allowing `app: frontend`): one shared object each keeps a reload's allocations, and so its GC
 * time, down. Bounded: cleared when full, which only costs sharing.
 */
const interned = new Map<string, Map<string, Requirement>>();
let internedCount = 0;
const INTERN_MAX = 65_536;

/** matchLabels `rawKey: value` as a requirement (source prefix split as Cilium does). */
function labelEquals(rawKey: string, value: string): Requirement {
  // Two lookups, no "key\0value" string: building and hashing that key cost more than the lookup.
  let byValue = interned.get(rawKey);
  if (byValue === undefined) {
    if (internedCount >= INTERN_MAX) {
      interned.clear();
      internedCount = 0;
    }
    byValue = new Map();
    interned.set(rawKey, byValue);
  }
  let r = byValue.get(value);
  if (r === undefined) {
    const { source, key } = parseSelectorKey(rawKey);
    r = Object.freeze({ source, key, op: 'In' as const, values: new Set([value]) });
    byValue.set(value, r);
    internedCount++;
  }
  return r;
}

/** Kubernetes LabelSelector semantics: AND of requirements; NotIn/DoesNotExist match absent keys. */
export function matchRequirements(reqs: readonly Requirement[], ls: LabelSet): boolean {
  for (const r of reqs) {
    const vals = ls.values(r.source, r.key);
    switch (r.op) {
      case 'In':
        if (!vals.some((v) => r.values.has(v))) return false;
        break;
      case 'NotIn':
        if (vals.some((v) => r.values.has(v))) return false;
        break;
      case 'Exists':
        if (vals.length === 0) return false;
        break;
      case 'DoesNotExist':
        if (vals.length > 0) return false;
        break;
    }
  }
  return true;
}

const isNamespaceKey = (r: Requirement) => r.key === POD_NAMESPACE_LABEL && (r.source === undefined || r.source === 'k8s');
const isNamespaceLabelsKey = (r: Requirement) => r.key.startsWith(NAMESPACE_LABELS_PREFIX);
const nsIs = (ns: string): Requirement => labelEquals(`k8s:${POD_NAMESPACE_LABEL}`, ns);
const nsExists: Requirement = { source: 'k8s', key: POD_NAMESPACE_LABEL, op: 'Exists', values: new Set() };

export type PolicyScope = { readonly kind: 'namespaced'; readonly namespace: string } | { readonly kind: 'clusterwide' };

/**
 * endpointSelector: a CNP only ever selects pods of its own namespace; a namespace the user wrote is
 * overwritten (docs/semantics.md#which-endpoints-a-rule-selects). A CCNP selector is used as written.
 */
export function pinSubjectSelector(reqs: Requirement[], scope: PolicyScope, warn: (m: string) => void): Requirement[] {
  if (scope.kind === 'clusterwide') return reqs;
  if (reqs.some(isNamespaceKey)) warn(`endpointSelector namespace is overwritten with the policy namespace "${scope.namespace}"`);
  return [...reqs.filter((r) => !isNamespaceKey(r)), nsIs(scope.namespace)];
}

/**
 * fromEndpoints/toEndpoints (docs/semantics.md#peer-selection): selectors with a `reserved:` key are left alone; otherwise a CNP
 * pins the peer to its namespace unless the selector names one, and a CCNP requires some namespace.
 * `io.cilium.k8s.namespace.labels.*` keys are honoured only in a CCNP.
 */
export function pinPeerSelector(reqs: Requirement[], scope: PolicyScope, warn: (m: string) => void): Requirement[] {
  if (reqs.some((r) => r.source === 'reserved')) return reqs;
  let out = reqs;
  if (scope.kind === 'namespaced') {
    if (out.some(isNamespaceLabelsKey)) {
      warn(`${NAMESPACE_LABELS_PREFIX}* selector keys are ignored in a CiliumNetworkPolicy (only honoured in a CiliumClusterwideNetworkPolicy)`);
      out = out.filter((r) => !isNamespaceLabelsKey(r));
    }
  }
  if (out.some(isNamespaceKey)) return out;
  return [...out, scope.kind === 'namespaced' ? nsIs(scope.namespace) : nsExists];
}

/** The identity a peer is matched against. */
export interface PeerIdentity {
  readonly id: number;
  readonly labelSet: LabelSet;
  /** Set for CIDR-derived identities. */
  readonly cidr: Prefix | undefined;
}

export type Peer =
  | { readonly kind: 'all' }
  | { readonly kind: 'labels'; readonly reqs: readonly Requirement[] }
  | { readonly kind: 'entity'; readonly entity: Entity }
  | { readonly kind: 'cidr'; readonly prefix: Prefix; readonly except: readonly Prefix[] };

const CLUSTER_RESERVED = ['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'];

function entityMatches(e: Entity, id: PeerIdentity, clusterName: string): boolean {
  const ls = id.labelSet;
  switch (e) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'world':
      return ls.has('reserved', 'world') || ls.has('reserved', 'world-ipv4') || ls.has('reserved', 'world-ipv6');
    case 'world-ipv4':
      return ls.has('reserved', 'world-ipv4') || id.cidr?.family === 4;
    case 'world-ipv6':
      return ls.has('reserved', 'world-ipv6') || id.cidr?.family === 6;
    case 'cluster':
      return CLUSTER_RESERVED.some((r) => ls.has('reserved', r)) || ls.values('k8s', CLUSTER_LABEL).includes(clusterName);
    default:
      return ls.has('reserved', e);
  }
}

export function peerMatches(p: Peer, id: PeerIdentity, clusterName: string): boolean {
  switch (p.kind) {
    case 'all':
      return true;
    case 'labels':
      return matchRequirements(p.reqs, id.labelSet);
    case 'entity':
      return entityMatches(p.entity, id, clusterName);
    case 'cidr':
      // CIDR peers select world addresses only (pods and nodes keep their own identities).
      return id.cidr !== undefined && prefixContains(p.prefix, id.cidr) && !p.except.some((x) => prefixContains(x, id.cidr as Prefix));
  }
}
