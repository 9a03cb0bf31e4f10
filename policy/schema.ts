/**
 * Strict parsing of CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and Kubernetes NetworkPolicy
 * into typed rules. Unknown fields, invalid values and fields l7guard cannot enforce are all
 * problems (never ignored), each with the field path. Namespace rewriting happens here (§2.2/§2.3).
 */
import { parsePrefix } from './cidr.js';
import { type LoadProblem, type ProblemCode, ProblemCodes } from './errors.js';
import { compileFullMatch, RegexSyntaxError, type StringMatcher } from './regex.js';
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
  /** Whether this rule puts selected endpoints in default deny, per direction (§2.4). */
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

class Ctx {
  readonly problems: LoadProblem[] = [];
  readonly warnings: string[] = [];
  constructor(
    readonly file: string,
    readonly object: string,
    readonly line: number | undefined,
  ) {}
  err(code: ProblemCode, field: string, message: string): void {
    this.problems.push({ code, file: this.file, object: this.object, field, line: this.line, message });
  }
  warn(m: string): void {
    this.warnings.push(`${this.file} ${this.object}: ${m}`);
  }
  /** Checks `o` is an object whose keys are all allowed; reports unknown and unsupported keys. */
  fields(v: unknown, field: string, allowed: readonly string[]): Obj | undefined {
    if (!isObj(v)) {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `must be an object`);
      return undefined;
    }
    for (const k of Object.keys(v)) {
      if (allowed.includes(k)) continue;
      const u = UNSUPPORTED[k];
      if (u !== undefined) this.err(ProblemCodes.L7G_ERR_POLICY_UNSUPPORTED, `${field}.${k}`, `unsupported: ${u}`);
      else this.err(ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD, `${field}.${k}`, `unknown field "${k}"`);
    }
    return v;
  }
  list(v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'must be a list');
      return [];
    }
    return v;
  }
  str(v: unknown, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'must be a string');
      return undefined;
    }
    return v;
  }
  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'must be a boolean');
      return undefined;
    }
    return v;
  }
  regex(v: unknown, field: string): StringMatcher | undefined {
    const s = this.str(v, field);
    if (s === undefined || s === '') return undefined;
    try {
      return compileFullMatch(s);
    } catch (e) {
      this.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, e instanceof RegexSyntaxError ? e.message : String(e));
      return undefined;
    }
  }
}

