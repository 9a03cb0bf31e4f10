/**
 * PolicyState.endpoints with their identities and endpoint IDs: built from every pod, or from the
 * previous build's endpoints and the pods that changed since (policy/build.ts).
 *
 * From scratch, a 10,000-pod cluster spent ~30 ms of self time a rebuild here (label sets, IP
 * owners, sorting, numbering, 10,000 new Endpoint objects, and their garbage) for one pod's new IP.
 * After a change of a few pods the previous endpoints are kept (same objects: Services, the state's
 * address map and the identity indexes see them unchanged), the changed pods' are made and merged
 * in, and identity and endpoint numbers are allocated for what is new only. The result is the one a build from scratch gives with
 * the same `previous`; test/policy/incremental-build.test.ts compares the two.
 */
import {
  allocate, allocateMore, CLUSTER_ID_MAX, CLUSTER_ID_MIN, ENDPOINT_ID_LIMIT, ENDPOINT_ID_MAX, ENDPOINT_ID_MIN, type IdentityEntry, keepIdentity,
  labelKey, makeIdentity, previousEndpointIds,
} from './identity.js';
import type { PodInfo } from './kube.js';
import { podIdentityLabels } from './labels.js';
import type { Endpoint, Identity, PolicyState } from './model.js';
import { byNamespaceName, isLive, isPlain, nodeAddresses, podEndpoints } from './pod-endpoints.js';
import type { Steps } from './steps.js';

