/**
 * `policy trace` (Cilium's `cilium policy trace`): the verdict for a (source, destination, port[,
 * HTTP request]) and the rules that decided it, for any label sets — known identities or not.
 *
 * It runs the same procedure as the compiled tables (compile.ts `directionPolicy` + `evaluate`, the
 * function every PortTable cell comes from) on fresh peers and a private L7 cache, so a trace never
 * fills or poisons a running state's tables. test/policy/trace.test.ts checks it against decide()
 * for every pair of known endpoints.
 */
import { type CompiledRule, type Direction, directionPolicy, evaluate, L7DecisionCache, scanMatcher } from './compile.js';
import { makeIdentity } from './identity.js';
import { parseLabel, POD_NAMESPACE_LABEL } from './labels.js';
import type { DropReason, Endpoint, Identity, L7Request, PolicyState, PortDecision, RuleRef } from './model.js';
import { serviceBackends } from './resolve.js';
import { matchRequirements, type PeerIdentity } from './selector.js';
import { CompiledPolicyState } from './state.js';

/** One side of a trace, resolved against the state. */
export interface TraceEnd {
  /** Sorted Cilium label strings. */
  readonly labels: readonly string[];
  /** The known identity with exactly these labels, if any. */
  readonly identity: number | undefined;
  /** `namespace/name` of the pod given (or of the first pod with this identity). */
  readonly pod: string | undefined;
  /** A pod's labels (has k8s:io.kubernetes.pod.namespace): its egress policy applies, as in decide(). */
  readonly isPod: boolean;
}

/** A policy rule named the way the trace prints it. */
export interface TraceRule {
  readonly kind: RuleRef['kind'];
  readonly namespace: string | undefined;
  readonly name: string;
  readonly ruleIndex: number;
}

export interface DirectionTrace {
  readonly direction: Direction;
  /** False for the egress of a non-pod source (decide() applies egress to known pods only). */
  readonly applies: boolean;
  /** Rules whose selector picks the subject and that speak about this direction. */
  readonly selected: readonly TraceRule[];
  /** POLICY (ingress|egress) ENFORCEMENT: default deny is on. */
  readonly enforced: boolean;
  readonly decision: 'allow' | 'l7' | 'drop';
  readonly reason: DropReason | undefined;
  /** Allow: the covering rules; l7: the rules whose HTTP rules judge; drop: the deny rules (empty = no rule selected this peer). */
  readonly by: readonly RuleRef[];
}

export interface TraceHttp {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  readonly headers: readonly string[];
}

export interface TraceResult {
  readonly revision: number;
  readonly src: TraceEnd;
  readonly dst: TraceEnd;
  readonly port: number;
  readonly protocol: 'TCP';
  /** Total policy rules loaded (Cilium's "N/M rules selected"). */
  readonly rules: number;
  /** Set when `--allow-localhost always` let a host source through before any policy. */
  readonly allowLocalhost: boolean;
  readonly egress: DirectionTrace;
  readonly ingress: DirectionTrace;
  readonly http: TraceHttp | undefined;
  readonly verdict: 'ALLOWED' | 'DENIED';
  /** Where a denial happened. */
  readonly layer: 'L3/L4' | 'L7' | undefined;
  /** The direction that decided a denial. */
  readonly direction: Direction | undefined;
  readonly reason: DropReason | 'L7_DENIED' | undefined;
  /** L7 rules apply at this port but no HTTP request was given to trace. */
  readonly l7Pending: boolean;
  /** The rules that decided the final verdict (empty on a denial = no rule selected this peer). */
  readonly by: readonly RuleRef[];
}

export interface TraceQuery {
  readonly src: TraceEnd;
  readonly dst: TraceEnd;
  readonly port: number;
  readonly http?: TraceHttp | undefined;
}

export class TraceError extends Error {
  readonly code = 'L7G_ERR_TRACE';
}

