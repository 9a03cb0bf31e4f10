/**
 * What the data path is built with (proxy.ts, the workers and the TLS listeners construct it) and
 * what it reports to. Its own module so the exchange's files can share it without importing the
 * entry point that imports them (request-handler.ts re-exports it unchanged).
 */
import type { Backend } from '../../policy/model.js';
import type { FlowEvent, FlowRecord } from '../../observe/flow-event.js';
import type { Balancer } from '../upstream/balancer.js';
import type { StateRef } from '../state-ref.js';
import type { SelfGuard } from '../listen/self-guard.js';
import type { UpstreamClient } from '../upstream/upstream.js';
import type { OriginalDestination } from '../listen/original-destination.js';
import type { OutlierDetector } from '../upstream/outlier.js';
import type { AuditModes } from './audit-modes.js';

export interface FlowOutput {
  /** False when nobody listens: the handler then records no flow at all. */
  readonly enabled: boolean;
  emit(ev: FlowEvent): void;
  /**
   * Preferred over emit when present: the decision as a flat record the handler reuses (read it
   * synchronously, keep nothing), so no FlowEvent is built unless the receiver needs one.
   */
  record?(r: FlowRecord): void;
}

/** Metrics bumped directly per decision (observe/metrics.ts ProxyMetrics), independent of flows. */
export interface DataPathCounters {
  dropped(reason: FlowEvent['dropReason'], direction?: FlowEvent['direction']): void;
  /** An L3/L4 policy drop that audit mode let through. */
  audited(direction: FlowEvent['direction']): void;
  /** A staged policy would decide a request differently (`policy`: "kind/namespace/name"). */
  staged(policy: string, change: 'deny' | 'allow'): void;
  l7Request(verdict: FlowEvent['verdict']): void;
  /** `code` 0 = none; `latencyNs` negative = unknown. */
  l7Response(method: string, http10: boolean, code: number, latencyNs: number, error: boolean): void;
}

export interface HandlerContext {
  readonly state: StateRef;
  readonly balancer: Balancer;
  readonly upstream: UpstreamClient;
  readonly self: SelfGuard;
  readonly flows: FlowOutput;
  /** Absent: decisions are counted from the emitted flows instead (`--workers`: by the primary). */
  readonly counters?: DataPathCounters | undefined;
  readonly nodeName: string;
  readonly onUpstreamError?: (err: Error, backend: Backend) => void;
  /** Passive outlier ejection (proxy/upstream/outlier.ts); none: every pod is always eligible. */
  readonly outlier?: OutlierDetector;
  /** Set on a `--redirect` listener or in sidecar mode: where the connection was really going. */
  readonly original?: OriginalDestination | undefined;
  /** The requests were decrypted by a `--listen-tls` listener: `x-forwarded-proto: https`. */
  readonly tls?: boolean | undefined;
  /** Policy audit mode, global and per endpoint; absent: every denial is enforced. */
  readonly audit?: AuditModes | undefined;
  /**
   * `serve --server-name` (Envoy's `server_name`): every reply the proxy writes says `server: NAME`
   * and a pod's `server` field is overwritten with it (Envoy's default `server_header_transformation:
   * OVERWRITE`). Absent: the 403 says `server: l7guard`, other local replies carry no `server`, and
   * a pod's passes through.
   */
  readonly serverName?: string | undefined;
}
