/**
 * FlowEvent -> Hubble `observer.GetFlowsResponse` JSON (`{"flow": {...}, "node_name", "time"}`).
 *
 * The shape is protojson with `UseProtoNames: true` over `cilium/cilium:api/v1/flow/flow.proto`
 * (what `hubble observe -o jsonpb` prints and `hubble observe --input-file` reads back):
 *   - keys are the proto field names as written in the .proto (`IP`, `l4`, `TCP`, `Type`, `ID`,
 *     `Summary`, `ipVersion` keep their odd spelling);
 *   - proto3 defaults (0, "", false, empty lists, enum value 0) are omitted; `is_reply` is a
 *     `google.protobuf.BoolValue`, so an explicit `false` IS printed;
 *   - enums as their names; uint64 (`latency_ns`) as a decimal string; Timestamp as RFC 3339 with
 *     0/3/6/9 fractional digits;
 *   - keys appear in declaration order (protojson's `order.IndexOrder`), which keeps diffs against
 *     real Hubble output readable.
 *
 * Field values follow Hubble's own parsers:
 *   - L7: `pkg/hubble/parser/seven/parser.go` (Type L7, event_type 129, is_reply/reply from the
 *     record type, source/destination swapped on responses as in Cilium's access log) and
 *     `seven/http.go` (headers sorted by key, one entry per value; `code` only on responses;
 *     summaries "<proto> <METHOD> <url>" / "<proto> <code> <ms>ms (<METHOD> <url>)"; URL password
 *     replaced by HUBBLE_REDACTED);
 *   - L3/L4 drops: `pkg/hubble/parser/threefour/parser.go` (event_type {1, sub_type: reason},
 *     deprecated `drop_reason` = numeric reason, `drop_reason_desc` = enum name, is_reply absent,
 *     Summary "TCP Flags: SYN"); policy-verdict events (event_type 5, drop_reason = -verdict,
 *     policy_match_type 0 = "none", omitted).
 *
 * FlowEvent convention (observe/flow-event.ts): `source` is always the connection's client and
 * `destination` the server, for requests AND responses; toFlow swaps them for 'http-response'.
 */
import { randomUUID } from 'node:crypto';
import type { Endpoint, Identity, RuleRef } from '../policy/model.js';
import type { FlowEvent, FlowPeer } from './flow-event.js';

// ---------------------------------------------------------------------------------------------
// JSON shape (subset of flow.proto we emit; every key name checked against flow.proto)

export type Verdict = 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
export type TrafficDirection = 'INGRESS' | 'EGRESS';

export interface HubbleWorkload { name: string; kind: string }

export interface HubbleEndpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
  workloads?: HubbleWorkload[];
}

export interface HubbleTCPFlags {
  FIN?: boolean; SYN?: boolean; RST?: boolean; PSH?: boolean; ACK?: boolean;
  URG?: boolean; ECE?: boolean; CWR?: boolean; NS?: boolean;
}

export interface HubbleHTTP {
  code?: number;
  method?: string;
  url?: string;
  protocol?: string;
  headers?: { key: string; value: string }[];
}

export interface HubbleLayer7 {
  type?: 'REQUEST' | 'RESPONSE' | 'SAMPLE';
  /** uint64 as a decimal string (protojson). */
  latency_ns?: string;
  http?: HubbleHTTP;
}

export interface HubbleService { name?: string; namespace?: string }

/** flow.proto `Policy`: a policy that allowed or denied the flow. */
export interface HubblePolicy {
  name?: string;
  namespace?: string;
  labels?: string[];
  /** uint64 as a decimal string (protojson). */
  revision?: string;
  kind?: string;
}

