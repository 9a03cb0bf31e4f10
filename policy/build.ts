/**
 * parse -> validate -> identities -> select -> compile -> immutable PolicyState.
 */
import { parsePrefix, type Prefix } from './cidr.js';
import { classify } from './classify.js';
import { compileRulesSteps } from './compile.js';
import { type LoadProblem, PolicyLoadError } from './errors.js';
import {
  allocate, CLUSTER_ID_MAX, CLUSTER_ID_MIN, cidrLabels, ENDPOINT_ID_MAX, ENDPOINT_ID_MIN, type IdentityEntry, LOCAL_ID_MAX,
  LOCAL_ID_MIN, keepIdentity, labelKey, previousEndpointIds, previousIdentities, reservedIdentities,
} from './identity.js';
import { readCluster } from './kube.js';
import { podIdentityLabels } from './labels.js';
import { dedupe, type SourcedObject } from './load.js';
import type { Endpoint, LoadedObject, PolicyRuleSource, PolicyState, Service } from './model.js';
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
}

export interface ParsedObjects {
  readonly policies: PolicySpec[];
  readonly problems: LoadProblem[];
  readonly warnings: string[];
}

/**
 * Validation results by raw object. Parsed objects are never mutated, and a reload reuses those of
 * unchanged files (proxy/reload/file-snapshot.ts caches them by content hash) and of the API
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

  // Identities: reserved, then one cluster identity per distinct pod label set.
  const identities = new Map<number, IdentityEntry>();
  for (const r of reservedIdentities()) identities.set(r.id, r);
  const pods = cluster.pods
    .filter((p) => p.ips.length > 0)
    .sort((a, b) => (a.namespace === b.namespace ? a.name.localeCompare(b.name) : a.namespace.localeCompare(b.namespace)));
  const podLabels = pods.map((p) =>
    podIdentityLabels({
      namespace: p.namespace, serviceAccount: p.serviceAccount, clusterName: opts.clusterName, podLabels: p.labels,
      namespaceLabels: cluster.namespaces.get(p.namespace) ?? {},
    }),
  );
  yield;
  const prevIds = previousIdentities(opts.previous);
  const podKeys = podLabels.map(labelKey);
  const clusterNums = allocate(podKeys, prevIds, CLUSTER_ID_MIN, CLUSTER_ID_MAX);
  const byKey = new Map<string, IdentityEntry>();
  podLabels.forEach((labels, i) => {
    const k = podKeys[i] as string;
    if (!byKey.has(k)) {
      const id = keepIdentity(prevIds.get(k), clusterNums.get(k) as number, labels);
      byKey.set(k, id);
      identities.set(id.id, id);
    }
  });

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
  const epIds = allocate(pods.map((p) => `${p.namespace}/${p.name}`), previousEndpointIds(opts.previous), ENDPOINT_ID_MIN, ENDPOINT_ID_MAX);
  const endpoints: Endpoint[] = pods.map((p, i) =>
    Object.freeze({
      id: epIds.get(`${p.namespace}/${p.name}`) as number,
      namespace: p.namespace,
      name: p.name,
      ips: Object.freeze([...p.ips]),
      identity: byKey.get(podKeys[i] as string) as IdentityEntry,
      podLabels: Object.freeze({ ...p.labels }),
      workload: Object.freeze({ ...p.workload }),
      namedPorts: p.namedPorts,
    }),
  );

  const services: Service[] = cluster.services
    .map((s) =>
      Object.freeze({
        namespace: s.namespace, name: s.name, clusterIPs: Object.freeze([...s.clusterIPs]), ports: Object.freeze([...s.ports]),
        endpoints: Object.freeze(
          s.selector === undefined ? [] : endpoints.filter((e) => e.namespace === s.namespace && matchesLabels(s.selector as Record<string, string>, e.podLabels)),
        ),
      }),
    )
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));

  const secrets = (ns: string, name: string): string | undefined => {
    const data = cluster.secrets.get(`${ns}/${name}`);
    // Cilium uses the Secret's only item; a Secret with 0 or several items does not resolve
    // (cilium/cilium pkg/crypto/certificatemanager/certificate_manager.go GetSecretString).
    if (data === undefined || data.size !== 1) return undefined;
    return data.values().next().value as string;
  };

  const loaded: LoadedObject[] = objects.map((o) =>
    Object.freeze({ kind: o.kind, namespace: o.kind === 'CiliumClusterwideNetworkPolicy' || o.kind === 'Namespace' ? undefined : (o.namespace ?? 'default'), name: o.name, file: o.file }),
  );

  const compiled = yield* compileRulesSteps(rules, secrets, origins, (tp) => tls.get(tp));
  yield;
  return new CompiledPolicyState({
    revision: opts.revision, clusterName: opts.clusterName, objects: loaded, endpoints, services, identities, warnings,
    rules: compiled, nodeIPs: opts.nodeIPs, allowLocalhost: opts.allowLocalhost, cidrIdentities,
    resolver: new Resolver(services, endpoints), policyRules: policyRuleSources(parsed.results),
  });
}
