/**
 * Strict parsing of CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and Kubernetes NetworkPolicy
 * into typed rules. Unknown fields, invalid values and fields l7guard cannot enforce are all
 * problems (never ignored), each with the field path. Namespace rewriting happens here
 * (docs/semantics.md#which-endpoints-a-rule-selects, docs/semantics.md#peer-selection).
 */
import { parsePrefix } from './cidr.js';
import { type LoadProblem, type ProblemCode, ProblemCodes } from './errors.js';
import { compileFullMatch, RegexSyntaxError, type StringMatcher } from './regex.js';
import { unknownField } from './suggest.js';
import {
  ENTITIES, type Entity, type LabelSelectorSpec, OPERATORS, type Operator, type Peer, type PolicyScope, type Requirement,
  pinPeerSelector, pinSubjectSelector, selectorRequirements,
} from './selector.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';
export type Mismatch = '' | 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';

export interface PortRange {
  readonly lo: number;
  readonly hi: number;
  readonly protocol: Protocol;
}

export interface CrdHeaderMatch {
  readonly name: string;
  readonly value: string | undefined;
  readonly secret: { readonly namespace: string; readonly name: string } | undefined;
  readonly mismatch: Mismatch;
}

export interface CrdHttpRule {
  readonly method: StringMatcher | undefined;
  readonly path: StringMatcher | undefined;
  readonly host: StringMatcher | undefined;
  /** `headers[]` split into name/value ("" = presence). */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  readonly headerMatches: readonly CrdHeaderMatch[];
}

/** A CNP TLSContext (cilium/cilium pkg/policy/api/l4.go): Secret items, defaults applied when resolved. */
export interface TlsContextSpec {
  readonly secret: { readonly namespace: string; readonly name: string };
  /** Item names as written; undefined = Cilium's default item (`tls.crt`, `tls.key`, `ca.crt`) if present. */
  readonly certificate: string | undefined;
  readonly privateKey: string | undefined;
  readonly trustedCA: string | undefined;
  readonly field: string;
}

/** `terminatingTLS` / `originatingTLS` / `serverNames` of one toPorts entry (ingress or egress allow rules). */
export interface PortTlsSpec {
  readonly terminating: TlsContextSpec | undefined;
  readonly originating: TlsContextSpec | undefined;
  /** Lower-cased; empty = any SNI (and no TLS required). */
  readonly serverNames: readonly string[];
}

export interface PortRuleSpec {
  /** undefined = every port, every protocol. */
  readonly ports: readonly PortRange[] | undefined;
  /** undefined = no L7 restriction (no rules, or `http: []`). */
  readonly http: readonly CrdHttpRule[] | undefined;
  /** undefined = no TLS fields on this port rule. */
  readonly tls?: PortTlsSpec | undefined;
}

export interface PeerRuleSpec {
  /** Empty = selects no peer (`ingress: [{}]`). */
  readonly peers: readonly Peer[];
  /** undefined = every port (L3-only rule). */
  readonly toPorts: readonly PortRuleSpec[] | undefined;
  readonly field: string;
}

export interface RuleSpec {
  readonly subject: readonly Requirement[];
  readonly ingress: readonly PeerRuleSpec[];
  readonly ingressDeny: readonly PeerRuleSpec[];
  readonly egress: readonly PeerRuleSpec[];
  readonly egressDeny: readonly PeerRuleSpec[];
  /** Whether this rule puts selected endpoints in default deny, per direction (docs/semantics.md#default-deny). */
  readonly enforceIngress: boolean;
  readonly enforceEgress: boolean;
  /** The rule has something to say about a direction (for "selected by no policy" checks). */
  readonly hasIngress: boolean;
  readonly hasEgress: boolean;
}

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

