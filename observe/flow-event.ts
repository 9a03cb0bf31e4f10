import type { DropReason, Endpoint, Identity, RuleRef } from '../policy/model.js';

/** One peer of a flow, as the proxy saw it. */
export interface FlowPeer {
  readonly ip: string;
  readonly port: number;
  readonly identity: Identity;
  /** Known pod, if any. */
  readonly endpoint: Endpoint | undefined;
  /** Service the request was addressed to (destination side only). */
  readonly service?: { readonly namespace: string; readonly name: string } | undefined;
}

/**
 * A decision, as emitted by the proxy. observe/ turns it into Hubble's flow.Flow JSON and the
 * compact text form. The proxy builds this only when a sink is listening.
 */
export interface FlowEvent {
  /** Wall clock, ms since epoch (Date.now()). */
  readonly timeMs: number;
  /**
   * 'http-request'  : L7 request record (verdict FORWARDED or DROPPED = L7 403)
   * 'http-response' : L7 response record (always FORWARDED unless ERROR), carries code and latency
   * 'drop'          : L3/L4 policy drop (no HTTP bytes were sent), or a proxy-level drop (unresolvable, no backend);
   *                   with verdict AUDIT, a policy drop that audit mode let through (docs/audit.md)
   */
  readonly kind: 'http-request' | 'http-response' | 'drop';
  /**
   * AUDIT: policy would have denied, audit mode forwarded ('drop' and 'http-request'); or, with
   * `staged`, what a staged policy would have decided differently ('http-request').
   */
  readonly verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT';
  /** For 'drop': Hubble drop_reason_desc; POLICY_DENIED / POLICY_DENY for policy, others for proxy-level drops. */
  readonly dropReason?: DropReason | 'UNKNOWN_L3_TARGET_ADDRESS' | 'NO_SERVICE' | 'INVALID_PACKET_DROPPED' | undefined;
  readonly direction: 'INGRESS' | 'EGRESS';
  readonly source: FlowPeer;
  readonly destination: FlowPeer;
  readonly http?: {
    readonly method: string;
    /** Full URL: "http://<Host><path?query>". */
    readonly url: string;
    readonly protocol: 'HTTP/1.0' | 'HTTP/1.1';
    /** Response status (http-response only). */
    readonly code?: number | undefined;
    /** Request-to-response latency in ns (http-response only). */
    readonly latencyNs?: bigint | undefined;
    readonly headers?: readonly { readonly key: string; readonly value: string }[] | undefined;
  } | undefined;
  /** Policy revision that judged the request. */
  readonly revision: number;
  /**
   * Provenance (the decision's shared `by`): the rules that allowed ('http-request' FORWARDED, and
   * the L3/L4 allow under it) or denied ('drop' POLICY_DENY, L7 DROPPED) it. Absent or empty on a
   * POLICY_DENIED drop: no rule selected this peer.
   */
  readonly by?: readonly RuleRef[] | undefined;
  readonly nodeName: string;
  /**
   * A staged policy's verdict (`l7guard.io/mode: audit`), not the one enforced: 'deny' = it would
   * deny what was allowed (`by` in *_denied_by), 'allow' = it would allow what was denied.
   */
  readonly staged?: 'deny' | 'allow' | undefined;
}

/**
 * One decision as the data path hands it over: a flat, mutable record the caller fills in place
 * (one scratch object reused for every request) and the sink copies field by field, so recording
 * a decision allocates nothing. `toFlowEvent` builds the FlowEvent only for whoever needs one
 * (the `--flows` file, a follower, a read of the ring buffer).
 */
export interface FlowRecord {
  timeMs: number;
  kind: FlowEvent['kind'];
  verdict: FlowEvent['verdict'];
  dropReason: FlowEvent['dropReason'];
  direction: FlowEvent['direction'];
  srcIp: string;
  srcPort: number;
  srcIdentity: Identity;
  srcEndpoint: Endpoint | undefined;
  dstIp: string;
  dstPort: number;
  dstIdentity: Identity;
  dstEndpoint: Endpoint | undefined;
  /** HTTP kinds only ('' otherwise). */
  method: string;
  /** The URL is `http://${authority}${path}`. */
  authority: string;
  path: string;
  http10: boolean;
  /** Response status; 0 = none. */
  code: number;
  /** Request-to-response latency in ns; negative = none. */
  latencyNs: number;
  revision: number;
  by: readonly RuleRef[] | undefined;
  nodeName: string;
  staged: FlowEvent['staged'];
}

export function newFlowRecord(): FlowRecord {
  const none: Identity = { id: 0, labels: [] };
  return {
    timeMs: 0, kind: 'drop', verdict: 'DROPPED', dropReason: undefined, direction: 'INGRESS',
    srcIp: '', srcPort: 0, srcIdentity: none, srcEndpoint: undefined,
    dstIp: '', dstPort: 0, dstIdentity: none, dstEndpoint: undefined,
    method: '', authority: '', path: '', http10: false, code: 0, latencyNs: -1,
    revision: 0, by: undefined, nodeName: '', staged: undefined,
  };
}

/** The FlowEvent a record stands for (the same object the proxy used to build per decision). */
export function toFlowEvent(r: FlowRecord): FlowEvent {
  const source: FlowPeer = { ip: r.srcIp, port: r.srcPort, identity: r.srcIdentity, endpoint: r.srcEndpoint };
  const destination: FlowPeer = { ip: r.dstIp, port: r.dstPort, identity: r.dstIdentity, endpoint: r.dstEndpoint };
  if (r.kind === 'drop') {
    return {
      timeMs: r.timeMs, kind: 'drop', verdict: r.verdict, dropReason: r.dropReason, direction: r.direction,
      source, destination, revision: r.revision, nodeName: r.nodeName, by: r.by,
    };
  }
  const response = r.kind === 'http-response';
  return {
    timeMs: r.timeMs, kind: r.kind, verdict: r.verdict, direction: r.direction, source, destination,
    http: {
      method: r.method,
      url: `http://${r.authority}${r.path}`,
      protocol: r.http10 ? 'HTTP/1.0' : 'HTTP/1.1',
      code: response && r.code !== 0 ? r.code : undefined,
      latencyNs: response && r.latencyNs >= 0 ? BigInt(Math.round(r.latencyNs)) : undefined,
    },
    revision: r.revision, nodeName: r.nodeName, by: r.by,
    ...(r.staged === undefined ? {} : { staged: r.staged }),
  };
}