function labelSelector(c: Ctx, v: unknown, field: string): LabelSelectorSpec | undefined {
  if (v === undefined || v === null) return {};
  const o = c.fields(v, field, ['matchLabels', 'matchExpressions']);
  if (!o) return undefined;
  const matchLabels: Record<string, string> = {};
  if (o.matchLabels !== undefined && o.matchLabels !== null) {
    if (!isObj(o.matchLabels)) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.matchLabels`, 'must be a map of strings');
    else
      for (const [k, val] of Object.entries(o.matchLabels)) {
        if (typeof val !== 'string') c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.matchLabels.${k}`, 'label values must be strings');
        else matchLabels[k] = val;
      }
  }
  const matchExpressions: { key: string; operator: Operator; values?: string[] }[] = [];
  c.list(o.matchExpressions, `${field}.matchExpressions`).forEach((e, i) => {
    const f = `${field}.matchExpressions[${i}]`;
    const eo = c.fields(e, f, ['key', 'operator', 'values']);
    if (!eo) return;
    const key = c.str(eo.key, `${f}.key`);
    const op = c.str(eo.operator, `${f}.operator`);
    const values = c.list(eo.values, `${f}.values`);
    if (!key) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.key`, 'key is required');
    // The CRD enum is exactly In|NotIn|Exists|DoesNotExist; "in" is rejected by the kube-apiserver.
    if (!OPERATORS.includes(op as Operator)) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.operator`, `invalid operator ${JSON.stringify(op)}: must be one of In, NotIn, Exists, DoesNotExist`);
      return;
    }
    const strs = values.filter((x): x is string => typeof x === 'string');
    if (strs.length !== values.length) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.values`, 'values must be strings');
    if ((op === 'In' || op === 'NotIn') && strs.length === 0) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.values`, `operator ${op} needs at least one value`);
    if ((op === 'Exists' || op === 'DoesNotExist') && strs.length > 0) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.values`, `operator ${op} takes no values`);
    if (key) matchExpressions.push({ key, operator: op as Operator, values: strs });
  });
  return { matchLabels, matchExpressions };
}

function portNumber(c: Ctx, v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === '') return 0;
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string') {
    c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, 'port must be a string');
    return undefined;
  }
  if (!/^\d+$/.test(s)) {
    if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(s))
      c.err(ProblemCodes.L7G_ERR_POLICY_UNSUPPORTED, field, `unsupported: named port ${JSON.stringify(s)} in a policy; use the numeric port`);
    else c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `invalid port ${JSON.stringify(s)}`);
    return undefined;
  }
  const n = Number(s);
  if (n > 65535) {
    c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `port ${n} out of range 0-65535`);
    return undefined;
  }
  return n;
}

function portRange(c: Ctx, v: unknown, field: string, protocols: readonly Protocol[], defaultProtocol: Protocol): PortRange | undefined {
  const o = c.fields(v, field, ['port', 'endPort', 'protocol']);
  if (!o) return undefined;
  const port = portNumber(c, o.port, `${field}.port`);
  let protocol: Protocol = defaultProtocol;
  if (o.protocol !== undefined && o.protocol !== null) {
    if (typeof o.protocol !== 'string' || !protocols.includes(o.protocol as Protocol)) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.protocol`, `invalid protocol ${JSON.stringify(o.protocol)}: must be one of ${protocols.join(', ')}`);
      return undefined;
    }
    protocol = o.protocol as Protocol;
  }
  if (port === undefined) return undefined;
  let hi = port;
  if (o.endPort !== undefined && o.endPort !== null) {
    if (typeof o.endPort !== 'number' || !Number.isInteger(o.endPort) || o.endPort < 0 || o.endPort > 65535) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.endPort`, `invalid endPort ${JSON.stringify(o.endPort)}`);
      return undefined;
    }
    if (port !== 0 && o.endPort < port) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.endPort`, `endPort ${o.endPort} is lower than port ${port}`);
      return undefined;
    }
    hi = o.endPort;
  }
  // port "0" (or absent) means every port (§2.5).
  return port === 0 ? { lo: 0, hi: 65535, protocol } : { lo: port, hi, protocol };
}

function httpRule(c: Ctx, v: unknown, field: string, policyNs: string | undefined): CrdHttpRule | undefined {
  const o = c.fields(v, field, ['method', 'path', 'host', 'headers', 'headerMatches']);
  if (!o) return undefined;
  const method = c.regex(o.method, `${field}.method`);
  const path = c.regex(o.path, `${field}.path`);
  const host = c.regex(o.host, `${field}.host`);
  const headers: { name: string; value: string }[] = [];
  c.list(o.headers, `${field}.headers`).forEach((h, i) => {
    const s = c.str(h, `${field}.headers[${i}]`);
    if (s === undefined) return;
    // Split at the first space; trailing ':' removed from the name (§2.6, xds_server.go getHTTPRule).
    const sp = s.indexOf(' ');
    const name = (sp < 0 ? s : s.slice(0, sp)).replace(/:+$/, '');
    if (name === '') c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.headers[${i}]`, 'empty header name');
    else headers.push({ name, value: sp < 0 ? '' : s.slice(sp + 1) });
  });
  const headerMatches: CrdHeaderMatch[] = [];
  c.list(o.headerMatches, `${field}.headerMatches`).forEach((h, i) => {
    const f = `${field}.headerMatches[${i}]`;
    const ho = c.fields(h, f, ['name', 'value', 'secret', 'mismatch']);
    if (!ho) return;
    const name = c.str(ho.name, `${f}.name`);
    if (!name) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.name`, 'name is required');
    const value = c.str(ho.value, `${f}.value`);
    const mismatch = (c.str(ho.mismatch, `${f}.mismatch`) ?? '') as Mismatch;
    if (!['', 'LOG', 'ADD', 'DELETE', 'REPLACE'].includes(mismatch))
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.mismatch`, `invalid mismatch action ${JSON.stringify(mismatch)}: must be one of LOG, ADD, DELETE, REPLACE`);
    let secret: CrdHeaderMatch['secret'];
    if (ho.secret !== undefined && ho.secret !== null) {
      const so = c.fields(ho.secret, `${f}.secret`, ['namespace', 'name']);
      const sname = so ? c.str(so.name, `${f}.secret.name`) : undefined;
      const sns = so ? c.str(so.namespace, `${f}.secret.namespace`) : undefined;
      if (so && !sname) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.secret.name`, 'name is required');
      // GetSecretString defaults the namespace to the policy's (cilium/cilium pkg/crypto/certificatemanager).
      if (sname) secret = { namespace: sns || (policyNs ?? 'default'), name: sname };
    }
    if (name) headerMatches.push({ name, value, secret, mismatch });
  });
  return { method, path, host, headers, headerMatches };
}