export interface PolicySpec {
  readonly kind: PolicyKind;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly file: string;
  readonly rules: readonly RuleSpec[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const UNSUPPORTED: Record<string, string> = {
  toFQDNs: 'toFQDNs needs a DNS proxy, which l7guard does not have',
  toServices: 'toServices is not enforced by l7guard',
  toGroups: 'toGroups (cloud provider groups) is not enforced by l7guard',
  fromGroups: 'fromGroups (cloud provider groups) is not enforced by l7guard',
  fromNodes: 'fromNodes (node selectors) is not enforced by l7guard',
  toNodes: 'toNodes (node selectors) is not enforced by l7guard',
  fromRequires: 'fromRequires is deprecated and not enforced by l7guard',
  toRequires: 'toRequires is deprecated and not enforced by l7guard',
  nodeSelector: 'nodeSelector (host policies) is not enforced by l7guard',
  kafka: 'Kafka L7 rules are not enforced by l7guard (HTTP only)',
  dns: 'DNS L7 rules are not enforced by l7guard (HTTP only)',
  l7proto: 'generic l7proto rules are not enforced by l7guard (HTTP only)',
  l7: 'generic l7 rules are not enforced by l7guard (HTTP only)',
  authentication: 'mutual authentication is not enforced by l7guard',
  icmps: 'ICMP rules are not enforced by l7guard (TCP HTTP only)',
  listener: 'custom Envoy listeners are not supported by l7guard',
  cidrGroupRef: 'CiliumCIDRGroup references are not supported by l7guard',
  cidrGroupSelector: 'CiliumCIDRGroup selectors are not supported by l7guard',
};

/** Returned for absent lists: validation reads many optional lists, and most are absent. */
const NONE: readonly unknown[] = Object.freeze([]);

/**
 * Problems and warnings of one object. Field paths of leaves are passed as (parent, key) and joined
 * only when there is something to report: a valid 10,000-rule policy must not pay for ~100,000 path
 * strings nobody reads (the reload budget of docs/benchmarks.md#reload).
 */
class Ctx {
  readonly problems: LoadProblem[] = [];
  readonly warnings: string[] = [];
  readonly warnFn = (m: string): void => this.warn(m);
  constructor(
    readonly file: string,
    readonly object: string,
    readonly line: number | undefined,
  ) {}
  err(code: ProblemCode, field: string, message: string): void {
    this.problems.push({ code, file: this.file, object: this.object, field, line: this.line, message });
  }
  /** err() at `field.key` (`field` alone when key is undefined). */
  errAt(code: ProblemCode, field: string, key: string | undefined, message: string): void {
    this.err(code, key === undefined ? field : `${field}.${key}`, message);
  }
  warn(m: string): void {
    this.warnings.push(`${this.file} ${this.object}: ${m}`);
  }
  /** Checks `v` is an object whose keys are all allowed; reports unknown and unsupported keys. */
  fields(v: unknown, field: string, allowed: ReadonlySet<string>): Obj | undefined {
    if (!isObj(v)) {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `must be an object`);
      return undefined;
    }
    for (const k in v) {
      if (allowed.has(k)) continue;
      const u = UNSUPPORTED[k];
      if (u !== undefined) this.err(ProblemCodes.L7G_ERR_POLICY_UNSUPPORTED, `${field}.${k}`, `unsupported: ${u}`);
      else this.err(ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD, `${field}.${k}`, unknownField(k, allowed));
    }
    return v;
  }
  list(v: unknown, field: string, key?: string): readonly unknown[] {
    if (v === undefined || v === null) return NONE;
    if (!Array.isArray(v)) {
      this.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, 'must be a list');
      return NONE;
    }
    return v;
  }
  str(v: unknown, field: string, key?: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, 'must be a string');
      return undefined;
    }
    return v;
  }
  bool(v: unknown, field: string, key?: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, 'must be a boolean');
      return undefined;
    }
    return v;
  }
  regex(v: unknown, field: string, key: string): StringMatcher | undefined {
    const s = this.str(v, field, key);
    if (s === undefined || s === '') return undefined;
    try {
      return compileFullMatch(s);
    } catch (e) {
      this.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, e instanceof RegexSyntaxError ? e.message : String(e));
      return undefined;
    }
  }
}

