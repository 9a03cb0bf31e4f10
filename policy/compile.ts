/**
 * Policy rules -> per-identity port tables (docs/semantics.md#default-deny through docs/semantics.md#the-decision-procedure).
 *
 * For each subject identity and direction we precompute sorted, disjoint port intervals (cut at every
 * rule boundary, so coverage is constant inside one) and, per interval, a map peer identity id ->
 * PortDecision. Decisions are shared objects: the request path never allocates for a known identity.
 */
import { type CompiledHttpRule, compileHttpRule, type HeaderMatchSpec, makeHttpCheck, type MismatchAction } from './http-rule.js';
import { type IdentityEntry, makeIdentity } from './identity.js';
import { parsePrefix } from './cidr.js';
import type { StringMatcher } from './regex.js';
import type { Identity, PortDecision, PortTls, RuleRef } from './model.js';
import type { CrdHttpRule, PeerRuleSpec, PortRange, PortRuleSpec, RuleSpec } from './schema.js';
import { drain, ITEMS_PER_STEP, type Steps } from './steps.js';
import { matchRequirements, type Peer, type PeerIdentity, peerMatches } from './selector.js';

export type Direction = 'INGRESS' | 'EGRESS';

export const ALLOW: PortDecision = Object.freeze({ kind: 'allow' });
export const DROP = {
  INGRESS: {
    POLICY_DENIED: Object.freeze({ kind: 'drop', reason: 'POLICY_DENIED', direction: 'INGRESS' }) as PortDecision,
    POLICY_DENY: Object.freeze({ kind: 'drop', reason: 'POLICY_DENY', direction: 'INGRESS' }) as PortDecision,
  },
  EGRESS: {
    POLICY_DENIED: Object.freeze({ kind: 'drop', reason: 'POLICY_DENIED', direction: 'EGRESS' }) as PortDecision,
    POLICY_DENY: Object.freeze({ kind: 'drop', reason: 'POLICY_DENY', direction: 'EGRESS' }) as PortDecision,
  },
} as const;

/** One (peer selectors, port set, L7 rules) contribution: a PeerRuleSpec × one of its toPorts. */
export interface Contribution {
  /** Unique per build; names the contribution in L7 rule-set cache keys. */
  readonly id: number;
  readonly peers: readonly Peer[];
  /** undefined = every port and protocol. */
  readonly ranges: readonly PortRange[] | undefined;
  /** undefined = no L7 restriction. */
  readonly l7: readonly CompiledHttpRule[] | undefined;
  /** The policy rule this came from (provenance); absent when compiled without origins. */
  readonly origin?: RuleRef | undefined;
  /** terminatingTLS / originatingTLS / serverNames of the toPorts entry (policy/tls.ts). */
  readonly tls?: PortTls | undefined;
}

const NO_CONTRIBUTIONS: Contribution[] = [];

/** Which object a RuleSpec came from, parallel to the rules given to compileRules. */
export interface RuleOrigin {
  readonly kind: RuleRef['kind'];
  readonly namespace: string | undefined;
  readonly name: string;
  readonly ruleIndex: number;
}

export interface CompiledRule {
  readonly spec: RuleSpec;
  readonly ingress: readonly Contribution[];
  readonly ingressDeny: readonly Contribution[];
  readonly egress: readonly Contribution[];
  readonly egressDeny: readonly Contribution[];
  /** Which object and rule this is (policy trace); absent when compiled without origins. */
  readonly origin?: RuleOrigin | undefined;
}

/** Resolves `secret: {namespace, name}` to its value, or undefined. */
export type SecretLookup = (namespace: string, name: string) => string | undefined;

const MISMATCH: Record<string, MismatchAction> = { '': 'FAIL', LOG: 'CONTINUE', ADD: 'ADD', DELETE: 'DELETE', REPLACE: 'REPLACE' };

