/**
 * `hubble observe` filter flags -> one predicate over flow responses, with Hubble's combination rules
 * (cilium/cilium:hubble/cmd/observe/flows_filter.go, `hubble observe --help`):
 *   - the same flag repeated is OR (`--verdict DROPPED --verdict ERROR`);
 *   - different flags are AND;
 *   - the either-side flags (`--pod`, `--namespace`, `--label`, `--identity`, `--ip`, `--port`)
 *     build two filters, one on the source and one on the destination side, that are ORed — and
 *     all either-side flags land on the same side of each (so `--pod a --label x` means "a with x on
 *     one side"), while `--from-*` / `--to-*` flags are ANDed into both.
 *   - `--pod [ns/]prefix`: pod-name prefix in that namespace, "default" when none is given (unless
 *     `--namespace` is set); `--namespace ns` alone: any pod of ns.
 *   - `--label`: Kubernetes selector syntax (`k=v`, `k!=v`, `k`, `!k`, comma = AND) over Cilium
 *     labels; a key without a source ("org") matches any source, `k8s:org` only that one.
 *   - `--http-path`: RE2-style regex, unanchored (Go's MatchString); `--http-status`: "200" or a
 *     prefix "5+"/"40+"; `--http-method`: case-insensitive.
 * Pure: no I/O, no clock (relative --since/--until are resolved by the caller).
 */
import { BlockList, isIP } from 'node:net';
import { RE2JS } from 're2js';
import type { HubbleEndpoint, HubbleFlowResponse } from './flow.js';

export interface FilterOptions {
  verdict?: readonly string[];
  type?: readonly string[];
  pod?: readonly string[];
  fromPod?: readonly string[];
  toPod?: readonly string[];
  namespace?: readonly string[];
  fromNamespace?: readonly string[];
  toNamespace?: readonly string[];
  label?: readonly string[];
  fromLabel?: readonly string[];
  toLabel?: readonly string[];
  identity?: readonly string[];
  fromIdentity?: readonly string[];
  toIdentity?: readonly string[];
  ip?: readonly string[];
  fromIp?: readonly string[];
  toIp?: readonly string[];
  port?: readonly string[];
  fromPort?: readonly string[];
  toPort?: readonly string[];
  httpMethod?: readonly string[];
  httpPath?: readonly string[];
  httpStatus?: readonly string[];
  /** Inclusive bounds, ms since epoch. */
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
}

export type FlowPredicate = (res: HubbleFlowResponse) => boolean;

export class FilterError extends Error {
  readonly code = 'L7G_ERR_OBSERVE_FILTER';
}

type EndpointTest = (ep: HubbleEndpoint | undefined, ip: string | undefined, port: number | undefined) => boolean;
type Side = 'source' | 'destination';

const TYPES: Readonly<Record<string, number>> = { drop: 1, trace: 4, 'policy-verdict': 5, l7: 129 };
const VERDICTS = new Set(['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR', 'TRACED', 'TRANSLATED']);

/** OR over the values of one flag; an absent/empty flag is no constraint (undefined). */
function anyOf<T>(values: readonly string[] | undefined, compile: (v: string) => (x: T) => boolean): ((x: T) => boolean) | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const tests = values.map(compile);
  return (x) => tests.some((f) => f(x));
}

function podTest(spec: string, namespaceFlag: readonly string[] | undefined): (ep: HubbleEndpoint | undefined) => boolean {
  const slash = spec.indexOf('/');
  const namespaces = slash >= 0 ? [spec.slice(0, slash)] : namespaceFlag?.length ? [...namespaceFlag] : ['default'];
  const prefix = slash >= 0 ? spec.slice(slash + 1) : spec;
  return (ep) => ep !== undefined && namespaces.includes(ep.namespace ?? '') && (ep.pod_name ?? '').startsWith(prefix) && (prefix === '' || ep.pod_name !== undefined);
}

function namespaceTest(ns: string): (ep: HubbleEndpoint | undefined) => boolean {
  return (ep) => ep?.namespace === ns;
}