function portRules(c: Ctx, v: unknown, field: string, deny: boolean, policyNs: string | undefined): PortRuleSpec[] | undefined {
  if (v === undefined || v === null) return undefined;
  const out: PortRuleSpec[] = [];
  c.list(v, field).forEach((pr, i) => {
    const f = `${field}[${i}]`;
    const o = c.fields(pr, f, ['ports', 'rules', ...TLS_FIELDS]);
    if (!o) return;
    if (deny && o.rules !== undefined) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.rules`, 'L7 rules are not allowed in a deny section (PortDenyRule has ports only)');
    }
    for (const k of TLS_FIELDS) {
      if (deny && o[k] !== undefined) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.${k}`, `${k} is not allowed in a deny section (PortDenyRule has ports only)`);
    }
    const tls = deny ? undefined : portTls(c, o, f, policyNs);
    let ports: PortRange[] | undefined;
    if (o.ports !== undefined && o.ports !== null) {
      ports = [];
      c.list(o.ports, `${f}.ports`).forEach((p, j) => {
        const r = portRange(c, p, `${f}.ports[${j}]`, ['TCP', 'UDP', 'SCTP', 'ANY'], 'ANY');
        if (r) ports?.push(r);
      });
      if (ports.length === 0) ports = undefined;
    }
    let http: CrdHttpRule[] | undefined;
    if (!deny && o.rules !== undefined && o.rules !== null) {
      const ro = c.fields(o.rules, `${f}.rules`, ['http']);
      if (ro) {
        const other = ['kafka', 'dns', 'l7proto', 'l7'].filter((k) => ro[k] !== undefined);
        if (ro.http !== undefined && other.length > 0)
          c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.rules`, `HTTP rules cannot be mixed with ${other.join('/')} rules on one port`);
        const list = c.list(ro.http, `${f}.rules.http`);
        const rules = list.map((h, k) => httpRule(c, h, `${f}.rules.http[${k}]`, policyNs)).filter((x): x is CrdHttpRule => !!x);
        if (rules.length > 0) {
          http = rules;
          for (const p of ports ?? []) {
            if (p.protocol === 'UDP' || p.protocol === 'SCTP')
              c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${f}.ports`, `HTTP rules can only apply to TCP ports, not ${p.protocol}`);
          }
        }
      }
    }
    out.push(tls === undefined ? { ports, http } : { ports, http, tls });
  });
  return out;
}

const TLS_FIELDS = ['terminatingTLS', 'originatingTLS', 'serverNames'] as const;