/** CNP PortRuleHTTP -> proxy rule (cilium/cilium pkg/envoy xds_server.go getHTTPRule). */
export function compileCrdHttpRule(r: CrdHttpRule, secrets: SecretLookup): CompiledHttpRule {
  if (r.headers.length === 0 && r.headerMatches.length === 0) return methodPathHost(r.method, r.path, r.host);
  const headerMatches: HeaderMatchSpec[] = [];
  for (const h of r.headers) headerMatches.push({ name: h.name, value: h.value, secret: false, matchAction: 'CONTINUE', mismatchAction: 'FAIL' });
  for (const h of r.headerMatches) {
    // The Secret's value wins; `value` is the fallback; neither -> never matches (docs/semantics.md#secrets).
    const fromSecret = h.secret ? secrets(h.secret.namespace, h.secret.name) : undefined;
    const value = fromSecret ?? h.value ?? (h.secret ? undefined : '');
    headerMatches.push({ name: h.name, value, secret: fromSecret !== undefined, matchAction: 'CONTINUE', mismatchAction: MISMATCH[h.mismatch] ?? 'FAIL' });
  }
  return compileHttpRule({ method: r.method, path: r.path, host: r.host, headerMatches });
}

/** Stands for "no pattern" in the keys below (a WeakMap takes objects only). */
const ANY: object = {};
const byMatchers = new WeakMap<object, WeakMap<object, WeakMap<object, CompiledHttpRule>>>();

/**
 * A rule of method, path and host only, one per distinct triple: matchers are shared per pattern
 * (policy/regex.ts) and compiled rules are immutable, and large policies repeat the same few
 * (10,000 rules, 10 distinct `GET /api/k/.*` in the reload benchmark).
 */
function methodPathHost(method: StringMatcher | undefined, path: StringMatcher | undefined, host: StringMatcher | undefined): CompiledHttpRule {
  let byPath = byMatchers.get(method ?? ANY);
  if (byPath === undefined) byMatchers.set(method ?? ANY, (byPath = new WeakMap()));
  let byHost = byPath.get(path ?? ANY);
  if (byHost === undefined) byPath.set(path ?? ANY, (byHost = new WeakMap()));
  let rule = byHost.get(host ?? ANY);
  if (rule === undefined) byHost.set(host ?? ANY, (rule = compileHttpRule({ method, path, host })));
  return rule;
}

/** `origins[i]` names the object of `rules[i]`; without it decisions carry no provenance. */
export function compileRules(
  rules: readonly RuleSpec[],
  secrets: SecretLookup,
  origins?: readonly RuleOrigin[],
  tlsOf?: (tp: PortRuleSpec) => PortTls | undefined,
): CompiledRule[] {
  return drain(compileRulesSteps(rules, secrets, origins, tlsOf));
}

/** compileRules as steps (policy/steps.ts): a sliced reload yields between rules. */
export function* compileRulesSteps(
  rules: readonly RuleSpec[],
  secrets: SecretLookup,
  origins?: readonly RuleOrigin[],
  tlsOf?: (tp: PortRuleSpec) => PortTls | undefined,
): Steps<CompiledRule[]> {
  const contribs = (list: readonly PeerRuleSpec[], o: RuleOrigin | undefined, direction: Direction): Contribution[] => {
    const out: Contribution[] = [];
    for (const pr of list) {
      const origin: RuleRef | undefined = o && Object.freeze({ kind: o.kind, namespace: o.namespace, name: o.name, ruleIndex: o.ruleIndex, direction, field: pr.field });
      if (pr.toPorts === undefined) {
        out.push({ id: nextContributionId++, peers: pr.peers, ranges: undefined, l7: undefined, origin });
        continue;
      }
      for (const tp of pr.toPorts) {
        const l7 = tp.http?.map((h) => compileCrdHttpRule(h, secrets));
        // A `{}` rule allows all HTTP: same as no L7 rules (docs/semantics.md#combining-http-rules).
        const tls = tlsOf?.(tp);
        out.push({ id: nextContributionId++, peers: pr.peers, ranges: tp.ports, l7: l7 && !l7.some((r) => r.wildcard) ? l7 : undefined, origin, tls });
      }
    }
    // Kept for the state's lifetime: no spare push() capacity.
    return out.length === 0 ? NO_CONTRIBUTIONS : out.slice();
  };
  const out: CompiledRule[] = [];
  for (let i = 0; i < rules.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    const spec = rules[i] as RuleSpec;
    const origin = origins?.[i];
    const hit = compiled.get(spec);
    if (hit !== undefined && sameOrigin(hit.origin, origin)) {
      out.push(hit);
      continue;
    }
    const rule: CompiledRule = {
      spec,
      ingress: contribs(spec.ingress, origin, 'INGRESS'),
      ingressDeny: contribs(spec.ingressDeny, origin, 'INGRESS'),
      egress: contribs(spec.egress, origin, 'EGRESS'),
      egressDeny: contribs(spec.egressDeny, origin, 'EGRESS'),
      origin,
    };
    if (selfContained(spec)) compiled.set(spec, rule);
    out.push(rule);
  }
  return out;
}

