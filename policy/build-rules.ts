/**
 * The rules side of a build: the policy objects parsed and validated, their TLS contexts resolved
 * against the Secrets, their rules compiled, and the CIDR identities they name. It reads the policy
 * objects (and the kind errors and skipped objects, for problems and warnings) and the Secrets, and
 * nothing else: a build whose such objects are those of the previous build takes its rules side as
 * it is (policy/build.ts). Redone for a Pod's change, 1,000 CNPs cost ~4 ms a revision (every
 * object classified, cached validations and compiled rules looked up, CIDR identities numbered).
 */
import { parsePrefix, type Prefix } from './cidr.js';
import { classify } from './classify.js';
import { type CompiledRule, compileRulesSteps } from './compile.js';
import type { LoadProblem } from './errors.js';
import { allocate, cidrLabels, type IdentityEntry, keepIdentity, LOCAL_ID_MAX, LOCAL_ID_MIN, labelKey } from './identity.js';
import type { SourcedObject } from './load.js';
import type { Identity, PolicyRuleSource, PortTls } from './model.js';
import { parsePolicy, type PolicySpec, type PortRuleSpec, type RuleSpec } from './schema.js';
import { drain, ITEMS_PER_STEP, type Steps } from './steps.js';
import { resolveTls } from './tls.js';

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

/** The rules side up to its problems: policies parsed, TLS contexts resolved. */
export interface ReadRules {
  readonly parsed: ParsedWithResults;
  readonly tls: ReadonlyMap<PortRuleSpec, PortTls>;
  readonly tlsProblems: readonly LoadProblem[];
}

type Secrets = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** `objects`: the build's objects that are not cluster objects, in order. */
export function* readRulesSteps(objects: readonly SourcedObject[], secrets: Secrets): Steps<ReadRules> {
  const parsed = yield* parseObjectsSteps(objects);
  const tlsProblems: LoadProblem[] = [];
  const tls = resolveTls(parsed.policies, secrets, tlsProblems);
  return { parsed, tls, tlsProblems };
}

/** A build's compiled rules side, and the inputs it was made from (the next build compares them). */
export interface RulesSide {
  /** The objects that are not cluster objects, and the Secret objects, in order. */
  readonly objects: readonly SourcedObject[];
  readonly secretObjects: readonly SourcedObject[];
  readonly warnings: readonly string[];
  readonly rules: readonly CompiledRule[];
  /** Longest prefix first. */
  readonly cidrIdentities: readonly IdentityEntry[];
  readonly policyRules: readonly PolicyRuleSource[];
}

/** Compiles what readRulesSteps read; CIDR identity numbers kept from `prevIds` where free. */
export function* compileRulesSide(
  read: ReadRules, objects: readonly SourcedObject[], secretObjects: readonly SourcedObject[], secrets: Secrets, prevIds: ReadonlyMap<string, Identity>,
): Steps<RulesSide> {
  const policies = read.parsed.policies;
  const specs = policies.flatMap((p) => p.rules);
  const origins = policies.flatMap((p) => p.rules.map((_, ruleIndex) => ({ kind: p.kind, namespace: p.namespace, name: p.name, ruleIndex })));
  const prefixes = policyPrefixes(specs);
  const cidrNums = allocate(prefixes.map((p) => labelKey(cidrLabels(p))), prevIds, LOCAL_ID_MIN, LOCAL_ID_MAX);
  const cidrIdentities = prefixes
    .map((p) => {
      const k = labelKey(cidrLabels(p));
      return keepIdentity(prevIds.get(k), cidrNums.get(k) as number, cidrLabels(p), p);
    })
    .sort((a, b) => (b.cidr?.bits ?? 0) - (a.cidr?.bits ?? 0));
  yield;
  const rules = yield* compileRulesSteps(specs, secretLookup(secrets), origins, tlsLookup(read.tls));
  return { objects, secretObjects, warnings: read.parsed.warnings, rules, cidrIdentities, policyRules: policyRuleSources(read.parsed.results) };
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

const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

/** Every valid policy's rules as written, numbered as RuleRef.ruleIndex: `spec` first, then `specs[]`. */
function policyRuleSources(results: ParsedWithResults['results']): PolicyRuleSource[] {
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

// The compiled rules keep the two lookups below. Made here, not in a build's generator, so that
// they keep only what they read: a closure made there shares the scope its other closures capture,
// and would keep the build's per-pod arrays alive as long as the state.

function secretLookup(secrets: Secrets): (ns: string, name: string) => string | undefined {
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