/** An SNI value: a DNS name, optionally `*.` + name (one leftmost label), matched case-insensitively. */
const SERVER_NAME = /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function tlsContext(c: Ctx, v: unknown, field: string, policyNs: string | undefined): TlsContextSpec | undefined {
  if (v === undefined || v === null) return undefined;
  const o = c.fields(v, field, ['secret', 'certificate', 'privateKey', 'trustedCA']);
  if (!o) return undefined;
  if (o.secret === undefined || o.secret === null) {
    // TLSContext.Secret is required (+kubebuilder:validation:Required); l7guard reads no files.
    c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.secret`, 'secret is required');
    return undefined;
  }
  const so = c.fields(o.secret, `${field}.secret`, ['namespace', 'name']);
  const name = so ? c.str(so.name, `${field}.secret.name`) : undefined;
  const ns = so ? c.str(so.namespace, `${field}.secret.namespace`) : undefined;
  if (so && !name) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.secret.name`, 'name is required');
  const item = (k: 'certificate' | 'privateKey' | 'trustedCA') => {
    const s = c.str(o[k], `${field}.${k}`);
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
  if (TLS_FIELDS.every((k) => o[k] === undefined || o[k] === null)) return undefined;
  const serverNames: string[] = [];
  c.list(o.serverNames, `${f}.serverNames`).forEach((n, i) => {
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

const INGRESS_PEERS = ['fromEndpoints', 'fromEntities', 'fromCIDR', 'fromCIDRSet'];
const EGRESS_PEERS = ['toEndpoints', 'toEntities', 'toCIDR', 'toCIDRSet'];

function cidrPeer(c: Ctx, v: unknown, field: string): Peer | undefined {
  const s = c.str(v, field);
  if (s === undefined) return undefined;
  const p = parsePrefix(s);
  if (!p) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, field, `invalid CIDR ${JSON.stringify(s)}`);
  return p ? { kind: 'cidr', prefix: p, except: [] } : undefined;
}

function cidrSetPeer(c: Ctx, v: unknown, field: string, allowed = ['cidr', 'except']): Peer | undefined {
  const o = c.fields(v, field, allowed);
  if (!o) return undefined;
  const base = cidrPeer(c, o.cidr, `${field}.cidr`);
  if (o.cidr === undefined) c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.cidr`, 'cidr is required');
  const except = c.list(o.except, `${field}.except`).map((e, i) => {
    const p = cidrPeer(c, e, `${field}.except[${i}]`);
    return p?.kind === 'cidr' ? p.prefix : undefined;
  });
  if (!base || base.kind !== 'cidr' || except.some((e) => !e)) return undefined;
  return { kind: 'cidr', prefix: base.prefix, except: except as NonNullable<(typeof except)[number]>[] };
}

function peerRule(c: Ctx, v: unknown, field: string, dir: 'ingress' | 'egress', deny: boolean, scope: PolicyScope, ns: string | undefined): PeerRuleSpec | undefined {
  const peersKeys = dir === 'ingress' ? INGRESS_PEERS : EGRESS_PEERS;
  const o = c.fields(v, field, [...peersKeys, 'toPorts']);
  if (!o) return undefined;
  const [eps, ents, cidrs, cidrSets] = peersKeys as [string, string, string, string];
  const peers: Peer[] = [];
  let hasPeerField = false;
  c.list(o[eps], `${field}.${eps}`).forEach((s, i) => {
    hasPeerField = true;
    const sel = labelSelector(c, s, `${field}.${eps}[${i}]`);
    if (sel) peers.push({ kind: 'labels', reqs: pinPeerSelector(selectorRequirements(sel), scope, (m) => c.warn(m)) });
  });
  c.list(o[ents], `${field}.${ents}`).forEach((e, i) => {
    hasPeerField = true;
    if (typeof e !== 'string' || !ENTITIES.includes(e as Entity)) {
      c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.${ents}[${i}]`, `unknown entity ${JSON.stringify(e)}: must be one of ${ENTITIES.join(', ')}`);
      return;
    }
    peers.push({ kind: 'entity', entity: e as Entity });
  });
  c.list(o[cidrs], `${field}.${cidrs}`).forEach((s, i) => {
    hasPeerField = true;
    const p = cidrPeer(c, s, `${field}.${cidrs}[${i}]`);
    if (p) peers.push(p);
  });
  c.list(o[cidrSets], `${field}.${cidrSets}`).forEach((s, i) => {
    hasPeerField = true;
    const p = cidrSetPeer(c, s, `${field}.${cidrSets}[${i}]`, ['cidr', 'except', 'cidrGroupRef', 'cidrGroupSelector']);
    if (p) peers.push(p);
  });
  const toPorts = portRules(c, o.toPorts, `${field}.toPorts`, deny, ns);
  // L4-only rule (toPorts, no peer field): every peer, world included (§2.3, wildcardL3L4Rules).
  if (!hasPeerField && toPorts !== undefined) peers.push({ kind: 'all' });
  return { peers, toPorts, field };
}