/**
 * Contribution ids name rule sets in decision-cache keys; counted across builds, since a compiled
 * rule outlives the build that made it (below).
 */
let nextContributionId = 1;

/**
 * Compiled rules by validated rule. A reload reuses the validated rules of unchanged objects
 * (policy/build.ts), and so, here, their compiled form: a one-object change to a 10,000-rule policy
 * no longer allocates (and garbage-collects) 10,000 rules' worth of contributions, whose young-
 * generation copying showed up as 10 ms pauses in requests' p99 during a reload storm.
 */
const compiled = new WeakMap<RuleSpec, CompiledRule>();

const sameOrigin = (a: RuleOrigin | undefined, b: RuleOrigin | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.kind === b.kind && a.namespace === b.namespace && a.name === b.name && a.ruleIndex === b.ruleIndex);

/** Compiles the same whatever the rest of the build: nothing read from Secrets (TLS, secret header values). */
function selfContained(spec: RuleSpec): boolean {
  for (const list of [spec.ingress, spec.ingressDeny, spec.egress, spec.egressDeny]) {
    for (const pr of list) {
      for (const tp of pr.toPorts ?? []) {
        if (tp.tls !== undefined) return false;
        for (const h of tp.http ?? []) if (h.headerMatches.some((m) => m.secret !== undefined)) return false;
      }
    }
  }
  return true;
}

/** What the rules selecting one subject identity say about one direction. */
export interface DirectionPolicy {
  readonly direction: Direction;
  readonly enforcing: boolean;
  readonly allows: readonly Contribution[];
  readonly denies: readonly Contribution[];
}

/** undefined when no rule selecting the subject speaks about this direction (allow all). */
export function directionPolicy(rules: readonly CompiledRule[], subject: PeerIdentity, direction: Direction): DirectionPolicy | undefined {
  const allows: Contribution[] = [];
  const denies: Contribution[] = [];
  let enforcing = false;
  let selected = false;
  for (const r of rules) {
    const has = direction === 'INGRESS' ? r.spec.hasIngress : r.spec.hasEgress;
    if (!has || !matchRequirements(r.spec.subject, subject.labelSet)) continue;
    selected = true;
    if (direction === 'INGRESS' ? r.spec.enforceIngress : r.spec.enforceEgress) enforcing = true;
    allows.push(...(direction === 'INGRESS' ? r.ingress : r.egress));
    denies.push(...(direction === 'INGRESS' ? r.ingressDeny : r.egressDeny));
  }
  return selected ? { direction, enforcing, allows, denies } : undefined;
}

// Our traffic is HTTP over TCP: UDP/SCTP-only ranges never cover it (docs/semantics.md#ports).
export const coversPort = (c: Contribution, port: number): boolean =>
  c.ranges === undefined || c.ranges.some((r) => r.lo <= port && port <= r.hi && (r.protocol === 'TCP' || r.protocol === 'ANY'));