const keys = (...k: string[]): ReadonlySet<string> => new Set(k);
const SELECTOR_FIELDS = keys('matchLabels', 'matchExpressions');
const EXPRESSION_FIELDS = keys('key', 'operator', 'values');
const PORT_FIELDS = keys('port', 'endPort', 'protocol');
const HTTP_FIELDS = keys('method', 'path', 'host', 'headers', 'headerMatches');
const HEADER_MATCH_FIELDS = keys('name', 'value', 'secret', 'mismatch');
const SECRET_FIELDS = keys('namespace', 'name');
const PORT_RULE_FIELDS = keys('ports', 'rules', 'terminatingTLS', 'originatingTLS', 'serverNames');
const L7_RULES_FIELDS = keys('http');
const TLS_CONTEXT_FIELDS = keys('secret', 'certificate', 'privateKey', 'trustedCA');
const CILIUM_RULE_FIELDS = keys('endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'enableDefaultDeny', 'labels', 'description');
const DEFAULT_DENY_FIELDS = keys('ingress', 'egress');
const CNP_PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP', 'ANY'];
const NP_PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const MISMATCHES: readonly string[] = ['', 'LOG', 'ADD', 'DELETE', 'REPLACE'];
/**
 * Fields a headerMatches edit (ADD, DELETE, REPLACE) may not touch: the body's framing (RFC 9112
 * §6) and the fields of one connection (RFC 9110 §7.6.1). An edit there would either be refused by
 * the upstream client (a 502 for every matching request) or reach the pod with a framing the front
 * end never checked — a request smuggled past the policy.
 */
/** RFC 9110 §5.6.2 token: what a field name is. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNEDITABLE_HEADERS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect',
]);
const EMPTY_SELECTOR: LabelSelectorSpec = Object.freeze({});

/**
 * A list built by push() keeps V8's growth capacity (17 slots for the first element); these lists
 * live as long as the policy, so keep exactly what they hold.
 */
const fit = <T>(a: T[]): T[] => (a.length === 0 ? (NONE as T[]) : a.slice());

function labelSelector(c: Ctx, v: unknown, field: string): LabelSelectorSpec | undefined {
  if (v === undefined || v === null) return EMPTY_SELECTOR;
  const o = c.fields(v, field, SELECTOR_FIELDS);
  if (!o) return undefined;
  let matchLabels: Readonly<Record<string, string>> | undefined;
  const ml = o.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (!isObj(ml)) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'matchLabels', 'must be a map of strings');
    else {
      // Used as parsed: a non-string value is reported, and a policy with problems is never used.
      for (const k in ml) {
        if (typeof ml[k] !== 'string') c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.matchLabels.${k}`, 'label values must be strings');
      }
      matchLabels = ml as Record<string, string>;
    }
  }
  const exprs = c.list(o.matchExpressions, field, 'matchExpressions');
  if (exprs.length === 0) return matchLabels === undefined ? EMPTY_SELECTOR : { matchLabels };
  const matchExpressions: { key: string; operator: Operator; values?: string[] }[] = [];
  for (let i = 0; i < exprs.length; i++) {
    const f = `${field}.matchExpressions[${i}]`;
    const eo = c.fields(exprs[i], f, EXPRESSION_FIELDS);
    if (!eo) continue;
    const key = c.str(eo.key, f, 'key');
    const op = c.str(eo.operator, f, 'operator');
    const values = c.list(eo.values, f, 'values');
    if (!key) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'key', 'key is required');
    // The CRD enum is exactly In|NotIn|Exists|DoesNotExist; "in" is rejected by the kube-apiserver.
    if (!OPERATORS.includes(op as Operator)) {
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'operator', `invalid operator ${JSON.stringify(op)}: must be one of In, NotIn, Exists, DoesNotExist`);
      continue;
    }
    const strs = values.filter((x): x is string => typeof x === 'string');
    if (strs.length !== values.length) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'values', 'values must be strings');
    if ((op === 'In' || op === 'NotIn') && strs.length === 0) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'values', `operator ${op} needs at least one value`);
    if ((op === 'Exists' || op === 'DoesNotExist') && strs.length > 0) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'values', `operator ${op} takes no values`);
    if (key) matchExpressions.push({ key, operator: op as Operator, values: strs });
  }
  return matchLabels === undefined ? { matchExpressions } : { matchLabels, matchExpressions };
}

/** `field.key`: the port number; "" / 0 / absent = every port. */
function portNumber(c: Ctx, v: unknown, field: string, key: string): number | undefined {
  if (v === undefined || v === null || v === '') return 0;
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string') {
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, 'port must be a string');
    return undefined;
  }
  if (!/^\d+$/.test(s)) {
    if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(s))
      c.errAt(ProblemCodes.L7G_ERR_POLICY_UNSUPPORTED, field, key, `unsupported: named port ${JSON.stringify(s)} in a policy; use the numeric port`);
    else c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, `invalid port ${JSON.stringify(s)}`);
    return undefined;
  }
  const n = Number(s);
  if (n > 65535) {
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, `port ${n} out of range 0-65535`);
    return undefined;
  }
  return n;
}

function portRange(c: Ctx, v: unknown, field: string, protocols: readonly Protocol[], defaultProtocol: Protocol): PortRange | undefined {
  const o = c.fields(v, field, PORT_FIELDS);
  if (!o) return undefined;
  const port = portNumber(c, o.port, field, 'port');
  let protocol: Protocol = defaultProtocol;
  if (o.protocol !== undefined && o.protocol !== null) {
    if (typeof o.protocol !== 'string' || !protocols.includes(o.protocol as Protocol)) {
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'protocol', `invalid protocol ${JSON.stringify(o.protocol)}: must be one of ${protocols.join(', ')}`);
      return undefined;
    }
    protocol = o.protocol as Protocol;
  }
  if (port === undefined) return undefined;
  let hi = port;
  if (o.endPort !== undefined && o.endPort !== null) {
    if (typeof o.endPort !== 'number' || !Number.isInteger(o.endPort) || o.endPort < 0 || o.endPort > 65535) {
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'endPort', `invalid endPort ${JSON.stringify(o.endPort)}`);
      return undefined;
    }
    if (port !== 0 && o.endPort < port) {
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'endPort', `endPort ${o.endPort} is lower than port ${port}`);
      return undefined;
    }
    hi = o.endPort;
  }
  // port "0" (or absent) means every port (docs/semantics.md#ports).
  return port === 0 ? { lo: 0, hi: 65535, protocol } : { lo: port, hi, protocol };
}

const NO_HEADERS: readonly { readonly name: string; readonly value: string }[] = Object.freeze([]);
const NO_HEADER_MATCHES: readonly CrdHeaderMatch[] = Object.freeze([]);

function httpRule(c: Ctx, v: unknown, field: string, policyNs: string | undefined): CrdHttpRule | undefined {
  const o = c.fields(v, field, HTTP_FIELDS);
  if (!o) return undefined;
  const method = c.regex(o.method, field, 'method');
  const path = c.regex(o.path, field, 'path');
  const host = c.regex(o.host, field, 'host');
  let headers = NO_HEADERS;
  const hl = c.list(o.headers, field, 'headers');
  if (hl.length > 0) {
    const out: { name: string; value: string }[] = [];
    for (let i = 0; i < hl.length; i++) {
      const s = c.str(hl[i], `${field}.headers[${i}]`);
      if (s === undefined) continue;
      // Split at the first space; trailing ':' removed from the name (docs/semantics.md#l7-http-matching, xds_server.go getHTTPRule).
      const sp = s.indexOf(' ');
      const name = (sp < 0 ? s : s.slice(0, sp)).replace(/:+$/, '');
      if (name === '') c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.headers[${i}]`, 'empty header name');
      else out.push({ name, value: sp < 0 ? '' : s.slice(sp + 1) });
    }
    headers = out;
  }
  let headerMatches = NO_HEADER_MATCHES;
  const hm = c.list(o.headerMatches, field, 'headerMatches');
  if (hm.length > 0) {
    const out: CrdHeaderMatch[] = [];
    for (let i = 0; i < hm.length; i++) {
      const m = headerMatch(c, hm[i], `${field}.headerMatches[${i}]`, policyNs);
      if (m !== undefined) out.push(m);
    }
    headerMatches = out;
  }
  return { method, path, host, headers, headerMatches };
}