/** `k8s:org=empire,k8s:class=deathstar` (repeatable; comma-separated) -> a resolved end. */
export function endFromLabels(state: PolicyState, lists: readonly string[]): TraceEnd {
  const labels = [...new Set(lists.flatMap((l) => l.split(',')).map((l) => l.trim()).filter((l) => l !== ''))]
    .map((l) => {
      const p = parseLabel(l);
      // A label without a source is Cilium's `unspec`; written here it means a pod label.
      return l.includes(':') ? l : `k8s:${p.key}${p.value === '' ? '' : `=${p.value}`}`;
    })
    .sort();
  if (labels.length === 0) throw new TraceError('a label list is empty');
  const key = labels.join(',');
  const known = [...state.identities.values()].find((i) => i.labels.join(',') === key);
  const ep = known === undefined ? undefined : state.endpoints.find((e) => e.identity.id === known.id);
  return { labels, identity: known?.id, pod: ep === undefined ? undefined : `${ep.namespace}/${ep.name}`, isPod: isPodLabels(labels) };
}

/** `NAMESPACE/NAME` (or `NAMESPACE:NAME`, Cilium's form, or `NAME` in default) of a pod with an IP. */
export function endFromPod(state: PolicyState, ref: string): TraceEnd {
  const m = /^(?:([^/:]+)[/:])?([^/:]+)$/.exec(ref);
  if (m === null) throw new TraceError(`pod must be NAMESPACE/NAME, not ${JSON.stringify(ref)}`);
  const ns = m[1] ?? 'default';
  const ep: Endpoint | undefined = state.endpoints.find((e) => e.namespace === ns && e.name === m[2]);
  if (ep === undefined) throw new TraceError(`pod ${ns}/${m[2]} is not a known endpoint (a Pod with an IP in the loaded files)`);
  return { labels: ep.identity.labels, identity: ep.identity.id, pod: `${ep.namespace}/${ep.name}`, isPod: true };
}

export const isPodLabels = (labels: readonly string[]) => labels.some((l) => l.startsWith(`k8s:${POD_NAMESPACE_LABEL}=`));

const ruleName = (r: CompiledRule): TraceRule | undefined =>
  r.origin === undefined ? undefined : { kind: r.origin.kind, namespace: r.origin.namespace, name: r.origin.name, ruleIndex: r.origin.ruleIndex };

function selectedRules(rules: readonly CompiledRule[], subject: PeerIdentity, dir: Direction): TraceRule[] {
  const out: TraceRule[] = [];
  for (const r of rules) {
    const has = dir === 'INGRESS' ? r.spec.hasIngress : r.spec.hasEgress;
    if (!has || !matchRequirements(r.spec.subject, subject.labelSet)) continue;
    const n = ruleName(r);
    if (n !== undefined) out.push(n);
  }
  return out;
}

function directionTrace(rules: readonly CompiledRule[], subject: PeerIdentity, peer: PeerIdentity, port: number, dir: Direction, clusterName: string, applies: boolean): SideTrace {
  const allow: PortDecision = { kind: 'allow' };
  if (!applies) return { trace: { direction: dir, applies, selected: [], enforced: false, decision: 'allow', reason: undefined, by: [] }, decision: allow };
  const dp = directionPolicy(rules, subject, dir);
  const d = dp === undefined ? allow : evaluate(dp, peer, port, scanMatcher(clusterName), new L7DecisionCache());
  return {
    trace: {
      direction: dir, applies, selected: selectedRules(rules, subject, dir), enforced: dp?.enforcing ?? false,
      decision: d.kind, reason: d.kind === 'drop' ? d.reason : undefined, by: [...(d.by ?? [])],
    },
    decision: d,
  };
}

/** One direction of a trace and the decision it yields. */
export interface SideTrace {
  readonly trace: DirectionTrace;
  readonly decision: PortDecision;
}

/** Both directions' decisions for (source, destination, port), before any HTTP request is judged. */
export interface Sides {
  readonly rules: number;
  /** `--allow-localhost always` lets a `reserved:host` source through before any policy. */
  readonly hostAllowed: boolean;
  readonly egress: SideTrace;
  readonly ingress: SideTrace;
}