/** Whether a contribution's peers select an identity (indexed for build-time identities). */
export type PeerMatcher = (c: Contribution, peer: PeerIdentity) => boolean;

export const scanMatcher = (clusterName: string): PeerMatcher => (c, peer) => c.peers.some((p) => peerMatches(p, peer, clusterName));

/** Distinct origins of some contributions, in rule order (one toPorts entry can yield several). */
function originsOf(entries: readonly Contribution[]): readonly RuleRef[] {
  const out: RuleRef[] = [];
  for (const e of entries) if (e.origin !== undefined && !out.includes(e.origin)) out.push(e.origin);
  return Object.freeze(out);
}

/** The HTTP rules behind each L7 decision this module made; the decision itself holds only their compiled check. */
const httpRules = new WeakMap<PortDecision, readonly CompiledHttpRule[]>();

/** The HTTP rules an L7 decision checks (`policy replay` judges a recorded request without its header fields by them). */
export function httpRulesOf(d: PortDecision): readonly CompiledHttpRule[] | undefined {
  return httpRules.get(d);
}

/**
 * Shares decisions between tables: same contributing rule sets -> same decision object, so the
 * provenance (`by`) costs nothing per request.
 */
export class L7DecisionCache {
  readonly #m = new Map<string, PortDecision>();
  get(entries: readonly Contribution[]): PortDecision {
    return this.#shared('l7', entries, () => {
      const rules = entries.flatMap((e) => e.l7 ?? []);
      const d: PortDecision = { kind: 'l7', check: makeHttpCheck(rules), by: originsOf(entries) };
      httpRules.set(d, rules);
      return d;
    });
  }

  /** An L3/L4 allow by these covering rules. */
  allow(entries: readonly Contribution[]): PortDecision {
    if (entries.every((e) => e.origin === undefined)) return ALLOW;
    return this.#shared('allow', entries, () => ({ kind: 'allow', by: originsOf(entries) }));
  }

  /** An explicit deny (POLICY_DENY) by these deny rules. */
  deny(direction: Direction, entries: readonly Contribution[]): PortDecision {
    if (entries.every((e) => e.origin === undefined)) return DROP[direction].POLICY_DENY;
    return this.#shared(`deny:${direction}`, entries, () => ({ kind: 'drop', reason: 'POLICY_DENY', direction, by: originsOf(entries) }));
  }

  #shared(tag: string, entries: readonly Contribution[], make: () => PortDecision): PortDecision {
    const key = `${tag}:${entries.map((e) => e.id).join(',')}`;
    let d = this.#m.get(key);
    if (d === undefined) {
      d = Object.freeze(make());
      this.#m.set(key, d);
    }
    return d;
  }
}

/** The decision procedure of docs/semantics.md#the-decision-procedure for one (subject, peer, port). */
export function evaluate(dp: DirectionPolicy, peer: PeerIdentity, port: number, matches: PeerMatcher, l7: L7DecisionCache): PortDecision {
  const denies = dp.denies.filter((d) => coversPort(d, port) && matches(d, peer));
  if (denies.length > 0) return l7.deny(dp.direction, denies);
  const withL7: Contribution[] = [];
  const plain: Contribution[] = [];
  for (const a of dp.allows) {
    if (!coversPort(a, port) || !matches(a, peer)) continue;
    if (a.l7 === undefined) plain.push(a);
    else withL7.push(a);
  }
  // A covering contribution without L7 rules shadows every L7 rule for this peer (docs/semantics.md#how-rules-combine, L7 wildcarding).
  if (plain.length > 0) return l7.allow(plain);
  if (withL7.length === 0) return dp.enforcing ? DROP[dp.direction].POLICY_DENIED : ALLOW;
  return l7.get(withL7);
}

/** Interval starts where coverage can change: every range's lo and hi+1. */
function boundaries(dp: DirectionPolicy): number[] {
  const s = new Set<number>([0]);
  for (const c of [...dp.allows, ...dp.denies]) {
    for (const r of c.ranges ?? []) {
      s.add(r.lo);
      if (r.hi < 65535) s.add(r.hi + 1);
    }
  }
  return [...s].sort((a, b) => a - b);
}

