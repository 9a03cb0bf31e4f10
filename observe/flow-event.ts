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
   * 'drop'          : L3/L4 policy drop (no HTTP bytes were sent), or a proxy-level drop (unresolvable, no backend)
   */
  readonly kind: 'http-request' | 'http-response' | 'drop';
  readonly verdict: 'FORWARDED' | 'DROPPED' | 'ERROR';
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
}