/** The per-direction procedure of trace() (and of `policy replay`). `state` must be buildPolicyState's. */
export function traceSides(state: PolicyState, srcEnd: TraceEnd, dstEnd: TraceEnd, port: number): Sides {
  if (!(state instanceof CompiledPolicyState)) throw new TraceError('policy trace needs a state built by buildPolicyState');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TraceError(`--dport must be 0..65535, not ${port}`);
  const { rules, allowLocalhostAlways } = state.traceContext();
  const peer = (e: TraceEnd): PeerIdentity => {
    const known = e.identity === undefined ? undefined : (state.identities.get(e.identity) as (Identity & PeerIdentity) | undefined);
    return known !== undefined && 'labelSet' in known ? known : makeIdentity(0, e.labels);
  };
  const src = peer(srcEnd);
  const dst = peer(dstEnd);
  return {
    rules: rules.length,
    hostAllowed: allowLocalhostAlways && srcEnd.labels.length === 1 && srcEnd.labels[0] === 'reserved:host',
    egress: directionTrace(rules, src, dst, port, 'EGRESS', state.clusterName, srcEnd.isPod),
    ingress: directionTrace(rules, dst, src, port, 'INGRESS', state.clusterName, true),
  };
}

/** The trace itself. `state` must be the policy layer's own state (buildPolicyState). */
export function trace(state: PolicyState, q: TraceQuery): TraceResult {
  const sides = traceSides(state, q.src, q.dst, q.port);
  const base = { revision: state.revision, src: q.src, dst: q.dst, port: q.port, protocol: 'TCP' as const, rules: sides.rules, http: q.http };
  const eg = sides.egress;
  const ing = sides.ingress;
  const result = (v: Pick<TraceResult, 'verdict' | 'layer' | 'direction' | 'reason' | 'l7Pending' | 'by'>, allowLocalhost = false): TraceResult => ({
    ...base, allowLocalhost, egress: eg.trace, ingress: ing.trace, ...v,
  });
  if (sides.hostAllowed) {
    return result({ verdict: 'ALLOWED', layer: undefined, direction: undefined, reason: undefined, l7Pending: false, by: [] }, true);
  }
  for (const side of [eg, ing]) {
    const d = side.decision;
    if (d.kind === 'drop') return result({ verdict: 'DENIED', layer: 'L3/L4', direction: side.trace.direction, reason: d.reason, l7Pending: false, by: [...(d.by ?? [])] });
  }
  const l7 = [eg, ing].filter((s) => s.decision.kind === 'l7');
  if (l7.length > 0 && q.http === undefined) {
    return result({ verdict: 'ALLOWED', layer: undefined, direction: undefined, reason: undefined, l7Pending: true, by: l7.flatMap((s) => s.trace.by) });
  }
  const req: L7Request | undefined = q.http && { method: q.http.method, path: q.http.path, host: q.http.host, headers: q.http.headers };
  for (const side of l7) {
    const d = side.decision as Extract<PortDecision, { kind: 'l7' }>;
    if (!d.check(req as L7Request).allowed) {
      return result({ verdict: 'DENIED', layer: 'L7', direction: side.trace.direction, reason: 'L7_DENIED', l7Pending: false, by: side.trace.by });
    }
  }
  return result({ verdict: 'ALLOWED', layer: undefined, direction: undefined, reason: undefined, l7Pending: false, by: [...eg.trace.by, ...ing.trace.by] });
}

/** `Name: value` -> the header list L7Request takes. */
export function headerList(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i <= 0) throw new TraceError(`--http-header must be "Name: value", not ${JSON.stringify(l)}`);
    out.push(l.slice(0, i).trim(), l.slice(i + 1).trim());
  }
  return out;
}

/** The trace's inputs as the CLI flags and the admin query string name them. */
export interface TraceOptions {
  readonly srcLabels?: readonly string[] | undefined;
  readonly srcPod?: string | undefined;
  readonly dstLabels?: readonly string[] | undefined;
  readonly dstPod?: string | undefined;
  readonly dport: string | undefined;
  readonly httpMethod?: string | undefined;
  readonly httpPath?: string | undefined;
  readonly httpHost?: string | undefined;
  readonly httpHeaders?: readonly string[] | undefined;
}

