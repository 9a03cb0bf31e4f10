/**
 * One HTTP rule (Cilium PortRuleHTTP, as cilium-envoy's HttpNetworkPolicyRule sees it) compiled into
 * predicates, and a rule set compiled into the `check` of an L7 PortDecision.
 *
 * Semantics: docs/semantics.md#l7-http-matching (full-match RE2, AND within a rule, OR between
 * rules) and docs/semantics.md#header-match-actions (headerMatches actions, modelled on cilium/proxy
 * cilium/network_policy.cc HeaderMatch::allowed).
 */
import type { HeaderEdit, HeaderList, L7Request, L7Result } from './model.js';
import { compileFullMatch, type StringMatcher } from './regex.js';

/** What cilium-envoy does when the header value matches / does not match (NPDS HeaderMatch). */
export type MatchAction = 'CONTINUE' | 'FAIL' | 'DELETE';
export type MismatchAction = 'FAIL' | 'CONTINUE' | 'ADD' | 'DELETE' | 'REPLACE';

export interface HeaderMatchSpec {
  readonly name: string;
  /** Expected value; "" = presence check; undefined = unresolvable secret without fallback (never matches). */
  readonly value: string | undefined;
  /** Secret-backed values are logged as "[redacted]". */
  readonly secret: boolean;
  readonly matchAction: MatchAction;
  readonly mismatchAction: MismatchAction;
}

/** NPDS-level rule: everything a CNP http rule can express plus the proxy's match actions. */
export interface HttpRuleSpec {
  /** Patterns as written, or matchers already compiled by schema validation (compile once). */
  readonly method?: string | StringMatcher | undefined;
  readonly path?: string | StringMatcher | undefined;
  readonly host?: string | StringMatcher | undefined;
  readonly headerMatches?: readonly HeaderMatchSpec[] | undefined;
}

const REDACTED = '[redacted]';
const EMPTY: readonly never[] = Object.freeze([]);
export const L7_ALLOW: L7Result = Object.freeze({ allowed: true, edits: EMPTY, missing: EMPTY, rejected: EMPTY });
export const L7_DENY: L7Result = Object.freeze({ allowed: false, edits: EMPTY, missing: EMPTY, rejected: EMPTY });

/** ASCII case-insensitive compare against an already lower-cased name, without allocating. */
function nameEquals(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Value of a header as Envoy's getAllOfHeaderAsString sees it: all instances joined with ",". */
export function headerValue(headers: HeaderList, lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (nameEquals(headers[i] as string, lower)) {
      const v = headers[i + 1] as string;
      out = out === undefined ? v : out + ',' + v;
    }
  }
  return out;
}