export interface EndpointsContext {
  readonly clusterName: string;
  /** This node; undefined: every pod is local. */
  readonly nodeName: string | undefined;
  readonly namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

/** A build's endpoints, and what the next build needs to start from them. */
export interface EndpointsMemo {
  /** Sorted by namespace/name. */
  readonly endpoints: readonly Endpoint[];
  readonly byIP: ReadonlyMap<string, Endpoint>;
  /** Cluster identities in the order of their first endpoint (their order in PolicyState.identities). */
  readonly identities: readonly IdentityEntry[];
  /** labelKey -> each of `identities`: the numbers a next build keeps. */
  readonly byKey: ReadonlyMap<string, IdentityEntry>;
  /** Live hostNetwork pods, and the node addresses they give. */
  readonly hostPods: readonly PodInfo[];
  readonly hostIPs: readonly string[];
  readonly remoteNodeIPs: readonly string[];
  /** Every endpoint name is plain (code-unit order). */
  readonly plain: boolean;
  /** Some pod IP had two claimants. */
  readonly contested: boolean;
  /** This node's endpoints, and the top of their ID range. */
  readonly localCount: number;
  readonly idMax: number;
}

export interface EndpointsStage {
  readonly memo: EndpointsMemo;
  readonly warnings: readonly string[];
  /** Against the previous build: its endpoints that are gone, and the new ones; undefined from scratch. */
  readonly removed: readonly Endpoint[] | undefined;
  readonly added: readonly Endpoint[] | undefined;
}

const localTo = (nodeName: string | undefined) => (p: PodInfo) => nodeName === undefined || p.nodeName === undefined || p.nodeName === nodeName;

/**
 * Endpoint IDs: Cilium numbers the endpoints of its own node only, from a pool of [1, 4095] per
 * agent; the pods of other nodes are endpoints with ID 0. Returns the top of the range.
 */
function endpointIdRange(localCount: number, nodeName: string | undefined, warnings: string[]): number {
  const where = nodeName === undefined ? 'this node (no node name is set: every pod counts as local)' : `node ${nodeName}`;
  if (localCount > ENDPOINT_ID_LIMIT - ENDPOINT_ID_MIN + 1) {
    throw new RangeError(`cannot allocate ${localCount} ids in [${ENDPOINT_ID_MIN}, ${ENDPOINT_ID_LIMIT}]: ${localCount} pods on ${where}`);
  }
  if (localCount <= ENDPOINT_ID_MAX - ENDPOINT_ID_MIN + 1) return ENDPOINT_ID_MAX;
  warnings.push(`${localCount} pods on ${where}: more than a Cilium agent's ${ENDPOINT_ID_MAX} endpoint IDs; numbered in [${ENDPOINT_ID_MIN}, ${ENDPOINT_ID_LIMIT}]`);
  return ENDPOINT_ID_LIMIT;
}

function makeEndpoint(p: PodInfo, id: number, identity: IdentityEntry): Endpoint {
  return Object.freeze({
    id,
    namespace: p.namespace,
    name: p.name,
    // PodInfo's own objects (parsed once per Pod object, never changed): frozen as they are. (A
    // spread copy is frozen with a hidden class of its own: ~350 bytes a pod.)
    ips: Object.freeze(p.ips),
    identity,
    podLabels: Object.freeze(p.labels),
    workload: Object.freeze(p.workload),
    namedPorts: p.namedPorts,
  });
}

function identityLabels(p: PodInfo, ctx: EndpointsContext): string[] {
  return podIdentityLabels({
    namespace: p.namespace, serviceAccount: p.serviceAccount, clusterName: ctx.clusterName, podLabels: p.labels,
    namespaceLabels: ctx.namespaces.get(p.namespace) ?? {},
  });
}

/** Every pod's endpoint; identity and endpoint numbers kept from `previous` where they still apply. */
export function* endpointsFromScratch(
  allPods: readonly PodInfo[], ctx: EndpointsContext, previous: PolicyState | undefined, prevIds: ReadonlyMap<string, Identity>,
): Steps<EndpointsStage> {
  const warnings: string[] = [];
  const isLocal = localTo(ctx.nodeName);
  const pe = podEndpoints(allPods, isLocal, warnings);
  const pods = pe.pods;
  // The pods of a workload share namespace, service account and labels: their identity labels are
  // computed once (100,000 pods, a few thousand label sets).
  const labelSets = new Map<string, { readonly labels: string[]; readonly key: string }>();
  const podLabelSets = pods.map((p) => {
    let k = `${p.namespace}\0${p.serviceAccount}`;
    for (const l in p.labels) k += `\0${l}\0${p.labels[l] as string}`;
    let set = labelSets.get(k);
    if (set === undefined) {
      const labels = identityLabels(p, ctx);
      labelSets.set(k, (set = { labels, key: labelKey(labels) }));
    }
    return set;
  });
  yield;
  // One cluster identity per distinct label set, whichever node the pod runs on.
  const clusterNums = allocate([...labelSets.values()].map((x) => x.key), prevIds, CLUSTER_ID_MIN, CLUSTER_ID_MAX);
  const byKey = new Map<string, IdentityEntry>();
  for (const { labels, key } of labelSets.values()) {
    if (!byKey.has(key)) byKey.set(key, keepIdentity(prevIds.get(key), clusterNums.get(key) as number, labels));
  }

  yield;
  const localKeys: (string | undefined)[] = pods.map((p) => (isLocal(p) ? `${p.namespace}/${p.name}` : undefined));
  const localCount = localKeys.reduce((n, k) => (k === undefined ? n : n + 1), 0);
  const idMax = endpointIdRange(localCount, ctx.nodeName, warnings);
  const epIds = allocate(localKeys.filter((k) => k !== undefined), previousEndpointIds(previous), ENDPOINT_ID_MIN, idMax);
  const endpoints: Endpoint[] = pods.map((p, i) => {
    const k = localKeys[i];
    return makeEndpoint(p, k === undefined ? 0 : (epIds.get(k) as number), byKey.get((podLabelSets[i] as { key: string }).key) as IdentityEntry);
  });

  yield;
  const byIP = new Map<string, Endpoint>();
  for (const e of endpoints) for (const ip of e.ips) byIP.set(ip, e);
  const memo: EndpointsMemo = {
    endpoints, byIP, identities: [...byKey.values()], byKey, hostPods: pe.hostPods, hostIPs: pe.hostIPs, remoteNodeIPs: pe.remoteNodeIPs,
    plain: pe.plain, contested: pe.contested, localCount, idMax,
  };
  return { memo, warnings, removed: undefined, added: undefined };
}

/**
 * The previous endpoints after `removed` Pods left and `added` ones came (a changed Pod is both);
 * undefined where only a build from scratch can tell: an IP claimed twice (now or before), a name
 * that is not plain, the ID range growing past (or back within) 4,095.
 */
export function endpointsAfter(prev: EndpointsMemo, removed: readonly PodInfo[], added: readonly PodInfo[], ctx: EndpointsContext): EndpointsStage | undefined {
  if (prev.contested || !prev.plain) return undefined;
  const isLocal = localTo(ctx.nodeName);
  let hostPods = prev.hostPods;
  const gone = new Map<string, Endpoint>();
  for (const p of removed) {
    if (!isLive(p)) continue;
    if (p.hostNetwork) {
      const rest = hostPods.filter((x) => x !== p);
      if (rest.length === hostPods.length) return undefined;
      hostPods = rest;
      continue;
    }
    // Uncontested: a live pod was the endpoint at each of its IPs.
    const e = prev.byIP.get(p.ips[0] as string);
    if (e === undefined || e.namespace !== p.namespace || e.name !== p.name) return undefined;
    gone.set(`${p.namespace}/${p.name}`, e);
  }
  const goneSet = new Set(gone.values());
  const fresh: { readonly pod: PodInfo; readonly labels: string[]; readonly key: string; readonly before: Endpoint | undefined }[] = [];
  const claimed = new Set<string>();
  for (const p of added) {
    if (!isLive(p)) continue;
    if (p.hostNetwork) {
      hostPods = [...hostPods, p];
      continue;
    }
    if (!isPlain(p)) return undefined;
    for (const ip of p.ips) {
      const owner = prev.byIP.get(ip);
      if ((owner !== undefined && !goneSet.has(owner)) || claimed.has(ip)) return undefined;
      claimed.add(ip);
    }
    const labels = identityLabels(p, ctx);
    fresh.push({ pod: p, labels, key: labelKey(labels), before: gone.get(`${p.namespace}/${p.name}`) });
  }

  let localCount = prev.localCount;
  for (const e of goneSet) if (e.id !== 0) localCount--;
  for (const f of fresh) if (isLocal(f.pod)) localCount++;
  const warnings: string[] = [];

  // A pod that comes back as it was (a status-only update) keeps its endpoint object: the number it
  // had is the one it gets (previous numbers are kept first, below and in a full build alike).
  const kept = new Set<Endpoint>();
  for (const f of fresh) {
    const b = f.before;
    if (b !== undefined && b.identity === prev.byKey.get(f.key) && (b.id !== 0) === isLocal(f.pod) && sameEndpoint(b, f.pod)) kept.add(b);
  }
  for (const e of kept) goneSet.delete(e);
  const remaining = goneSet.size === 0 ? prev.endpoints : prev.endpoints.filter((e) => !goneSet.has(e));

  // Identities: previous numbers for label sets that had one; new sets hashed past the numbers in use.
  const newKeys = [...new Set(fresh.filter((f) => !prev.byKey.has(f.key)).map((f) => f.key))].sort();
  const created = new Map<string, IdentityEntry>();
  if (newKeys.length > 0) {
    const used = new Set<number>();
    for (const e of remaining) used.add(e.identity.id);
    for (const f of fresh) {
      const id = prev.byKey.get(f.key);
      if (id !== undefined) used.add(id.id);
    }
    const nums = allocateMore(newKeys, used, CLUSTER_ID_MIN, CLUSTER_ID_MAX);
    for (const f of fresh) if (!prev.byKey.has(f.key) && !created.has(f.key)) created.set(f.key, makeIdentity(nums.get(f.key) as number, f.labels));
  }

  // Endpoint IDs, the same way (a Pod's key is namespace/name, which a changed Pod keeps).
  const idMax = endpointIdRange(localCount, ctx.nodeName, warnings);
  if (idMax !== prev.idMax) return undefined;
  const ids = new Map<PodInfo, number>();
  const wanting: string[] = [];
  const podOf = new Map<string, PodInfo>();
  for (const f of fresh) {
    if (!isLocal(f.pod)) ids.set(f.pod, 0);
    else if (f.before !== undefined && f.before.id !== 0) ids.set(f.pod, f.before.id);
    else {
      const k = `${f.pod.namespace}/${f.pod.name}`;
      wanting.push(k);
      podOf.set(k, f.pod);
    }
  }
  if (wanting.length > 0) {
    const used = new Set<number>();
    for (const e of remaining) if (e.id !== 0) used.add(e.id);
    for (const id of ids.values()) if (id !== 0) used.add(id);
    for (const [k, n] of allocateMore(wanting.sort(), used, ENDPOINT_ID_MIN, idMax)) ids.set(podOf.get(k) as PodInfo, n);
  }

  const made: Endpoint[] = [];
  for (const f of fresh) {
    if (f.before !== undefined && kept.has(f.before)) continue;
    made.push(makeEndpoint(f.pod, ids.get(f.pod) as number, prev.byKey.get(f.key) ?? (created.get(f.key) as IdentityEntry)));
  }
  made.sort(byNamespaceName);
  const endpoints = merge(remaining, made);

  let byIP = prev.byIP;
  if (goneSet.size > 0 || made.length > 0) {
    const m = new Map(prev.byIP);
    for (const e of goneSet) for (const ip of e.ips) m.delete(ip);
    for (const e of made) for (const ip of e.ips) m.set(ip, e);
    byIP = m;
  }
  const identities = identityOrder(endpoints, prev.identities, goneSet, made);
  const hostChanged = hostPods !== prev.hostPods;
  const nodes = hostChanged ? nodeAddresses(hostPods, isLocal) : prev;
  // byKey is a lookup: another order of the same identities keeps it (labelKey of 2,000: ~0.5 ms).
  const before = identities === prev.identities ? undefined : new Set(prev.identities);
  const sameSet = before === undefined || (identities.length === before.size && identities.every((i) => before.has(i)));
  const memo: EndpointsMemo = {
    endpoints, byIP, identities, byKey: sameSet ? prev.byKey : new Map(identities.map((i) => [labelKey(i.labels), i])),
    hostPods, hostIPs: nodes.hostIPs, remoteNodeIPs: nodes.remoteNodeIPs, plain: true, contested: false, localCount, idMax,
  };
  return { memo, warnings, removed: [...goneSet], added: made };
}

/** Same pod content as the endpoint shows (namespace and name are the caller's key). */
function sameEndpoint(e: Endpoint, p: PodInfo): boolean {
  if (e.namedPorts !== p.namedPorts || e.workload?.name !== p.workload.name || e.workload.kind !== p.workload.kind) return false;
  if (e.ips.length !== p.ips.length || e.ips.some((ip, i) => ip !== p.ips[i])) return false;
  const a = Object.keys(e.podLabels);
  const b = Object.keys(p.labels);
  return a.length === b.length && a.every((k, i) => k === b[i] && e.podLabels[k] === p.labels[k]);
}

/** Two lists sorted by namespace/name (code units), with no name in both. */
function merge(a: readonly Endpoint[], b: readonly Endpoint[]): readonly Endpoint[] {
  if (b.length === 0) return a;
  const out: Endpoint[] = new Array<Endpoint>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = byNamespaceName(a[i] as Endpoint, b[j] as Endpoint) < 0 ? (a[i++] as Endpoint) : (b[j++] as Endpoint);
  while (i < a.length) out[k++] = a[i++] as Endpoint;
  while (j < b.length) out[k++] = b[j++] as Endpoint;
  return out;
}

/**
 * The endpoints' identities in order of first appearance, as a full build lists them; `previous`
 * itself when that is unchanged. A changed pod that kept its identity, replaced in place, cannot
 * change it: the walk over every endpoint (~0.3 ms for 10,000) is skipped then.
 */
function identityOrder(endpoints: readonly Endpoint[], previous: readonly IdentityEntry[], gone: ReadonlySet<Endpoint>, made: readonly Endpoint[]): readonly IdentityEntry[] {
  if (gone.size === 0 && made.length === 0) return previous;
  if (gone.size === made.length) {
    const before = new Map<string, Endpoint>();
    for (const e of gone) before.set(`${e.namespace}/${e.name}`, e);
    if (made.every((e) => before.get(`${e.namespace}/${e.name}`)?.identity === e.identity)) return previous;
  }
  const seen = new Set<Identity>();
  const order: IdentityEntry[] = [];
  for (const e of endpoints) {
    if (seen.has(e.identity)) continue;
    seen.add(e.identity);
    order.push(e.identity as IdentityEntry);
  }
  return order.length === previous.length && order.every((x, i) => x === previous[i]) ? previous : order;
}