/** Resolves options against a state; TraceError on anything missing, ambiguous or unknown. */
export function traceQuery(state: PolicyState, o: TraceOptions): TraceQuery {
  const end = (side: 'src' | 'dst', labels: readonly string[] | undefined, pod: string | undefined): TraceEnd => {
    const hasLabels = labels !== undefined && labels.length > 0;
    if (hasLabels === (pod !== undefined)) throw new TraceError(`give exactly one of --${side}-labels and --${side}-pod`);
    return pod !== undefined ? endFromPod(state, pod) : endFromLabels(state, labels as readonly string[]);
  };
  if (o.dport === undefined || !/^\d{1,5}(\/tcp)?$/i.test(o.dport)) throw new TraceError('--dport PORT is required (an HTTP port: 80 or 80/TCP)');
  const port = Number(o.dport.split('/')[0]);
  const wantsHttp = o.httpMethod !== undefined || o.httpPath !== undefined || o.httpHost !== undefined || (o.httpHeaders?.length ?? 0) > 0;
  return {
    src: end('src', o.srcLabels, o.srcPod),
    dst: end('dst', o.dstLabels, o.dstPod),
    port,
    http: wantsHttp ? { method: o.httpMethod ?? 'GET', path: o.httpPath ?? '/', host: o.httpHost, headers: headerList(o.httpHeaders ?? []) } : undefined,
  };
}

/** `policy trace --dst-service`: one trace per backend pod of the Service port. */
export interface ServiceTraceResult {
  /** `namespace/name`. */
  readonly service: string;
  readonly servicePort: number;
  /** Every backend, in the Service's order: any of them may receive a connection to the Service. */
  readonly backends: readonly { readonly pod: string; readonly ip: string; readonly port: number; readonly trace: TraceResult }[];
}

/**
 * Resolves `o.dstService` (`NAMESPACE/NAME`, or `NAME` in default) to the backends of its port
 * `o.dport` (the Service port; each backend is traced at its target port, where the policy applies)
 * and traces to each. Every backend, not the one a balancer would pick: the pick varies by
 * connection, and a verdict that differs between backends (their labels differ) is what to see.
 */
export function traceService(state: PolicyState, o: TraceOptions & { readonly dstService: string }): ServiceTraceResult {
  if ((o.dstLabels?.length ?? 0) > 0 || o.dstPod !== undefined) throw new TraceError('give one of --dst-labels, --dst-pod and --dst-service');
  const m = /^(?:([^/]+)\/)?([^/]+)$/.exec(o.dstService);
  if (m === null) throw new TraceError(`service must be NAMESPACE/NAME, not ${JSON.stringify(o.dstService)}`);
  const name = `${m[1] ?? 'default'}/${m[2]}`;
  const svc = state.services.find((s) => s.namespace === (m[1] ?? 'default') && s.name === m[2]);
  if (svc === undefined) throw new TraceError(`service ${name} is not a known Service`);
  if (o.dport === undefined || !/^\d{1,5}(\/tcp)?$/i.test(o.dport)) throw new TraceError('--dport PORT is required (the Service port: 80 or 80/TCP)');
  const port = Number(o.dport.split('/')[0]);
  const sp = svc.ports.find((p) => p.port === port && p.protocol === 'TCP');
  if (sp === undefined) throw new TraceError(`service ${name} has no TCP port ${port} (its ports: ${svc.ports.map((p) => `${p.port}/${p.protocol}`).join(', ') || 'none'})`);
  const backends = serviceBackends(svc, sp);
  if (backends.length === 0) throw new TraceError(`service ${name} has no backend for port ${port}: it selects no running pod with an IP`);
  return {
    service: name,
    servicePort: port,
    backends: backends.map((b) => {
      const pod = `${b.endpoint.namespace}/${b.endpoint.name}`;
      return { pod, ip: b.ip, port: b.port, trace: trace(state, traceQuery(state, { ...o, dstPod: pod, dport: String(b.port) })) };
    }),
  };
}
