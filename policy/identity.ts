/**
 * Security identities: Cilium's reserved numbers, cluster identities for pod label sets, CIDR-derived
 * (local scope) identities, and endpoint IDs. All numbers are deterministic (hash of the label string,
 * linear probe on collision) and stable across reloads: a rebuild reuses the previous state's number
 * for every label set (or endpoint) that still exists.
 */
import type { Prefix } from './cidr.js';
import { LabelSet } from './labels.js';
import type { Identity, PolicyState } from './model.js';
import type { PeerIdentity } from './selector.js';

/** Reserved identities as Cilium numbers them (pkg/identity/numericidentity.go). */
export const RESERVED_IDS = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;

export const CLUSTER_ID_MIN = 256;
export const CLUSTER_ID_MAX = 65535;
/** Cilium's local (CIDR) identity scope starts at 1 << 24. */
export const LOCAL_ID_MIN = 16777216;
export const LOCAL_ID_MAX = 16777216 + 0xffffff;
/** A Cilium agent's endpoint ID pool (cilium/cilium pkg/endpointmanager/idallocator: minID 1, maxID 4095). */
export const ENDPOINT_ID_MIN = 1;
export const ENDPOINT_ID_MAX = 4095;
/**
 * Endpoint IDs are uint16 in Cilium (idallocator Allocate() returns uint16): where a node runs more
 * pods than the pool holds (no Cilium node can; kubelets run 110 by default), l7guard numbers them
 * up to this rather than refuse the whole cluster.
 */
export const ENDPOINT_ID_LIMIT = 65535;

/** An Identity with what selectors need; what PolicyState.identities holds. */
export interface IdentityEntry extends Identity, PeerIdentity {}

export function makeIdentity(id: number, labels: readonly string[], cidr?: Prefix): IdentityEntry {
  return Object.freeze({ id, labels: Object.freeze([...labels]), labelSet: new LabelSet(labels), cidr });
}

export function reservedIdentities(): IdentityEntry[] {
  return Object.entries(RESERVED_IDS).map(([name, id]) => makeIdentity(id, [`reserved:${name}`]));
}

/** FNV-1a, 32 bit: small, stable across Node versions and platforms. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Assigns a number in [min, max] to each key: the previous number when still free, otherwise the
 * key's hash slot, probing upward on collision. Keys are processed sorted, so the result depends only
 * on the key set and `previous`.
 */
export function allocate(keys: Iterable<string>, previous: ReadonlyMap<string, number | Identity>, min: number, max: number): Map<string, number> {
  const sorted = [...new Set(keys)].sort();
  const size = max - min + 1;
  if (sorted.length > size) throw new RangeError(`cannot allocate ${sorted.length} ids in [${min}, ${max}]`);
  const out = new Map<string, number>();
  const used = new Set<number>();
  const fresh: string[] = [];
  for (const k of sorted) {
    const v = previous.get(k);
    const p = typeof v === 'number' ? v : v?.id;
    if (p !== undefined && p >= min && p <= max && !used.has(p)) {
      out.set(k, p);
      used.add(p);
    } else fresh.push(k);
  }
  allocateMore(fresh, used, min, max, out);
  return out;
}

/**
 * allocate()'s second pass: each of `sorted` (keys without a number of their own, in sort order) at
 * its hash slot, probing upward past `used` (which it extends). A rebuild that keeps every previous
 * number calls it alone for the new keys: the same numbers as allocate() over all the keys.
 */
export function allocateMore(sorted: readonly string[], used: Set<number>, min: number, max: number, out = new Map<string, number>()): Map<string, number> {
  const size = max - min + 1;
  if (used.size + sorted.length > size) throw new RangeError(`cannot allocate ${used.size + sorted.length} ids in [${min}, ${max}]`);
  for (const k of sorted) {
    let n = min + (fnv1a(k) % size);
    while (used.has(n)) n = n === max ? min : n + 1;
    out.set(k, n);
    used.add(n);
  }
  return out;
}

export const labelKey = (labels: readonly string[]) => labels.join(',');

/** label string -> the previous state's identities (cluster and CIDR scope): their numbers are kept. */
export function previousIdentities(prev: PolicyState | undefined): Map<string, Identity> {
  const m = new Map<string, Identity>();
  if (prev) for (const id of prev.identities.values()) if (id.id >= CLUSTER_ID_MIN) m.set(labelKey(id.labels), id);
  return m;
}

/**
 * The previous build's entry when it has the same number (labels are the key), else a new one.
 * Sharing it spares a reload rebuilding a LabelSet per identity; a worker's numbering seed
 * (proxy/cluster/messages.ts) carries bare identities without one, and gets new entries.
 */
export function keepIdentity(previous: Identity | undefined, id: number, labels: readonly string[], cidr?: Prefix): IdentityEntry {
  if (previous !== undefined && previous.id === id && 'labelSet' in previous) return previous as IdentityEntry;
  return makeIdentity(id, labels, cidr);
}

export function previousEndpointIds(prev: PolicyState | undefined): Map<string, number> {
  const m = new Map<string, number>();
  // ID 0: a pod of another node, nothing to keep.
  if (prev) for (const e of prev.endpoints) if (e.id !== 0) m.set(`${e.namespace}/${e.name}`, e.id);
  return m;
}

/** CIDR identity labels: `cidr:<prefix>` plus `reserved:world`. */
export function cidrLabels(p: Prefix): string[] {
  return [`cidr:${p.text}`, 'reserved:world'].sort();
}