/** Length-independent-time string compare for secret values (Envoy compares in constant time). */
function constantTimeEquals(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

interface CompiledHeaderMatch extends HeaderMatchSpec {
  readonly lower: string;
}

export interface CompiledHttpRule {
  readonly method: StringMatcher | undefined;
  readonly path: StringMatcher | undefined;
  readonly host: StringMatcher | undefined;
  /** FAIL_ON_MISMATCH + CONTINUE_ON_MATCH entries: plain Envoy header matchers. */
  readonly plain: readonly CompiledHeaderMatch[];
  /** Entries with side effects or match-time failure (run in order, see docs/semantics.md#header-match-actions). */
  readonly actions: readonly CompiledHeaderMatch[];
  /** A rule with no constraint at all (`{}`): matches every request (docs/semantics.md#combining-http-rules). */
  readonly wildcard: boolean;
}

/** Compiles once; throws RegexSyntaxError for patterns RE2 rejects. */
export function compileHttpRule(spec: HttpRuleSpec): CompiledHttpRule {
  const opt = (p: string | StringMatcher | undefined) => (p === undefined || p === '' ? undefined : typeof p === 'string' ? compileFullMatch(p) : p);
  // Most rules have no header matches: share one empty list rather than keep two per rule.
  let plain: readonly CompiledHeaderMatch[] = EMPTY;
  let actions: readonly CompiledHeaderMatch[] = EMPTY;
  for (const h of spec.headerMatches ?? EMPTY) {
    const c = { ...h, lower: h.name.toLowerCase() };
    if (h.matchAction === 'CONTINUE' && h.mismatchAction === 'FAIL') plain = [...plain, c];
    else actions = [...actions, c];
  }
  const method = opt(spec.method);
  const path = opt(spec.path);
  const host = opt(spec.host);
  const wildcard = !method && !path && !host && plain.length === 0 && actions.length === 0;
  return { method, path, host, plain, actions, wildcard };
}

type Lookup = (lower: string) => string | undefined;

function valueMatches(h: CompiledHeaderMatch, actual: string | undefined): boolean {
  if (actual === undefined || h.value === undefined) return false;
  if (h.value === '') return true;
  return h.secret ? constantTimeEquals(actual, h.value) : actual === h.value;
}

/** Path, method, host and plain header matchers (no side effects). */
function basicMatch(r: CompiledHttpRule, req: L7Request, run: ActionRun | undefined): boolean {
  if (r.method && !r.method.test(req.method)) return false;
  if (r.path && !r.path.test(req.path)) return false;
  if (r.host && (req.host === undefined || !r.host.test(req.host))) return false;
  for (const h of r.plain) {
    const actual = run === undefined ? headerValue(req.headers, h.lower) : run.lookup(h.lower);
    if (!valueMatches(h, actual)) return false;
  }
  return true;
}

/** Mutable per-request state, only allocated when some rule carries header actions. */
class ActionRun {
  readonly edits: HeaderEdit[] = [];
  readonly missing: { key: string; value: string }[] = [];
  readonly rejected: { key: string; value: string }[] = [];
  /** lower name -> current joined value (undefined = deleted), overriding the request's headers. */
  readonly overlay = new Map<string, string | undefined>();
  readonly lookup: Lookup;
  constructor(headers: HeaderList) {
    this.lookup = (lower) => (this.overlay.has(lower) ? this.overlay.get(lower) : headerValue(headers, lower));
  }
  shown(h: CompiledHeaderMatch, v: string): string {
    return h.secret ? REDACTED : v;
  }
  /** cilium/proxy HeaderMatch::allowed: returns whether this entry lets the rule pass. */
  apply(h: CompiledHeaderMatch): boolean {
    const actual = this.lookup(h.lower);
    if (h.value === undefined) return false; // unresolvable secret, no fallback value: never matches
    if (valueMatches(h, actual)) {
      switch (h.matchAction) {
        case 'CONTINUE':
          return true;
        case 'FAIL':
          return false;
        case 'DELETE':
          this.rejected.push({ key: h.lower, value: this.shown(h, actual as string) });
          this.edits.push({ op: 'delete', name: h.lower, value: '' });
          this.overlay.set(h.lower, undefined);
          return true;
      }
    }
    switch (h.mismatchAction) {
      case 'FAIL':
        return false;
      case 'CONTINUE':
        this.missing.push({ key: h.lower, value: this.shown(h, h.value) });
        return true;
      case 'ADD':
        // Appends; an existing wrong value is kept, so the header becomes multi-valued (docs/semantics.md#header-match-actions).
        this.edits.push({ op: 'add', name: h.lower, value: h.value });
        this.missing.push({ key: h.lower, value: this.shown(h, h.value) });
        this.overlay.set(h.lower, actual === undefined ? h.value : actual + ',' + h.value);
        return true;
      case 'DELETE':
        if (actual !== undefined) {
          this.rejected.push({ key: h.lower, value: this.shown(h, actual) });
          this.edits.push({ op: 'delete', name: h.lower, value: '' });
          this.overlay.set(h.lower, undefined);
        }
        return true;
      case 'REPLACE':
        if (actual !== undefined) this.rejected.push({ key: h.lower, value: this.shown(h, actual) });
        this.missing.push({ key: h.lower, value: this.shown(h, h.value) });
        this.edits.push({ op: 'replace', name: h.lower, value: h.value });
        this.overlay.set(h.lower, h.value);
        return true;
    }
  }
  result(allowed: boolean): L7Result {
    if (this.edits.length === 0 && this.missing.length === 0 && this.rejected.length === 0) return allowed ? L7_ALLOW : L7_DENY;
    return { allowed, edits: this.edits, missing: this.missing, rejected: this.rejected };
  }
}

export type L7Check = (req: L7Request) => L7Result;

/**
 * The union of rules that apply to one (peer, port): allowed when any rule matches (OR). When some
 * rule carries header actions, every rule is evaluated so all side effects run, in order
 * (cilium/proxy PortNetworkPolicyRule::allowed, `have_header_matches_`); otherwise the first match wins.
 */
export function makeHttpCheck(rules: readonly CompiledHttpRule[]): L7Check {
  if (rules.some((r) => r.wildcard)) return () => L7_ALLOW;
  const haveActions = rules.some((r) => r.actions.length > 0);
  if (!haveActions) {
    // Hot path: called per request — change with care. No allocation: precomputed results only.
    return (req) => {
      for (const r of rules) if (basicMatch(r, req, undefined)) return L7_ALLOW;
      return L7_DENY;
    };
  }
  return (req) => {
    const run = new ActionRun(req.headers);
    let allowed = false;
    for (const r of rules) {
      if (!basicMatch(r, req, run)) continue;
      let ok = true;
      // Every entry runs even after one fails, as in cilium-envoy: side effects of earlier rules stay.
      for (const h of r.actions) if (!run.apply(h)) ok = false;
      if (ok) allowed = true;
    }
    return run.result(allowed);
  };
}

/** A request as a flow records it: no header fields, and the Host field only as the URL's authority. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  /**
   * The URL's authority is the Host field the rules saw. False for HTTP/1.0, where the Host field
   * is optional and the authority may come from the original destination instead.
   */
  readonly hostKnown: boolean;
}

/** What a rule set decides for a recorded request: a verdict, or the fields it would need to know. */
export type RecordedOutcome = { readonly allowed: boolean; readonly needs?: undefined } | { readonly allowed?: undefined; readonly needs: readonly string[] };

/**
 * makeHttpCheck's verdict for a request whose header fields are unknown. Every match action a CNP
 * compiles to passes on a match (CONTINUE), so a rule's verdict can only grow as more of its header
 * entries match: a rule that passes with none of them is an allow whatever was sent, and one that
 * fails on method, path or host (or on a secret that never matches) is out whatever was sent. Only
 * the rest depend on the headers, and make the verdict undecidable unless another rule allows.
 */
export function judgeRecorded(rules: readonly CompiledHttpRule[], req: RecordedRequest): RecordedOutcome {
  const needs = new Set<string>();
  for (const r of rules) {
    if (r.method && !r.method.test(req.method)) continue;
    if (r.path && !r.path.test(req.path)) continue;
    const ruleNeeds: string[] = [];
    if (r.host) {
      if (!req.hostKnown) ruleNeeds.push('host');
      else if (req.host === undefined || !r.host.test(req.host)) continue;
    }
    let never = false;
    for (const h of [...r.plain, ...r.actions]) {
      if (h.value === undefined) never = true;
      else if (h.mismatchAction === 'FAIL' || h.matchAction === 'FAIL') ruleNeeds.push(h.lower);
    }
    if (never) continue;
    if (ruleNeeds.length === 0) return { allowed: true };
    for (const n of ruleNeeds) needs.add(n);
  }
  return needs.size === 0 ? { allowed: false } : { needs: [...needs].sort() };
}
