/**
 * parse -> validate -> identities -> select -> compile -> immutable PolicyState.
 */
import { parsePrefix, type Prefix } from './cidr.js';
import { classify } from './classify.js';
import { compileRulesSteps } from './compile.js';
import { type LoadProblem, PolicyLoadError } from './errors.js';
import {
  allocate, CLUSTER_ID_MAX, CLUSTER_ID_MIN, cidrLabels, ENDPOINT_ID_LIMIT, ENDPOINT_ID_MAX, ENDPOINT_ID_MIN, type IdentityEntry, LOCAL_ID_MAX,
  LOCAL_ID_MIN, keepIdentity, labelKey, previousEndpointIds, previousIdentities, reservedIdentities,
} from './identity.js';
import { type PodInfo, readCluster, type ServiceInfo, type SliceInfo, type SlicePort } from './kube.js';
import { podIdentityLabels } from './labels.js';
import { dedupe, type SourcedObject } from './load.js';
import type { Backend, Endpoint, LoadedObject, PolicyRuleSource, PolicyState, Service, ServicePort } from './model.js';
import { Resolver } from './resolve.js';
import { parsePolicy, type PolicySpec, type RuleSpec } from './schema.js';
import { CompiledPolicyState } from './state.js';
import { resolveTls } from './tls.js';
import { drain, ITEMS_PER_STEP, runSliced, type Steps } from './steps.js';

export interface BuildOptions {
  clusterName: string;
  nodeIPs: readonly string[];
  allowLocalhost: 'always' | 'policy';
  previous?: PolicyState | undefined;
  revision: number;
  /**
   * This node's name (the proxy's `--node-name`): pods whose spec.nodeName differs run elsewhere.
   * They stay identities (their labels decide verdicts) but get endpoint ID 0, and the IPs of
   * their hostNetwork pods are `remote-node`. Unset (or a pod without spec.nodeName): local.
   */
  nodeName?: string | undefined;
}

export interface ParsedObjects {
  readonly policies: PolicySpec[];
  readonly problems: LoadProblem[];
  readonly warnings: string[];
}

/**
 * Validation results by raw object. Parsed objects are never mutated, and a reload reuses those of
 * unchanged files (proxy/sources/file-snapshot.ts caches them by content hash) and of the API
 * overlay: re-validating 10,000 unchanged rules for each one-object change cost ~25 ms per reload.
 * Weak: an object nobody holds any more takes its entry with it.
 */
const validated = new WeakMap<object, { kind: PolicySpec['kind']; namespace: string | undefined; name: string; file: string; line: number | undefined; result: ReturnType<typeof parsePolicy> }>();

function parsedPolicy(kind: PolicySpec['kind'], namespace: string | undefined, o: SourcedObject): ReturnType<typeof parsePolicy> {
  const hit = validated.get(o.raw);
  if (hit !== undefined && hit.kind === kind && hit.namespace === namespace && hit.name === o.name && hit.file === o.file && hit.line === o.line) return hit.result;
  const result = parsePolicy({ kind, namespace, name: o.name, file: o.file, line: o.line, raw: o.raw });
  validated.set(o.raw, { kind, namespace, name: o.name, file: o.file, line: o.line, result });
  return result;
}

type ParsedWithResults = ParsedObjects & { results: { object: SourcedObject; problems: readonly LoadProblem[] }[] };

/** Parses and validates every policy object; collects problems instead of throwing. */
export function parseObjects(objects: readonly SourcedObject[]): ParsedWithResults {
  return drain(parseObjectsSteps(objects));
}

function* parseObjectsSteps(objects: readonly SourcedObject[]): Steps<ParsedWithResults> {
  const policies: PolicySpec[] = [];
  const problems: LoadProblem[] = [];
  const warnings: string[] = [];
  const results: { object: SourcedObject; problems: readonly LoadProblem[] }[] = [];
  for (let i = 0; i < objects.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    const o = objects[i] as SourcedObject;
    const c = classify(o);
    if (c.type === 'skip') warnings.push(c.warning);
    else if (c.type === 'error') {
      problems.push(c.problem);
      results.push({ object: o, problems: [c.problem] });
    } else if (c.type === 'policy') {
      const ns = c.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (o.namespace ?? 'default');
      const r = parsedPolicy(c.kind, ns, o);
      problems.push(...r.problems);
      warnings.push(...r.warnings);
      results.push({ object: o, problems: r.problems });
      if (r.policy) policies.push(r.policy);
    }
  }
  return { policies, problems, warnings, results };
}