export interface HubbleFlow {
  time?: string;
  uuid?: string;
  verdict?: Verdict;
  /** Deprecated numeric twin of drop_reason_desc; Hubble still fills it. */
  drop_reason?: number;
  IP?: { source?: string; destination?: string; ipVersion?: 'IPv4' | 'IPv6' };
  l4?: { TCP?: { source_port?: number; destination_port?: number; flags?: HubbleTCPFlags } };
  source?: HubbleEndpoint;
  destination?: HubbleEndpoint;
  Type?: 'L3_L4' | 'L7' | 'SOCK';
  node_name?: string;
  l7?: HubbleLayer7;
  /** Deprecated twin of is_reply (printed only when true). */
  reply?: boolean;
  event_type?: { type?: number; sub_type?: number };
  source_service?: HubbleService;
  destination_service?: HubbleService;
  traffic_direction?: TrafficDirection;
  policy_match_type?: number;
  drop_reason_desc?: string;
  is_reply?: boolean;
  egress_allowed_by?: HubblePolicy[];
  ingress_allowed_by?: HubblePolicy[];
  egress_denied_by?: HubblePolicy[];
  ingress_denied_by?: HubblePolicy[];
  Summary?: string;
  /**
   * Not in flow.proto: the verdict of a staged policy (`l7guard.io/mode: audit`, docs/audit.md),
   * printed only on those flows, whose verdict is AUDIT; enforcement was unaffected.
   */
  staged?: boolean;
}

export interface HubbleFlowResponse {
  flow: HubbleFlow;
  node_name: string;
  time: string;
}

export interface FlowOptions {
  /** Fills Endpoint.cluster_name for pod endpoints (PolicyState.clusterName). */
  readonly clusterName?: string | undefined;
  /** UUID source; tests inject a deterministic one. Default crypto.randomUUID. */
  readonly uuid?: (() => string) | undefined;
}

// ---------------------------------------------------------------------------------------------
// Constants from Cilium

/** pkg/monitor/api/types.go MessageType*. */
export const MESSAGE_TYPE_DROP = 1;
export const MESSAGE_TYPE_POLICY_VERDICT = 5;
export const MESSAGE_TYPE_ACCESS_LOG = 129;

/**
 * Drop reasons we can emit: flow.proto `enum DropReason` name -> number, with the monitor text of
 * pkg/monitor/api/drop.go (what the compact printer shows as the event type).
 */
export const DROP_REASONS: Readonly<Record<string, { readonly code: number; readonly text: string }>> = Object.freeze({
  POLICY_DENIED: { code: 133, text: 'Policy denied' },
  INVALID_PACKET_DROPPED: { code: 134, text: 'Invalid packet' },
  UNKNOWN_L3_TARGET_ADDRESS: { code: 150, text: 'Unknown L3 target address' },
  SERVICE_BACKEND_NOT_FOUND: { code: 158, text: 'Service backend not found' },
  POLICY_DENY: { code: 181, text: 'Policy denied by denylist' },
});

/**
 * FlowEvent.dropReason -> flow.proto DropReason name. 'NO_SERVICE' is the name of the BPF constant
 * (DROP_NO_SERVICE = -158); flow.proto calls 158 SERVICE_BACKEND_NOT_FOUND, and protojson only
 * accepts the proto's enum names.
 */
function dropReasonName(r: FlowEvent['dropReason']): string {
  if (r === undefined) return 'POLICY_DENIED';
  return r === 'NO_SERVICE' ? 'SERVICE_BACKEND_NOT_FOUND' : r;
}

// ---------------------------------------------------------------------------------------------
// Time

/**
 * protojson Timestamp: RFC 3339 in UTC, fractional part of 0, 3, 6 or 9 digits (we only have ms,
 * and protojson drops an all-zero fraction). The "YYYY-MM-DDTHH:MM:SS" part is cached per second:
 * Date#toISOString costs ~0.7 us here, a third of toFlow.
 */
let lastSec = Number.NaN;
let lastSecText = '';
export function rfc3339(timeMs: number): string {
  const ms = Math.floor(timeMs);
  const sec = Math.floor(ms / 1000);
  if (sec !== lastSec) {
    lastSecText = new Date(sec * 1000).toISOString().slice(0, 19);
    lastSec = sec;
  }
  const frac = ms - sec * 1000;
  if (frac === 0) return lastSecText + 'Z';
  return lastSecText + (frac < 10 ? '.00' : frac < 100 ? '.0' : '.') + frac + 'Z';
}