/** Turns a Source identity not seen at build time into something selectors can match. */
export function peerFromIdentity(id: Identity): PeerIdentity {
  if ('labelSet' in id) return id as IdentityEntry;
  const cidrLabel = id.labels.find((l) => l.startsWith('cidr:'));
  return makeIdentity(id.id, id.labels, cidrLabel ? parsePrefix(cidrLabel.slice('cidr:'.length)) : undefined);
}

/** What a PortTable needs from the build it belongs to. */
export interface TableContext {
  readonly clusterName: string;
  readonly l7: L7DecisionCache;
  /** Identities known at build time (by id): exactly those `peers` can tell about. */
  readonly known: ReadonlyMap<number, PeerIdentity>;
  /** Build-time identities each contribution selects. */
  readonly peers: { of(c: Contribution): ReadonlySet<number> };
}

/**
 * Port-interval table for one subject identity and direction. Decisions are precomputed for the
 * identities some contributing selector matches; every other known identity gets the interval's
 * "nobody selected this peer" default (drop under default deny, else allow), which is what the full
 * procedure yields for a peer no selector matches. Identities unknown at build time (e.g. from an
 * older revision's endpoint) are evaluated on first use and cached.
 */
export class PortTable {
  readonly #starts: Uint32Array;
  readonly #byPeer: Map<number, PortDecision>[];
  readonly #dp: DirectionPolicy;
  readonly #ctx: TableContext;
  readonly #default: PortDecision;
  readonly #scan: PeerMatcher;

  constructor(dp: DirectionPolicy, peerPool: readonly PeerIdentity[], ctx: TableContext) {
    this.#dp = dp;
    this.#ctx = ctx;
    this.#scan = scanMatcher(ctx.clusterName);
    this.#default = dp.enforcing ? DROP[dp.direction].POLICY_DENIED : ALLOW;
    const b = boundaries(dp);
    this.#starts = Uint32Array.from(b);
    this.#byPeer = b.map(() => new Map());
    const relevant = new Set<number>();
    for (const c of dp.allows) for (const id of ctx.peers.of(c)) relevant.add(id);
    for (const c of dp.denies) for (const id of ctx.peers.of(c)) relevant.add(id);
    const indexed: PeerMatcher = (c, peer) => ctx.peers.of(c).has(peer.id);
    for (const p of peerPool) {
      if (!relevant.has(p.id)) continue;
      for (let i = 0; i < b.length; i++) (this.#byPeer[i] as Map<number, PortDecision>).set(p.id, evaluate(dp, p, b[i] as number, indexed, ctx.l7));
    }
  }

  get intervals(): readonly number[] {
    return [...this.#starts];
  }

  /** Default deny is on for this subject and direction. */
  get enforcing(): boolean {
    return this.#dp.enforcing;
  }

  #used = false;

  /** Some request looked this table up: a reload warms the new state's table for this subject. */
  get used(): boolean {
    return this.#used;
  }

  // Hot path: called per request — change with care. Binary search over a handful of interval
  // starts, then one Map lookup; returns shared decision objects.
  lookup(peer: Identity, port: number): PortDecision {
    this.#used = true;
    const s = this.#starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((s[mid] as number) <= port) lo = mid;
      else hi = mid - 1;
    }
    const m = this.#byPeer[lo] as Map<number, PortDecision>;
    const d = m.get(peer.id);
    if (d !== undefined) return d;
    // Same object, not just the same number: an identity from another build may reuse a number.
    if ((this.#ctx.known.get(peer.id) as Identity | undefined) === peer) return this.#default;
    const computed = evaluate(this.#dp, peerFromIdentity(peer), s[lo] as number, this.#scan, this.#ctx.l7);
    m.set(peer.id, computed);
    return computed;
  }
}