function headerMatch(c: Ctx, h: unknown, f: string, policyNs: string | undefined): CrdHeaderMatch | undefined {
  const ho = c.fields(h, f, HEADER_MATCH_FIELDS);
  if (!ho) return undefined;
  const name = c.str(ho.name, f, 'name');
  if (!name) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'name', 'name is required');
  else if (!FIELD_NAME.test(name)) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'name', `${JSON.stringify(name)} is not a header field name (RFC 9110 §5.1: a token)`);
  const value = c.str(ho.value, f, 'value');
  const mismatch = (c.str(ho.mismatch, f, 'mismatch') ?? '') as Mismatch;
  if (!MISMATCHES.includes(mismatch))
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'mismatch', `invalid mismatch action ${JSON.stringify(mismatch)}: must be one of LOG, ADD, DELETE, REPLACE`);
  else if (name && mismatch !== '' && mismatch !== 'LOG' && UNEDITABLE_HEADERS.has(name.toLowerCase()))
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'name', `mismatch ${mismatch} cannot edit ${JSON.stringify(name)}: it frames the message or belongs to one connection (docs/policy.md#header-edits)`);
  if (value !== undefined && /[\r\n\0]/.test(value))
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'value', 'a header value cannot hold CR, LF or NUL (RFC 9110 §5.5)');
  let secret: CrdHeaderMatch['secret'];
  if (ho.secret !== undefined && ho.secret !== null) {
    const sf = `${f}.secret`;
    const so = c.fields(ho.secret, sf, SECRET_FIELDS);
    const sname = so ? c.str(so.name, sf, 'name') : undefined;
    const sns = so ? c.str(so.namespace, sf, 'namespace') : undefined;
    if (so && !sname) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, sf, 'name', 'name is required');
    // GetSecretString defaults the namespace to the policy's (cilium/cilium pkg/crypto/certificatemanager).
    if (sname) secret = { namespace: sns || (policyNs ?? 'default'), name: sname };
  }
  return name ? { name, value, secret, mismatch } : undefined;
}