// ---------------------------------------------------------------------------------------------
// Endpoints (cached: Endpoint/Identity objects are immutable per PolicyState)

const podEndpointCache = new WeakMap<Endpoint, WeakMap<Identity, Map<string, HubbleEndpoint>>>();
const identityEndpointCache = new WeakMap<Identity, HubbleEndpoint>();

/**
 * Hubble's Endpoint for a peer. Pods: ID, identity, cluster_name, namespace, identity labels
 * (already sorted per the model contract), pod_name, workloads (only for owned pods; Hubble's
 * GetWorkloadMetaFromPod reports nothing for a bare Pod). Endpoint-less peers (world, host, CIDR):
 * identity + its labels only, as threefour's resolveEndpoint does for remote IPs.
 * The returned object is shared: callers must not mutate it.
 */
export function toHubbleEndpoint(peer: FlowPeer, clusterName: string | undefined): HubbleEndpoint {
  const ep = peer.endpoint;
  const id = peer.identity;
  if (ep === undefined) {
    let cached = identityEndpointCache.get(id);
    if (cached === undefined) {
      cached = {};
      if (id.id !== 0) cached.identity = id.id;
      if (id.labels.length > 0) cached.labels = [...id.labels];
      identityEndpointCache.set(id, cached);
    }
    return cached;
  }
  let byId = podEndpointCache.get(ep);
  if (byId === undefined) { byId = new WeakMap(); podEndpointCache.set(ep, byId); }
  let byCluster = byId.get(id);
  if (byCluster === undefined) { byCluster = new Map(); byId.set(id, byCluster); }
  const key = clusterName ?? '';
  let out = byCluster.get(key);
  if (out === undefined) {
    out = {};
    if (ep.id !== 0) out.ID = ep.id;
    if (id.id !== 0) out.identity = id.id;
    if (key !== '') out.cluster_name = key;
    if (ep.namespace !== '') out.namespace = ep.namespace;
    if (id.labels.length > 0) out.labels = [...id.labels];
    if (ep.name !== '') out.pod_name = ep.name;
    if (ep.workload !== undefined && ep.workload.kind !== 'Pod') {
      out.workloads = [{ name: ep.workload.name, kind: ep.workload.kind }];
    }
    byCluster.set(key, out);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP details

/**
 * Go's textproto.CanonicalMIMEHeaderKey, which http.Header.Add applies when the agent turns
 * Envoy's header list into the LogRecord: "x-request-id" -> "X-Request-Id"; a key holding a
 * non-token byte (":authority", spaces) is returned unchanged.
 */
export function canonicalHeaderKey(key: string): string {
  let upper = true;
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (!isTokenChar(c)) return key;
    let ch = key[i] as string;
    if (upper && c >= 0x61 && c <= 0x7a) ch = String.fromCharCode(c - 32);
    else if (!upper && c >= 0x41 && c <= 0x5a) ch = String.fromCharCode(c + 32);
    out += ch;
    upper = c === 0x2d; // '-'
  }
  return out;
}

function isTokenChar(c: number): boolean {
  // RFC 7230 tchar
  if (c >= 0x30 && c <= 0x39) return true;
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

/** seven/http.go: keys sorted (byte order), values of one key keep their order. */
function hubbleHeaders(headers: readonly { readonly key: string; readonly value: string }[]): { key: string; value: string }[] {
  const out = headers.map((h, i) => ({ key: canonicalHeaderKey(h.key), value: h.value, i }));
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
  return out.map((h) => ({ key: h.key, value: h.value }));
}

/** seven/http.go: a URL password never reaches the flow. */
export function redactUrlPassword(url: string): string {
  const at = url.indexOf('@');
  if (at < 0) return url;
  const scheme = url.indexOf('://');
  if (scheme < 0 || scheme > at) return url;
  const userinfo = url.slice(scheme + 3, at);
  if (userinfo.includes('/')) return url; // '@' is in the path, not the authority
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return url.slice(0, scheme + 3) + userinfo.slice(0, colon) + ':HUBBLE_REDACTED' + url.slice(at);
}

// ---------------------------------------------------------------------------------------------
// Policy provenance (cached per decision's shared `by` array and revision)

/**
 * Hubble's Policy for a rule: the labels Cilium derives for a policy object
 * (`io.cilium.k8s.policy.derived-from/name/namespace`, sorted) and `kind` = derived-from, as
 * Hubble's policy correlation fills them.
 */
export function toHubblePolicy(ref: RuleRef, revision: number): HubblePolicy {
  const labels = [`k8s:io.cilium.k8s.policy.derived-from=${ref.kind}`, `k8s:io.cilium.k8s.policy.name=${ref.name}`];
  if (ref.namespace !== undefined) labels.push(`k8s:io.cilium.k8s.policy.namespace=${ref.namespace}`);
  const p: HubblePolicy = { name: ref.name };
  if (ref.namespace !== undefined) p.namespace = ref.namespace;
  p.labels = labels.sort();
  if (revision !== 0) p.revision = String(revision);
  p.kind = ref.kind;
  return p;
}

interface PolicySides { revision: number; INGRESS: HubblePolicy[] | undefined; EGRESS: HubblePolicy[] | undefined }
const policyCache = new WeakMap<readonly RuleRef[], PolicySides>();

function policySides(by: readonly RuleRef[], revision: number): PolicySides {
  let c = policyCache.get(by);
  if (c === undefined || c.revision !== revision) {
    // One Policy per object even when several of its rules took part (Hubble lists policies).
    const sides: { INGRESS: Map<string, HubblePolicy>; EGRESS: Map<string, HubblePolicy> } = { INGRESS: new Map(), EGRESS: new Map() };
    for (const r of by) {
      const key = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
      if (!sides[r.direction].has(key)) sides[r.direction].set(key, toHubblePolicy(r, revision));
    }
    const list = (m: Map<string, HubblePolicy>) => (m.size === 0 ? undefined : [...m.values()]);
    c = { revision, INGRESS: list(sides.INGRESS), EGRESS: list(sides.EGRESS) };
    policyCache.set(by, c);
  }
  return c;
}

/** Sets `*_allowed_by` / `*_denied_by` from the event's provenance. */
function addPolicies(f: HubbleFlow, ev: FlowEvent, denied: boolean): void {
  if (ev.by === undefined || ev.by.length === 0) return;
  const s = policySides(ev.by, ev.revision);
  if (denied) {
    if (s.EGRESS !== undefined) f.egress_denied_by = s.EGRESS;
    if (s.INGRESS !== undefined) f.ingress_denied_by = s.INGRESS;
  } else {
    if (s.EGRESS !== undefined) f.egress_allowed_by = s.EGRESS;
    if (s.INGRESS !== undefined) f.ingress_allowed_by = s.INGRESS;
  }
}

// ---------------------------------------------------------------------------------------------
// Flows

function ipVersion(ip: string): 'IPv4' | 'IPv6' {
  return ip.includes(':') && !ip.startsWith('::ffff:') ? 'IPv6' : 'IPv4';
}

/** IPv4-mapped IPv6 ("::ffff:10.0.0.1", what a dual-stack socket reports) as Hubble would: IPv4. */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function service(peer: FlowPeer): HubbleService | undefined {
  const s = peer.service;
  return s === undefined ? undefined : { name: s.name, namespace: s.namespace };
}

function l7Flow(ev: FlowEvent, opts: FlowOptions | undefined): HubbleFlow {
  const isResponse = ev.kind === 'http-response';
  // Cilium's access log records a response from the responder's side (monitor:
  // "Response http to <client> from <server>, identity <server>-><client>").
  const src = isResponse ? ev.destination : ev.source;
  const dst = isResponse ? ev.source : ev.destination;
  const srcIp = plainIp(src.ip);
  const dstIp = plainIp(dst.ip);
  const http = ev.http;
  const f: HubbleFlow = {
    time: rfc3339(ev.timeMs),
    uuid: (opts?.uuid ?? randomUUID)(),
    verdict: ev.verdict,
    IP: { source: srcIp, destination: dstIp, ipVersion: ipVersion(srcIp) },
    l4: { TCP: { source_port: src.port, destination_port: dst.port } },
    source: toHubbleEndpoint(src, opts?.clusterName),
    destination: toHubbleEndpoint(dst, opts?.clusterName),
    Type: 'L7',
    node_name: ev.nodeName,
    l7: { type: isResponse ? 'RESPONSE' : 'REQUEST' },
  };
  if (isResponse) f.reply = true;
  f.event_type = { type: MESSAGE_TYPE_ACCESS_LOG };
  const ss = service(src);
  const ds = service(dst);
  if (ss !== undefined) f.source_service = ss;
  if (ds !== undefined) f.destination_service = ds;
  f.traffic_direction = ev.direction;
  f.is_reply = isResponse;
  // An AUDIT request would have been denied (audit mode), unless a staged policy would allow it.
  if (!isResponse) addPolicies(f, ev, ev.staged === undefined ? ev.verdict !== 'FORWARDED' : ev.staged === 'deny');

  const l7 = f.l7 as HubbleLayer7;
  let latencyMs = 0n;
  if (isResponse && http?.latencyNs !== undefined && http.latencyNs > 0n) {
    l7.latency_ns = http.latencyNs.toString();
    latencyMs = http.latencyNs / 1_000_000n;
  }
  if (http !== undefined) {
    const h: HubbleHTTP = {};
    if (isResponse && http.code !== undefined && http.code !== 0) h.code = http.code;
    if (http.method !== '') h.method = http.method;
    const url = redactUrlPassword(http.url);
    if (url !== '') h.url = url;
    h.protocol = http.protocol;
    if (http.headers !== undefined && http.headers.length > 0) h.headers = hubbleHeaders(http.headers);
    l7.http = h;
    f.Summary = isResponse
      ? `${http.protocol} ${http.code ?? 0} ${latencyMs}ms (${http.method} ${url})`
      : `${http.protocol} ${http.method} ${url}`;
  }
  if (ev.staged !== undefined) f.staged = true;
  return f;
}

/** threefour/parser.go getTCPFlags order: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS. */
const TCP_FLAG_ORDER = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'] as const;

export function tcpFlagsSummary(flags: HubbleTCPFlags): string {
  const on: string[] = [];
  for (const k of TCP_FLAG_ORDER) if (flags[k] === true) on.push(k);
  return 'TCP Flags: ' + on.join(', ');
}

/**
 * A policy drop that audit mode let through (verdict AUDIT) is one policy-verdict event and no drop
 * notification (audit mode "allow[s] all traffic while logging all connections that would otherwise
 * be dropped", docs.cilium.io security/policy-creation): threefour/parser.go decodeVerdict reads the
 * audited verdict notification as AUDIT, decodeDropReason gives no reason (the verdict is not
 * negative), decodeIsReply an explicit false as for any verdict >= 0; pkg/policy/correlation names
 * policies only on FORWARDED, REDIRECTED and POLICY_DENY verdicts, so no *_denied_by on it (the
 * request's L7 record, verdict AUDIT too, names the rules).
 */
function l34Flow(ev: FlowEvent, opts: FlowOptions | undefined, eventType: number): HubbleFlow {
  const audited = ev.verdict === 'AUDIT';
  const name = dropReasonName(ev.dropReason);
  const reason = DROP_REASONS[name];
  const code = audited ? 0 : (reason?.code ?? 0);
  const policy = audited || name === 'POLICY_DENIED' || name === 'POLICY_DENY';
  // A policy drop is the datapath refusing the SYN; the proxy-level drops (unresolvable
  // authority, no backend) happen on the request's data segment.
  const flags: HubbleTCPFlags = policy ? { SYN: true } : { PSH: true, ACK: true };
  const srcIp = plainIp(ev.source.ip);
  const dstIp = plainIp(ev.destination.ip);
  const f: HubbleFlow = {
    time: rfc3339(ev.timeMs),
    uuid: (opts?.uuid ?? randomUUID)(),
    verdict: audited ? 'AUDIT' : 'DROPPED',
  };
  if (code !== 0) f.drop_reason = code;
  f.IP = { source: srcIp, destination: dstIp, ipVersion: ipVersion(srcIp) };
  f.l4 = { TCP: { source_port: ev.source.port, destination_port: ev.destination.port, flags } };
  f.source = toHubbleEndpoint(ev.source, opts?.clusterName);
  f.destination = toHubbleEndpoint(ev.destination, opts?.clusterName);
  f.Type = 'L3_L4';
  f.node_name = ev.nodeName;
  // Drop notify: sub_type = drop reason. Policy verdict notify: sub_type 0 (omitted).
  f.event_type = eventType === MESSAGE_TYPE_DROP && code !== 0 ? { type: eventType, sub_type: code } : { type: eventType };
  const ds = service(ev.destination);
  if (ds !== undefined) f.destination_service = ds;
  f.traffic_direction = ev.direction;
  if (code !== 0) f.drop_reason_desc = name;
  if (audited) f.is_reply = false;
  // Hubble correlates policies on policy-verdict events only.
  else if (eventType === MESSAGE_TYPE_POLICY_VERDICT) addPolicies(f, ev, true);
  f.Summary = tcpFlagsSummary(flags);
  return f;
}

function wrap(flow: HubbleFlow, ev: FlowEvent): HubbleFlowResponse {
  return { flow, node_name: ev.nodeName, time: flow.time as string };
}

/**
 * The primary flow for an event: the L7 record for 'http-request'/'http-response', the
 * L3_L4 drop notification (event_type 1) for 'drop'.
 */
export function toFlow(ev: FlowEvent, opts?: FlowOptions): HubbleFlowResponse {
  if (ev.kind === 'drop') return wrap(l34Flow(ev, opts, ev.verdict === 'AUDIT' ? MESSAGE_TYPE_POLICY_VERDICT : MESSAGE_TYPE_DROP), ev);
  return wrap(l7Flow(ev, opts), ev);
}

/**
 * Everything Hubble shows for an event, in Hubble's order. A policy drop yields the
 * policy-verdict event (event_type 5, printed "policy-verdict:none INGRESS DENIED") followed by
 * the drop notification ("Policy denied DROPPED"), as `hubble observe` prints them
 * (docs/semantics.md#flows); anything else yields
 * [toFlow(ev)].
 */
export function toFlows(ev: FlowEvent, opts?: FlowOptions): HubbleFlowResponse[] {
  if (ev.kind === 'drop' && ev.verdict !== 'AUDIT') {
    const name = dropReasonName(ev.dropReason);
    if (name === 'POLICY_DENIED' || name === 'POLICY_DENY') {
      return [wrap(l34Flow(ev, opts, MESSAGE_TYPE_POLICY_VERDICT), ev), wrap(l34Flow(ev, opts, MESSAGE_TYPE_DROP), ev)];
    }
  }
  return [toFlow(ev, opts)];
}

/** How many flows toFlows(ev) yields (2 for a policy drop: policy-verdict + drop), without building them. */
export function flowCount(ev: { readonly kind: FlowEvent['kind']; readonly verdict: FlowEvent['verdict']; readonly dropReason?: FlowEvent['dropReason'] }): 1 | 2 {
  if (ev.kind !== 'drop' || ev.verdict === 'AUDIT') return 1;
  const name = dropReasonName(ev.dropReason);
  return name === 'POLICY_DENIED' || name === 'POLICY_DENY' ? 2 : 1;
}

/** toFlows(ev)[index], building only that one (the ring buffer converts each slot on read). */
export function toFlowAt(ev: FlowEvent, index: number, opts?: FlowOptions): HubbleFlowResponse {
  if (flowCount(ev) === 2) return wrap(l34Flow(ev, opts, index === 0 ? MESSAGE_TYPE_POLICY_VERDICT : MESSAGE_TYPE_DROP), ev);
  return toFlow(ev, opts);
}