/** Every prefix a policy names (including `except`s): each becomes a CIDR identity. */
function policyPrefixes(rules: readonly RuleSpec[]): Prefix[] {
  const m = new Map<string, Prefix>();
  const add = (p: Prefix) => m.set(p.text, p);
  for (const r of rules) {
    for (const list of [r.ingress, r.ingressDeny, r.egress, r.egressDeny]) {
      for (const pr of list) for (const p of pr.peers) {
        if (p.kind === 'cidr') {
          add(p.prefix);
          p.except.forEach(add);
        } else if (p.kind === 'entity' && (p.entity === 'world-ipv4' || p.entity === 'world-ipv6')) {
          // world-ipv4/-ipv6 select by address family: give every world address of that family a
          // CIDR identity (0.0.0.0/0 or ::/0) so the entity can tell them apart.
          add(parsePrefix(p.entity === 'world-ipv4' ? '0.0.0.0/0' : '::/0') as Prefix);
        }
      }
    }
  }
  return [...m.values()];
}

function matchesLabels(sel: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) return false;
  return true;
}

/**
 * Endpoints and Services are sorted as `localeCompare` orders them. For the characters of
 * Kubernetes names (DNS-1123: lower-case letters, digits, '-', '.'; and the '/' of "ns/name") that
 * order is the plain code-unit order (test/policy/kube.test.ts checks every pair of strings of up to
 * two such characters), ~10 times cheaper: 100,000 pods sorted in ~40 ms rather than ~450 ms.
 */
const collate = new Intl.Collator().compare;
const PLAIN = /^[a-z0-9./-]*$/;
const codeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sortByNamespaceName<T extends { readonly namespace: string; readonly name: string }>(items: T[]): T[] {
  const cmp = items.every((i) => PLAIN.test(i.namespace) && PLAIN.test(i.name)) ? codeUnits : collate;
  return items.sort((a, b) => (a.namespace === b.namespace ? cmp(a.name, b.name) : cmp(a.namespace, b.namespace)));
}

/**
 * Which pods are endpoints, and the node addresses hostNetwork pods reveal. Cilium's pod watcher
 * (cilium/cilium pkg/k8s/watchers/pod.go) drops the IPs of pods that are not running
 * (k8sUtils.IsPodRunning: phase Succeeded or Failed, "the IP address is no longer in use") and
 * skips `spec.hostNetwork` pods: their IP is their node's, which the node manager
 * (pkg/node/manager/manager.go upsertIntoIDMD) labels `reserved:host` on that node and
 * `reserved:remote-node` elsewhere.
 */
function podEndpoints(pods: readonly PodInfo[], isLocal: (p: PodInfo) => boolean, warnings: string[]): { pods: PodInfo[]; hostIPs: string[]; remoteNodeIPs: string[] } {
  const live: PodInfo[] = [];
  const host = new Set<string>();
  const remote = new Set<string>();
  for (const p of pods) {
    if (p.ips.length === 0 || p.phase === 'Succeeded' || p.phase === 'Failed') continue;
    if (p.hostNetwork) for (const ip of p.ips) (isLocal(p) ? host : remote).add(ip);
    else live.push(p);
  }
  for (const ip of host) remote.delete(ip);
  return { pods: sortByNamespaceName(ownIPs(live, warnings)), hostIPs: [...host], remoteNodeIPs: [...remote] };
}

/** a is newer than b: created later; at the same time (or both without a timestamp) the greater namespace/name. */
function newer(a: PodInfo, b: PodInfo): boolean {
  if (a.created !== b.created) return a.created > b.created;
  return a.namespace === b.namespace ? a.name > b.name : a.namespace > b.namespace;
}