function portRules(c: Ctx, v: unknown, field: string, deny: boolean, policyNs: string | undefined): PortRuleSpec[] | undefined {
  if (v === undefined || v === null) return undefined;
  const out: PortRuleSpec[] = [];
  const list = c.list(v, field);
  for (let i = 0; i < list.length; i++) {
    const f = `${field}[${i}]`;
    const o = c.fields(list[i], f, PORT_RULE_FIELDS);
    if (!o) continue;
    if (deny && o.rules !== undefined) {
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, 'rules', 'L7 rules are not allowed in a deny section (PortDenyRule has ports only)');
    }
    if (deny) {
      for (const k of TLS_FIELDS) {
        if (o[k] !== undefined) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, f, k, `${k} is not allowed in a deny section (PortDenyRule has ports only)`);
      }
    }
    const tls = deny ? undefined : portTls(c, o, f, policyNs);
    let ports: PortRange[] | undefined;
    if (o.ports !== undefined && o.ports !== null) {
      const pl = c.list(o.ports, f, 'ports');
      for (let j = 0; j < pl.length; j++) {
        const r = portRange(c, pl[j], `${f}.ports[${j}]`, CNP_PROTOCOLS, 'ANY');
        if (r) (ports ??= []).push(r);
      }
      if (ports !== undefined) ports = fit(ports);
    }
    let http: CrdHttpRule[] | undefined;
    if (!deny && o.rules !== undefined && o.rules !== null) http = l7Rules(c, o.rules, `${f}.rules`, f, ports, policyNs);
    out.push(tls === undefined ? { ports, http } : { ports, http, tls });
  }
  return fit(out);
}

/** `rules:` of one toPorts entry; undefined = no HTTP restriction. */
function l7Rules(c: Ctx, v: unknown, field: string, portField: string, ports: readonly PortRange[] | undefined, policyNs: string | undefined): CrdHttpRule[] | undefined {
  const ro = c.fields(v, field, L7_RULES_FIELDS);
  if (!ro) return undefined;
  if (ro.http !== undefined && (ro.kafka !== undefined || ro.dns !== undefined || ro.l7proto !== undefined || ro.l7 !== undefined)) {
    const other = ['kafka', 'dns', 'l7proto', 'l7'].filter((k) => ro[k] !== undefined);
    c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `HTTP rules cannot be mixed with ${other.join('/')} rules on one port`);
  }
  const list = c.list(ro.http, field, 'http');
  let rules: CrdHttpRule[] | undefined;
  for (let k = 0; k < list.length; k++) {
    const r = httpRule(c, list[k], `${field}.http[${k}]`, policyNs);
    if (r) (rules ??= []).push(r);
  }
  if (rules === undefined) return undefined;
  rules = fit(rules);
  for (const p of ports ?? []) {
    if (p.protocol === 'UDP' || p.protocol === 'SCTP')
      c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, portField, 'ports', `HTTP rules can only apply to TCP ports, not ${p.protocol}`);
  }
  return rules;
}

const TLS_FIELDS = ['terminatingTLS', 'originatingTLS', 'serverNames'] as const;

/** An SNI value: a DNS name, optionally `*.` + name (one leftmost label), matched case-insensitively. */
const SERVER_NAME = /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function tlsContext(c: Ctx, v: unknown, field: string, policyNs: string | undefined): TlsContextSpec | undefined {
  if (v === undefined || v === null) return undefined;
  const o = c.fields(v, field, TLS_CONTEXT_FIELDS);
  if (!o) return undefined;
  if (o.secret === undefined || o.secret === null) {
    // TLSContext.Secret is required (+kubebuilder:validation:Required); l7guard reads no files.
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'secret', 'secret is required');
    return undefined;
  }
  const sf = `${field}.secret`;
  const so = c.fields(o.secret, sf, SECRET_FIELDS);
  const name = so ? c.str(so.name, sf, 'name') : undefined;
  const ns = so ? c.str(so.namespace, sf, 'namespace') : undefined;
  if (so && !name) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, sf, 'name', 'name is required');
  const item = (k: 'certificate' | 'privateKey' | 'trustedCA') => {
    const s = c.str(o[k], field, k);
    return s === '' ? undefined : s;
  };
  const certificate = item('certificate');
  const privateKey = item('privateKey');
  const trustedCA = item('trustedCA');
  if (!name) return undefined;
  // Same default as headerMatches secrets: the policy's namespace (cilium pkg/crypto/certificatemanager).
  return { secret: { namespace: ns || (policyNs ?? 'default'), name }, certificate, privateKey, trustedCA, field };
}