/** One Kubernetes-style selector over Cilium "source:key=value" labels. */
export function labelSelector(sel: string): (labels: readonly string[]) => boolean {
  const reqs = sel.split(',').map((r) => r.trim()).filter((r) => r !== '').map((r) => {
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(.*)$/.exec(r))) return { key: m[1]!, op: '!=' as const, value: m[2]! };
    if ((m = /^([^!=\s]+)\s*==?\s*(.*)$/.exec(r))) return { key: m[1]!, op: '=' as const, value: m[2]! };
    if ((m = /^!\s*([^!=\s]+)$/.exec(r))) return { key: m[1]!, op: '!' as const, value: '' };
    if (/^[^!=\s]+$/.test(r)) return { key: r, op: 'exists' as const, value: '' };
    throw new FilterError(`invalid label selector ${JSON.stringify(sel)}`);
  });
  if (reqs.length === 0) throw new FilterError(`empty label selector ${JSON.stringify(sel)}`);
  const valueOf = (labels: readonly string[], key: string): string | undefined => {
    // "k8s:org" names one source; "org" matches any source (Cilium's "any:" prefix).
    const sourced = key.includes(':') && !key.startsWith('any:');
    const bare = key.startsWith('any:') ? key.slice(4) : key;
    for (const l of labels) {
      const eq = l.indexOf('=');
      const k = eq < 0 ? l : l.slice(0, eq);
      const v = eq < 0 ? '' : l.slice(eq + 1);
      if (sourced ? k === bare : k.slice(k.indexOf(':') + 1) === bare) return v;
    }
    return undefined;
  };
  return (labels) =>
    reqs.every((q) => {
      const v = valueOf(labels, q.key);
      if (q.op === 'exists') return v !== undefined;
      if (q.op === '!') return v === undefined;
      if (q.op === '=') return v === q.value;
      return v !== q.value;
    });
}

function ipTest(spec: string): (ip: string | undefined) => boolean {
  const slash = spec.indexOf('/');
  const addr = slash >= 0 ? spec.slice(0, slash) : spec;
  const family = isIP(addr);
  if (family === 0) throw new FilterError(`invalid IP or CIDR ${JSON.stringify(spec)}`);
  if (slash < 0) return (ip) => ip === addr;
  const bits = Number(spec.slice(slash + 1));
  const bl = new BlockList();
  try {
    bl.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    throw new FilterError(`invalid CIDR ${JSON.stringify(spec)}`);
  }
  return (ip) => ip !== undefined && isIP(ip) === family && bl.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

function intValue(flag: string, v: string, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > max) throw new FilterError(`invalid ${flag} ${JSON.stringify(v)}`);
  return n;
}

/** Everything one side of a flow must satisfy for a set of per-side flags. */
function sideTest(o: {
  pod?: readonly string[] | undefined; namespace?: readonly string[] | undefined; label?: readonly string[] | undefined;
  identity?: readonly string[] | undefined; ip?: readonly string[] | undefined; port?: readonly string[] | undefined;
}, flag: string): EndpointTest | undefined {
  const tests: EndpointTest[] = [];
  const pod = anyOf<HubbleEndpoint | undefined>(o.pod, (v) => podTest(v, o.namespace));
  if (pod !== undefined) tests.push((ep) => pod(ep));
  else {
    const ns = anyOf<HubbleEndpoint | undefined>(o.namespace, namespaceTest);
    if (ns !== undefined) tests.push((ep) => ns(ep));
  }
  const label = anyOf<readonly string[]>(o.label, labelSelector);
  if (label !== undefined) tests.push((ep) => label(ep?.labels ?? []));
  const identity = anyOf<number | undefined>(o.identity, (v) => {
    const n = intValue(`--${flag}identity`, v, 0xffffffff);
    return (id) => id === n;
  });
  if (identity !== undefined) tests.push((ep) => identity(ep?.identity));
  const ip = anyOf<string | undefined>(o.ip, ipTest);
  if (ip !== undefined) tests.push((_ep, a) => ip(a));
  const port = anyOf<number | undefined>(o.port, (v) => {
    const n = intValue(`--${flag}port`, v, 65535);
    return (p) => p === n;
  });
  if (port !== undefined) tests.push((_ep, _a, p) => port(p));
  if (tests.length === 0) return undefined;
  return (ep, a, p) => tests.every((f) => f(ep, a, p));
}

function sideOf(res: HubbleFlowResponse, side: Side): [HubbleEndpoint | undefined, string | undefined, number | undefined] {
  const f = res.flow;
  const tcp = f.l4?.TCP;
  return side === 'source'
    ? [f.source, f.IP?.source, tcp?.source_port]
    : [f.destination, f.IP?.destination, tcp?.destination_port];
}