/**
 * One owner per IP. When a pod's IP is handed to a new pod before the old one has left the API
 * (deleted, not yet gone; or a finished pod whose phase is not updated yet), both claim it: the
 * newer pod owns it, whatever the order objects arrive in, so traffic from that IP switches to the
 * new pod's identity in one revision. The older pod keeps its other IPs (an endpoint no more when
 * none is left).
 */
function ownIPs(pods: PodInfo[], warnings: string[]): PodInfo[] {
  const owner = new Map<string, PodInfo>();
  const contested = new Set<string>();
  for (const p of pods) {
    for (const ip of p.ips) {
      const o = owner.get(ip);
      if (o === undefined) owner.set(ip, p);
      else {
        contested.add(ip);
        if (newer(p, o)) owner.set(ip, p);
      }
    }
  }
  if (contested.size === 0) return pods;
  for (const ip of [...contested].sort()) {
    const o = owner.get(ip) as PodInfo;
    const others = pods.filter((p) => p !== o && p.ips.includes(ip)).map((p) => `${p.namespace}/${p.name}`).sort();
    warnings.push(`Pod IP ${ip} is claimed by ${others.join(', ')} and ${o.namespace}/${o.name}: the newest, ${o.namespace}/${o.name}, owns it`);
  }
  const out: PodInfo[] = [];
  for (const p of pods) {
    if (!p.ips.some((ip) => contested.has(ip))) out.push(p);
    else {
      const ips = p.ips.filter((ip) => owner.get(ip) === p);
      if (ips.length > 0) out.push({ ...p, ips });
    }
  }
  return out;
}

/**
 * Endpoints by namespace, then by label key and value: a Service selector's candidates are the
 * shortest list of one of its pairs (then matched exactly), not every endpoint. A namespace is
 * indexed when a selector first asks for it: Services with EndpointSlices (all of them, from a
 * cluster) need none.
 */
class EndpointIndex {
  readonly #byNs = new Map<string, Endpoint[]>();
  readonly #index = new Map<string, Map<string, Map<string, Endpoint[]>>>();

  constructor(endpoints: readonly Endpoint[]) {
    for (const e of endpoints) {
      const list = this.#byNs.get(e.namespace);
      if (list === undefined) this.#byNs.set(e.namespace, [e]);
      else list.push(e);
    }
  }

  #of(namespace: string): Map<string, Map<string, Endpoint[]>> {
    let m = this.#index.get(namespace);
    if (m === undefined) {
      m = new Map();
      for (const e of this.#byNs.get(namespace) ?? []) {
        for (const k in e.podLabels) {
          const v = e.podLabels[k] as string;
          let byValue = m.get(k);
          if (byValue === undefined) m.set(k, (byValue = new Map()));
          const list = byValue.get(v);
          if (list === undefined) byValue.set(v, [e]);
          else list.push(e);
        }
      }
      this.#index.set(namespace, m);
    }
    return m;
  }

  /** Endpoints of `namespace` whose pod labels hold every pair of `selector` (non-empty), in endpoint order. */
  select(namespace: string, selector: Readonly<Record<string, string>>): Endpoint[] {
    const m = this.#of(namespace);
    let best: Endpoint[] | undefined;
    for (const [k, v] of Object.entries(selector)) {
      const list = m.get(k)?.get(v);
      if (list === undefined) return [];
      if (best === undefined || list.length < best.length) best = list;
    }
    return (best ?? []).filter((e) => matchesLabels(selector, e.podLabels));
  }
}

/**
 * A Service's backends from its EndpointSlices (discovery.k8s.io/v1): each slice endpoint that is
 * not `ready: false`, at its first address, is the pod that owns that address (a VM, or a pod not
 * seen with that IP yet, is no pod: no backend). A `targetRef` naming another pod marks a stale
 * entry (the address went to a new pod): skipped. Each TCP Service port takes the target port of
 * the slice port with its name (`""` for an unnamed port; a nil slice port, "all ports", keeps the
 * Service's targetPort).
 */