function portTls(c: Ctx, o: Obj, f: string, policyNs: string | undefined): PortTlsSpec | undefined {
  if ((o.terminatingTLS === undefined || o.terminatingTLS === null) && (o.originatingTLS === undefined || o.originatingTLS === null) && (o.serverNames === undefined || o.serverNames === null)) return undefined;
  const serverNames: string[] = [];
  c.list(o.serverNames, f, 'serverNames').forEach((n, i) => {
    const s = c.str(n, `${f}.serverNames[${i}]`);
    if (s === undefined) return;
    const lower = s.toLowerCase().replace(/\.$/, '');
    if (!SERVER_NAME.test(lower) || lower.length > 253) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.serverNames[${i}]`, `invalid server name ${JSON.stringify(s)}: a DNS name, optionally starting with "*."`);
    else serverNames.push(lower);
  });
  return {
    terminating: tlsContext(c, o.terminatingTLS, `${f}.terminatingTLS`, policyNs),
    originating: tlsContext(c, o.originatingTLS, `${f}.originatingTLS`, policyNs),
    serverNames,
  };
}

/** The four peer fields of a direction, then toPorts: [endpoints, entities, cidrs, cidrSets]. */
const PEER_KEYS = {
  ingress: ['fromEndpoints', 'fromEntities', 'fromCIDR', 'fromCIDRSet'],
  egress: ['toEndpoints', 'toEntities', 'toCIDR', 'toCIDRSet'],
} as const;
const PEER_RULE_FIELDS = { ingress: keys(...PEER_KEYS.ingress, 'toPorts'), egress: keys(...PEER_KEYS.egress, 'toPorts') };
const CIDR_SET_FIELDS = keys('cidr', 'except');
const CILIUM_CIDR_SET_FIELDS = keys('cidr', 'except', 'cidrGroupRef', 'cidrGroupSelector');

function cidrPeer(c: Ctx, v: unknown, field: string, key?: string): Peer | undefined {
  const s = c.str(v, field, key);
  if (s === undefined) return undefined;
  const p = parsePrefix(s);
  if (!p) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, key, `invalid CIDR ${JSON.stringify(s)}`);
  return p ? { kind: 'cidr', prefix: p, except: [] } : undefined;
}

function cidrSetPeer(c: Ctx, v: unknown, field: string, allowed = CIDR_SET_FIELDS): Peer | undefined {
  const o = c.fields(v, field, allowed);
  if (!o) return undefined;
  const base = cidrPeer(c, o.cidr, field, 'cidr');
  if (o.cidr === undefined) c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'cidr', 'cidr is required');
  const except = c.list(o.except, field, 'except').map((e, i) => {
    const p = cidrPeer(c, e, `${field}.except[${i}]`);
    return p?.kind === 'cidr' ? p.prefix : undefined;
  });
  if (!base || base.kind !== 'cidr' || except.some((e) => !e)) return undefined;
  return { kind: 'cidr', prefix: base.prefix, except: except as NonNullable<(typeof except)[number]>[] };
}

function peerRule(c: Ctx, v: unknown, field: string, dir: 'ingress' | 'egress', deny: boolean, scope: PolicyScope, ns: string | undefined): PeerRuleSpec | undefined {
  const o = c.fields(v, field, PEER_RULE_FIELDS[dir]);
  if (!o) return undefined;
  const [eps, ents, cidrs, cidrSets] = PEER_KEYS[dir];
  const peers: Peer[] = [];
  let hasPeerField = false;
  let list = c.list(o[eps], field, eps);
  for (let i = 0; i < list.length; i++) {
    hasPeerField = true;
    const sel = labelSelector(c, list[i], `${field}.${eps}[${i}]`);
    if (sel) peers.push({ kind: 'labels', reqs: pinPeerSelector(selectorRequirements(sel), scope, c.warnFn) });
  }
  list = c.list(o[ents], field, ents);
  for (let i = 0; i < list.length; i++) {
    hasPeerField = true;
    const e = list[i];
    if (typeof e !== 'string' || !ENTITIES.includes(e as Entity)) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.${ents}[${i}]`, `unknown entity ${JSON.stringify(e)}: must be one of ${ENTITIES.join(', ')}`);
      continue;
    }
    peers.push({ kind: 'entity', entity: e as Entity });
  }
  list = c.list(o[cidrs], field, cidrs);
  for (let i = 0; i < list.length; i++) {
    hasPeerField = true;
    const p = cidrPeer(c, list[i], `${field}.${cidrs}[${i}]`);
    if (p) peers.push(p);
  }
  list = c.list(o[cidrSets], field, cidrSets);
  for (let i = 0; i < list.length; i++) {
    hasPeerField = true;
    const p = cidrSetPeer(c, list[i], `${field}.${cidrSets}[${i}]`, CILIUM_CIDR_SET_FIELDS);
    if (p) peers.push(p);
  }
  const toPorts = portRules(c, o.toPorts, `${field}.toPorts`, deny, ns);
  // L4-only rule (toPorts, no peer field): every peer, world included (docs/semantics.md#peer-selection, wildcardL3L4Rules).
  if (!hasPeerField && toPorts !== undefined) peers.push({ kind: 'all' });
  return { peers: fit(peers), toPorts, field };
}

const DIRECTIONS = [
  ['ingress', 'ingress', false],
  ['ingressDeny', 'ingress', true],
  ['egress', 'egress', false],
  ['egressDeny', 'egress', true],
] as const;