function ciliumRule(c: Ctx, v: unknown, field: string, scope: PolicyScope, ns: string | undefined): RuleSpec | undefined {
  const o = c.fields(v, field, ['endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'enableDefaultDeny', 'labels', 'description']);
  if (!o) return undefined;
  if (o.endpointSelector === undefined && o.nodeSelector === undefined)
    c.err(ProblemCodes.L7G_ERR_POLICY_VALUE, `${field}.endpointSelector`, 'endpointSelector is required');
  const sel = labelSelector(c, o.endpointSelector, `${field}.endpointSelector`);
  const dirList = (key: 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny') => {
    const dir = key.startsWith('ingress') ? 'ingress' : 'egress';
    return c
      .list(o[key], `${field}.${key}`)
      .map((r, i) => peerRule(c, r, `${field}.${key}[${i}]`, dir, key.endsWith('Deny'), scope, ns))
      .filter((x): x is PeerRuleSpec => !!x);
  };
  const ingress = dirList('ingress');
  const ingressDeny = dirList('ingressDeny');
  const egress = dirList('egress');
  const egressDeny = dirList('egressDeny');
  let ddIngress: boolean | undefined;
  let ddEgress: boolean | undefined;
  if (o.enableDefaultDeny !== undefined && o.enableDefaultDeny !== null) {
    const d = c.fields(o.enableDefaultDeny, `${field}.enableDefaultDeny`, ['ingress', 'egress']);
    ddIngress = d ? c.bool(d.ingress, `${field}.enableDefaultDeny.ingress`) : undefined;
    ddEgress = d ? c.bool(d.egress, `${field}.enableDefaultDeny.egress`) : undefined;
  }
  if (o.labels !== undefined) c.list(o.labels, `${field}.labels`);
  if (o.description !== undefined) c.str(o.description, `${field}.description`);
  if (!sel) return undefined;
  const hasIngress = ingress.length > 0 || ingressDeny.length > 0;
  const hasEgress = egress.length > 0 || egressDeny.length > 0;
  return {
    subject: pinSubjectSelector(selectorRequirements(sel), scope, (m) => c.warn(m)),
    ingress, ingressDeny, egress, egressDeny,
    enforceIngress: hasIngress && ddIngress !== false,
    enforceEgress: hasEgress && ddEgress !== false,
    hasIngress, hasEgress,
  };
}

/** Kubernetes NetworkPolicy peers, as Cilium translates them (pkg/k8s network_policy.go). */
function npPeer(c: Ctx, v: unknown, field: string, ns: string): Peer | undefined {
  const o = c.fields(v, field, ['podSelector', 'namespaceSelector', 'ipBlock']);
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
      const o = c.fields(r, f, [peerKey, 'ports']);
      if (!o) return undefined;
      const peerList = c.list(o[peerKey], `${f}.${peerKey}`);
      const peers = peerList.map((p, j) => npPeer(c, p, `${f}.${peerKey}[${j}]`, ns)).filter((x): x is Peer => !!x);
      let toPorts: PortRuleSpec[] | undefined;
      const ports = c.list(o.ports, `${f}.ports`);
      if (ports.length > 0) {
        const ranges = ports.map((p, j) => portRange(c, p, `${f}.ports[${j}]`, ['TCP', 'UDP', 'SCTP'], 'TCP')).filter((x): x is PortRange => !!x);
        toPorts = [{ ports: ranges, http: undefined }];
      }
      // Absent or empty from/to: every peer (Kubernetes semantics).
      return { peers: peerList.length === 0 ? [{ kind: 'all' } as const] : peers, toPorts, field: f };
    })
    .filter((x): x is PeerRuleSpec => !!x);
}

function networkPolicy(c: Ctx, spec: unknown, ns: string): RuleSpec | undefined {
  const o = c.fields(spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
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
    c.list(o.policyTypes, 'spec.policyTypes').forEach((t, i) => {
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