function httpStatusTest(spec: string): (code: number | undefined) => boolean {
  const m = /^(\d{1,3})(\+?)$/.exec(spec);
  if (m === null || (m[2] === '' && m[1]!.length !== 3)) throw new FilterError(`invalid --http-status ${JSON.stringify(spec)}: expected e.g. 200, 5+ or 40+`);
  const digits = m[1]!;
  return (code) => code !== undefined && (m[2] === '+' ? String(code).startsWith(digits) : String(code) === digits);
}

/** Compiles the flags into one predicate; throws FilterError on an invalid value. */
export function compileFilters(o: FilterOptions): FlowPredicate {
  const all: FlowPredicate[] = [];

  const verdict = anyOf<string | undefined>(o.verdict, (v) => {
    const up = v.toUpperCase();
    if (!VERDICTS.has(up)) throw new FilterError(`invalid --verdict ${JSON.stringify(v)}: one of ${[...VERDICTS].join(', ')}`);
    return (x) => x === up;
  });
  if (verdict !== undefined) all.push((r) => verdict(r.flow.verdict));

  const type = anyOf<number | undefined>(o.type, (v) => {
    const t = TYPES[v.toLowerCase().split(':')[0]!];
    if (t === undefined) throw new FilterError(`invalid --type ${JSON.stringify(v)}: one of ${Object.keys(TYPES).join(', ')}`);
    return (x) => x === t;
  });
  if (type !== undefined) all.push((r) => type(r.flow.event_type?.type));

  const method = anyOf<string | undefined>(o.httpMethod, (v) => (x) => x !== undefined && x.toUpperCase() === v.toUpperCase());
  if (method !== undefined) all.push((r) => method(r.flow.l7?.http?.method));

  const path = anyOf<string | undefined>(o.httpPath, (v) => {
    let re: RE2JS;
    try {
      re = RE2JS.compile(v);
    } catch (e) {
      throw new FilterError(`invalid --http-path ${JSON.stringify(v)}: ${(e as Error).message}`);
    }
    return (url) => {
      if (url === undefined) return false;
      // Hubble matches the URL's path (with the query), not the scheme and authority.
      const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(url);
      return re.matcher(m === null ? url : url.slice(m[0].length)).find();
    };
  });
  if (path !== undefined) all.push((r) => path(r.flow.l7?.http?.url));

  const status = anyOf<number | undefined>(o.httpStatus, httpStatusTest);
  if (status !== undefined) all.push((r) => status(r.flow.l7?.http?.code));

  if (o.sinceMs !== undefined || o.untilMs !== undefined) {
    const since = o.sinceMs ?? -Infinity;
    const until = o.untilMs ?? Infinity;
    all.push((r) => {
      const t = Date.parse(r.flow.time ?? r.time);
      return t >= since && t <= until;
    });
  }

  const from = sideTest({ pod: o.fromPod, namespace: o.fromNamespace, label: o.fromLabel, identity: o.fromIdentity, ip: o.fromIp, port: o.fromPort }, 'from-');
  const to = sideTest({ pod: o.toPod, namespace: o.toNamespace, label: o.toLabel, identity: o.toIdentity, ip: o.toIp, port: o.toPort }, 'to-');
  if (from !== undefined) all.push((r) => from(...sideOf(r, 'source')));
  if (to !== undefined) all.push((r) => to(...sideOf(r, 'destination')));

  const either = sideTest({ pod: o.pod, namespace: o.namespace, label: o.label, identity: o.identity, ip: o.ip, port: o.port }, '');
  if (either !== undefined) all.push((r) => either(...sideOf(r, 'source')) || either(...sideOf(r, 'destination')));

  return (r) => all.every((f) => f(r));
}

/**
 * `--since/--until` values: RFC 3339 (or anything Date.parse reads), or a duration ago
 * ("30s", "5m", "1h30m", "2d").
 */
export function parseTimeBound(flag: string, v: string, nowMs: number): number {
  const d = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (d !== null && v !== '') {
    const [, days, h, m, s] = d.map((x) => Number(x ?? 0)) as [number, number, number, number, number];
    return nowMs - (((days * 24 + h) * 60 + m) * 60 + s) * 1000;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new FilterError(`invalid ${flag} ${JSON.stringify(v)}: expected RFC 3339 or a duration like 5m`);
  return t;
}