function ciliumRule(c: Ctx, v: unknown, field: string, scope: PolicyScope, ns: string | undefined): RuleSpec | undefined {
  const o = c.fields(v, field, CILIUM_RULE_FIELDS);
  if (!o) return undefined;
  if (o.endpointSelector === undefined && o.nodeSelector === undefined)
    c.errAt(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'endpointSelector', 'endpointSelector is required');
  const sel = labelSelector(c, o.endpointSelector, `${field}.endpointSelector`);
  const lists: PeerRuleSpec[][] = [];
  for (const [key, dir, deny] of DIRECTIONS) {
    const out: PeerRuleSpec[] = [];
    const list = c.list(o[key], field, key);
    for (let i = 0; i < list.length; i++) {
      const r = peerRule(c, list[i], `${field}.${key}[${i}]`, dir, deny, scope, ns);
      if (r) out.push(r);
    }
    lists.push(fit(out));
  }
  const [ingress, ingressDeny, egress, egressDeny] = lists as [PeerRuleSpec[], PeerRuleSpec[], PeerRuleSpec[], PeerRuleSpec[]];
  let ddIngress: boolean | undefined;
  let ddEgress: boolean | undefined;
  if (o.enableDefaultDeny !== undefined && o.enableDefaultDeny !== null) {
    const df = `${field}.enableDefaultDeny`;
    const d = c.fields(o.enableDefaultDeny, df, DEFAULT_DENY_FIELDS);
    ddIngress = d ? c.bool(d.ingress, df, 'ingress') : undefined;
    ddEgress = d ? c.bool(d.egress, df, 'egress') : undefined;
  }
  if (o.labels !== undefined) c.list(o.labels, field, 'labels');
  if (o.description !== undefined) c.str(o.description, field, 'description');
  if (!sel) return undefined;
  const hasIngress = ingress.length > 0 || ingressDeny.length > 0;
  const hasEgress = egress.length > 0 || egressDeny.length > 0;
  return {
    subject: pinSubjectSelector(selectorRequirements(sel), scope, c.warnFn),
    ingress, ingressDeny, egress, egressDeny,
    enforceIngress: hasIngress && ddIngress !== false,
    enforceEgress: hasEgress && ddEgress !== false,
    hasIngress, hasEgress,
  };
}

const NP_PEER_FIELDS = keys('podSelector', 'namespaceSelector', 'ipBlock');
const NP_INGRESS_FIELDS = keys('from', 'ports');
const NP_EGRESS_FIELDS = keys('to', 'ports');
const NP_SPEC_FIELDS = keys('podSelector', 'policyTypes', 'ingress', 'egress');

/** Kubernetes NetworkPolicy peers, as Cilium translates them (pkg/k8s network_policy.go). */
function npPeer(c: Ctx, v: unknown, field: string, ns: string): Peer | undefined {
  const o = c.fields(v, field, NP_PEER_FIELDS);
  if (!o) return undefined;
  if (o.ipBlock !== undefined) {
    if (o.podSelector !== undefined || o.namespaceSelector !== undefined)
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    return cidrSetPeer(c, o.ipBlock, `${field}.ipBlock`);
  }
  const pod = labelSelector(c, o.podSelector, `${field}.podSelector`);
  if (!pod) return undefined;
  const reqs = selectorRequirements(pod, 'k8s:');
  if (o.namespaceSelector === undefined || o.namespaceSelector === null) {
    return { kind: 'labels', reqs: pinPeerSelector(reqs, { kind: 'namespaced', namespace: ns }, () => {}) };
  }
  const nsSel = labelSelector(c, o.namespaceSelector, `${field}.namespaceSelector`);
  if (!nsSel) return undefined;
  const nsReqs = selectorRequirements(nsSel, 'k8s:io.cilium.k8s.namespace.labels.');
  return { kind: 'labels', reqs: [...reqs, ...nsReqs, { source: 'k8s', key: 'io.kubernetes.pod.namespace', op: 'Exists', values: new Set() }] };
}

function npRules(c: Ctx, v: unknown, field: string, dir: 'ingress' | 'egress', ns: string): PeerRuleSpec[] {
  const peerKey = dir === 'ingress' ? 'from' : 'to';
  return c
    .list(v, field)
    .map((r, i): PeerRuleSpec | undefined => {
      const f = `${field}[${i}]`;
      const o = c.fields(r, f, dir === 'ingress' ? NP_INGRESS_FIELDS : NP_EGRESS_FIELDS);
      if (!o) return undefined;
      const peerList = c.list(o[peerKey], f, peerKey);
      const peers = peerList.map((p, j) => npPeer(c, p, `${f}.${peerKey}[${j}]`, ns)).filter((x): x is Peer => !!x);
      let toPorts: PortRuleSpec[] | undefined;
      const ports = c.list(o.ports, f, 'ports');
      if (ports.length > 0) {
        const ranges = ports.map((p, j) => portRange(c, p, `${f}.ports[${j}]`, NP_PROTOCOLS, 'TCP')).filter((x): x is PortRange => !!x);
        toPorts = [{ ports: ranges, http: undefined }];
      }
      // Absent or empty from/to: every peer (Kubernetes semantics).
      return { peers: peerList.length === 0 ? [{ kind: 'all' } as const] : peers, toPorts, field: f };
    })
    .filter((x): x is PeerRuleSpec => !!x);
}