function sliceBackends(svc: ServiceInfo, slices: readonly SliceInfo[], byIP: ReadonlyMap<string, Endpoint>): { endpoints: Endpoint[]; byPort: Map<number, readonly Backend[]> } {
  const tcp = svc.ports.filter((p) => p.protocol === 'TCP');
  const members = new Set<Endpoint>();
  const perPort = new Map<number, Map<Endpoint, Backend>>(tcp.map((p) => [p.port, new Map()]));
  for (const sl of [...slices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const targets: [ServicePort, SlicePort][] = [];
    for (const sp of tcp) {
      const name = sp.name ?? '';
      let p = sl.ports.find((x) => x.name === name && x.protocol === 'TCP');
      // An unnamed Service port with one slice port: that one (whatever name it was given).
      if (p === undefined && name === '' && tcp.length === 1 && sl.ports.length === 1 && sl.ports[0]?.protocol === 'TCP') p = sl.ports[0];
      if (p !== undefined) targets.push([sp, p]);
    }
    for (const e of sl.endpoints) {
      if (!e.ready || e.address === undefined) continue;
      const ep = byIP.get(e.address);
      if (ep === undefined) continue;
      if (e.pod !== undefined && (e.pod.name !== ep.name || e.pod.namespace !== ep.namespace)) continue;
      members.add(ep);
      for (const [sp, p] of targets) {
        const port = p.port ?? (typeof sp.targetPort === 'number' ? sp.targetPort : ep.namedPorts.get(sp.targetPort));
        if (port === undefined) continue;
        const m = perPort.get(sp.port) as Map<Endpoint, Backend>;
        const prev = m.get(ep);
        // A pod in two slices (one per address family, or while the controller moves it): one
        // backend, at its first IP when a slice has it.
        if (prev === undefined || (prev.ip !== ep.ips[0] && e.address === ep.ips[0])) m.set(ep, Object.freeze({ endpoint: ep, ip: e.address, port }));
      }
    }
  }
  const endpoints = sortByNamespaceName([...members]);
  const order = new Map(endpoints.map((e, i) => [e, i]));
  const byPort = new Map<number, readonly Backend[]>();
  for (const [port, m] of perPort) byPort.set(port, Object.freeze([...m.values()].sort((a, b) => (order.get(a.endpoint) as number) - (order.get(b.endpoint) as number))));
  return { endpoints, byPort };
}

/** Every valid policy's rules as written, numbered as RuleRef.ruleIndex: `spec` first, then `specs[]`. */
function policyRuleSources(results: ReturnType<typeof parseObjects>['results']): PolicyRuleSource[] {
  const out: PolicyRuleSource[] = [];
  for (const { object: o, problems } of results) {
    if (problems.length > 0 || !POLICY_KINDS.has(o.kind)) continue;
    const kind = o.kind as PolicyRuleSource['kind'];
    const namespace = kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (o.namespace ?? 'default');
    const specs: unknown[] = [];
    if (o.raw['spec'] !== undefined && o.raw['spec'] !== null) specs.push(o.raw['spec']);
    if (kind !== 'NetworkPolicy' && Array.isArray(o.raw['specs'])) specs.push(...(o.raw['specs'] as unknown[]));
    specs.forEach((spec, ruleIndex) => out.push(Object.freeze({ kind, namespace, name: o.name, ruleIndex, file: o.file, spec })));
  }
  return out;
}

const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

// The compiled rules keep the two lookups below. Made here, not in buildSteps, so that they keep
// only what they read: a closure made in buildSteps shares the scope its other closures capture,
// and would keep the build's per-pod arrays alive as long as the state.

function secretLookup(secrets: ReadonlyMap<string, ReadonlyMap<string, string>>): (ns: string, name: string) => string | undefined {
  return (ns, name) => {
    const data = secrets.get(`${ns}/${name}`);
    // Cilium uses the Secret's only item; a Secret with 0 or several items does not resolve
    // (cilium/cilium pkg/crypto/certificatemanager/certificate_manager.go GetSecretString).
    if (data === undefined || data.size !== 1) return undefined;
    return data.values().next().value as string;
  };
}

function tlsLookup<K, V>(tls: ReadonlyMap<K, V>): (k: K) => V | undefined {
  return (k) => tls.get(k);
}

export function buildPolicyState(input: SourcedObject[], opts: BuildOptions): PolicyState {
  return drain(buildSteps(input, opts));
}

/**
 * buildPolicyState returning to the event loop every `sliceMs`: a reload of a 10,000-rule policy
 * (~60 ms of work) must not hold up requests served meanwhile. Same result, a little later.
 */
export function buildPolicyStateSliced(input: SourcedObject[], opts: BuildOptions, sliceMs = 4): Promise<PolicyState> {
  return runSliced(buildSteps(input, opts), sliceMs);
}

function* buildSteps(input: SourcedObject[], opts: BuildOptions): Steps<PolicyState> {
  const warnings: string[] = [];
  const objects = dedupe(input, warnings);
  const parsed = yield* parseObjectsSteps(objects);
  warnings.push(...parsed.warnings);
  const problems = [...parsed.problems];
  const cluster = readCluster(objects, problems);
  const tls = resolveTls(parsed.policies, cluster.secrets, problems);
  if (problems.length > 0) throw new PolicyLoadError(problems);
  yield;

  // Endpoints: running pods with an IP of their own. Identities: reserved, then one cluster
  // identity per distinct pod label set, whichever node the pod runs on.
  const identities = new Map<number, IdentityEntry>();
  for (const r of reservedIdentities()) identities.set(r.id, r);
  const nodeName = opts.nodeName === '' ? undefined : opts.nodeName;
  const isLocal = (p: PodInfo) => nodeName === undefined || p.nodeName === undefined || p.nodeName === nodeName;
  const { pods, hostIPs, remoteNodeIPs } = podEndpoints(cluster.pods, isLocal, warnings);
  // The pods of a workload share namespace, service account and labels: their identity labels are
  // computed once (100,000 pods, a few thousand label sets).
  const labelSets = new Map<string, { readonly labels: string[]; readonly key: string }>();
  const podLabelSets = pods.map((p) => {
    let k = `${p.namespace}\0${p.serviceAccount}`;
    for (const l in p.labels) k += `\0${l}\0${p.labels[l] as string}`;
    let set = labelSets.get(k);
    if (set === undefined) {
      const labels = podIdentityLabels({
        namespace: p.namespace, serviceAccount: p.serviceAccount, clusterName: opts.clusterName, podLabels: p.labels,
        namespaceLabels: cluster.namespaces.get(p.namespace) ?? {},
      });
      labelSets.set(k, (set = { labels, key: labelKey(labels) }));
    }
    return set;
  });
  yield;
  const prevIds = previousIdentities(opts.previous);
  const clusterNums = allocate([...labelSets.values()].map((x) => x.key), prevIds, CLUSTER_ID_MIN, CLUSTER_ID_MAX);
  const byKey = new Map<string, IdentityEntry>();
  for (const { labels, key } of labelSets.values()) {
    if (byKey.has(key)) continue;
    const id = keepIdentity(prevIds.get(key), clusterNums.get(key) as number, labels);
    byKey.set(key, id);
    identities.set(id.id, id);
  }

  yield;
  const rules = parsed.policies.flatMap((p) => p.rules);
  const origins = parsed.policies.flatMap((p) => p.rules.map((_, ruleIndex) => ({ kind: p.kind, namespace: p.namespace, name: p.name, ruleIndex })));
  const prefixes = policyPrefixes(rules);
  const cidrNums = allocate(prefixes.map((p) => labelKey(cidrLabels(p))), prevIds, LOCAL_ID_MIN, LOCAL_ID_MAX);
  const cidrIdentities = prefixes
    .map((p) => {
      const k = labelKey(cidrLabels(p));
      return keepIdentity(prevIds.get(k), cidrNums.get(k) as number, cidrLabels(p), p);
    })
    .sort((a, b) => (b.cidr?.bits ?? 0) - (a.cidr?.bits ?? 0));
  for (const c of cidrIdentities) identities.set(c.id, c);

  yield;
  // Endpoint IDs: Cilium numbers the endpoints of its own node only, from a pool of [1, 4095] per
  // agent; the pods of other nodes are endpoints with ID 0.
  const localKeys: (string | undefined)[] = pods.map((p) => (isLocal(p) ? `${p.namespace}/${p.name}` : undefined));
  const localCount = localKeys.reduce((n, k) => (k === undefined ? n : n + 1), 0);
  const where = nodeName === undefined ? 'this node (no node name is set: every pod counts as local)' : `node ${nodeName}`;
  if (localCount > ENDPOINT_ID_LIMIT - ENDPOINT_ID_MIN + 1) {
    throw new RangeError(`cannot allocate ${localCount} ids in [${ENDPOINT_ID_MIN}, ${ENDPOINT_ID_LIMIT}]: ${localCount} pods on ${where}`);
  }
  let idMax = ENDPOINT_ID_MAX;
  if (localCount > ENDPOINT_ID_MAX - ENDPOINT_ID_MIN + 1) {
    idMax = ENDPOINT_ID_LIMIT;
    warnings.push(`${localCount} pods on ${where}: more than a Cilium agent's ${ENDPOINT_ID_MAX} endpoint IDs; numbered in [${ENDPOINT_ID_MIN}, ${ENDPOINT_ID_LIMIT}]`);
  }
  const epIds = allocate(localKeys.filter((k) => k !== undefined), previousEndpointIds(opts.previous), ENDPOINT_ID_MIN, idMax);
  const endpoints: Endpoint[] = pods.map((p, i) =>
    Object.freeze({
      id: localKeys[i] === undefined ? 0 : (epIds.get(localKeys[i] as string) as number),
      namespace: p.namespace,
      name: p.name,
      // PodInfo's own objects, fresh from this build's readCluster: frozen as they are. (A spread
      // copy is frozen with a hidden class of its own: ~350 bytes a pod.)
      ips: Object.freeze(p.ips),
      identity: byKey.get((podLabelSets[i] as { key: string }).key) as IdentityEntry,
      podLabels: Object.freeze(p.labels),
      workload: Object.freeze(p.workload),
      namedPorts: p.namedPorts,
    }),
  );

  yield;
  const index = new EndpointIndex(endpoints);
  const byIP = new Map<string, Endpoint>();
  for (const e of endpoints) for (const ip of e.ips) byIP.set(ip, e);
  const services: Service[] = cluster.services
    .map((s): Service => {
      const slices = cluster.slices.get(`${s.namespace}/${s.name}`);
      const b = slices === undefined ? undefined : sliceBackends(s, slices, byIP);
      return Object.freeze({
        namespace: s.namespace, name: s.name, clusterIPs: Object.freeze([...s.clusterIPs]), ports: Object.freeze([...s.ports]),
        endpoints: Object.freeze(b !== undefined ? b.endpoints : s.selector === undefined ? [] : index.select(s.namespace, s.selector)),
        sliceBackends: b?.byPort,
      });
    });
  const svcKeys = new Map(services.map((x) => [x, `${x.namespace}/${x.name}`]));
  const svcCmp = [...svcKeys.values()].every((k) => PLAIN.test(k)) ? codeUnits : collate;
  services.sort((a, b) => svcCmp(svcKeys.get(a) as string, svcKeys.get(b) as string));

  const loaded: LoadedObject[] = objects.map((o) =>
    Object.freeze({ kind: o.kind, namespace: o.kind === 'CiliumClusterwideNetworkPolicy' || o.kind === 'Namespace' ? undefined : (o.namespace ?? 'default'), name: o.name, file: o.file }),
  );

  const compiled = yield* compileRulesSteps(rules, secretLookup(cluster.secrets), origins, tlsLookup(tls));
  yield;
  return new CompiledPolicyState({
    revision: opts.revision, clusterName: opts.clusterName, objects: loaded, endpoints, services, identities, warnings,
    rules: compiled, nodeIPs: [...opts.nodeIPs, ...hostIPs], remoteNodeIPs, allowLocalhost: opts.allowLocalhost, cidrIdentities,
    resolver: new Resolver(services, endpoints, byIP), policyRules: policyRuleSources(parsed.results),
  });
}