function networkPolicy(c: Ctx, spec: unknown, ns: string): RuleSpec | undefined {
  const o = c.fields(spec, 'spec', NP_SPEC_FIELDS);
  if (!o) return undefined;
  if (o.podSelector === undefined) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, 'spec.podSelector', 'podSelector is required');
  const sel = labelSelector(c, o.podSelector, 'spec.podSelector');
  const ingress = npRules(c, o.ingress, 'spec.ingress', 'ingress', ns);
  const egress = npRules(c, o.egress, 'spec.egress', 'egress', ns);
  let types: string[];
  if (o.policyTypes === undefined || o.policyTypes === null) {
    types = ['Ingress', ...(o.egress !== undefined && o.egress !== null ? ['Egress'] : [])];
  } else {
    types = [];
    c.list(o.policyTypes, 'spec', 'policyTypes').forEach((t, i) => {
      if (t !== 'Ingress' && t !== 'Egress') c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `spec.policyTypes[${i}]`, `invalid policy type ${JSON.stringify(t)}: must be Ingress or Egress`);
      else types.push(t);
    });
  }
  if (!sel) return undefined;
  const subject = pinSubjectSelector(selectorRequirements(sel, 'k8s:'), { kind: 'namespaced', namespace: ns }, () => {});
  const enforceIngress = types.includes('Ingress');
  const enforceEgress = types.includes('Egress');
  return {
    subject,
    ingress: enforceIngress ? ingress : [],
    ingressDeny: [],
    egress: enforceEgress ? egress : [],
    egressDeny: [],
    enforceIngress, enforceEgress,
    hasIngress: enforceIngress, hasEgress: enforceEgress,
  };
}

const NP_OBJECT_FIELDS = keys('apiVersion', 'kind', 'metadata', 'spec', 'status');
const CILIUM_OBJECT_FIELDS = keys('apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status');

export interface ParseInput {
  readonly kind: PolicyKind;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly file: string;
  readonly line: number | undefined;
  readonly raw: Obj;
}

export interface ParseResult {
  readonly policy: PolicySpec | undefined;
  readonly problems: readonly LoadProblem[];
  readonly warnings: readonly string[];
}

export function objectLabel(kind: string, namespace: string | undefined, name: string): string {
  return namespace === undefined ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

/** Validates and parses one policy object; problems name file, object and field path. */
export function parsePolicy(input: ParseInput): ParseResult {
  const c = new Ctx(input.file, objectLabel(input.kind, input.namespace, input.name), input.line);
  // The API server refuses unknown top-level fields (kubectl's strict field validation): `spce`
  // would otherwise read as a policy without a spec.
  const top = input.kind === 'NetworkPolicy' ? NP_OBJECT_FIELDS : CILIUM_OBJECT_FIELDS;
  for (const k in input.raw) {
    if (!top.has(k)) c.err(ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD, k, unknownField(k, top));
  }
  const rules: RuleSpec[] = [];
  if (input.kind === 'NetworkPolicy') {
    const r = networkPolicy(c, input.raw.spec, input.namespace ?? 'default');
    if (r) rules.push(r);
  } else {
    const scope: PolicyScope =
      input.kind === 'CiliumClusterwideNetworkPolicy' ? { kind: 'clusterwide' } : { kind: 'namespaced', namespace: input.namespace ?? 'default' };
    const { spec, specs } = input.raw;
    if (spec === undefined && specs === undefined) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, 'spec', 'spec or specs is required');
    if (spec !== undefined && spec !== null) {
      const r = ciliumRule(c, spec, 'spec', scope, input.namespace);
      if (r) rules.push(r);
    }
    c.list(specs, 'specs').forEach((s, i) => {
      const r = ciliumRule(c, s, `specs[${i}]`, scope, input.namespace);
      if (r) rules.push(r);
    });
  }
  const ok = c.problems.length === 0;
  return {
    policy: ok ? { kind: input.kind, namespace: input.namespace, name: input.name, file: input.file, rules } : undefined,
    problems: c.problems,
    warnings: c.warnings,
  };
}
