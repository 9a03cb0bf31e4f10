/**
 * Prometheus metrics for `/metrics` (and Envoy's `/stats/prometheus`), with the names dashboards
 * already use: Hubble's flow, drop and httpV2 metrics (cilium/cilium:pkg/hubble/metrics/{flow,drop,
 * http}/handler.go), Cilium's `cilium_policy_l7_total` (Documentation/observability/metrics.rst,
 * "Policy L7"), and `l7guard_*` where neither has one.
 *
 * Cost model: the data path only bumps plain numbers (`l7Request`/`l7Response`/`dropped` per
 * decision, or `count()` per FlowEvent from a worker: a few Map lookups on the method string and
 * status number, no allocation once a (method, status) pair was seen).
 * prom-client objects are filled from those numbers in their `collect()` at scrape time, so label
 * hashing happens per scrape, not per request (prom-client hashes the label set on every inc()).
 * Nothing is ever labelled by path; methods outside RFC 9110's + PATCH are folded into "OTHER" so a
 * client cannot mint label values.
 */
import { Counter, Gauge, type Metric, Registry } from 'prom-client';
import type { FlowEvent } from './flow-event.js';

/** prometheus.DefBuckets, which Hubble's request-duration histogram uses. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** Front-end timeout error codes (proxy/http1/server-connection.ts) → `timeout` label. */
const TIMEOUT_LABELS: Readonly<Record<string, string>> = {
  L7G_ERR_HEADERS_TIMEOUT: 'header',
  L7G_ERR_CLIENT_BODY_TIMEOUT: 'client_body',
  L7G_ERR_REQUEST_TIMEOUT: 'request',
  L7G_ERR_SEND_TIMEOUT: 'send',
};

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** What the metrics read from the running proxy at scrape time. */
export interface MetricsSources {
  revision(): number;
  connectionsActive(): number;
  /** The reload controller's counters, when one runs. */
  reloads?(): { readonly reloads: number; readonly failures: number };
  /** The flow log writer's counters, when `--flows` is set. */
  flowFile?(): { readonly written: number; readonly dropped: number };
  /** `--kubernetes`: the informers' state and the objects rejected (proxy/sources/kubernetes/). */
  kubernetes?(): KubernetesMetrics;
}

/** What the Kubernetes source reports to /metrics. */
export interface KubernetesMetrics {
  readonly kinds: readonly {
    readonly kind: string;
    readonly fieldSelector: string | undefined;
    readonly connected: boolean;
    readonly synced: boolean;
    readonly lastSync: string | undefined;
    readonly errors: number;
  }[];
  readonly secrets: KubernetesMetrics['kinds'];
  readonly rejected: readonly unknown[];
  readonly rejections: number;
}

interface Histo {
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** flows_processed label sets, indexed by a small integer so counting is an array increment. */
const FLOW_KINDS = [
  { type: 'L7', subtype: 'HTTP', verdict: 'FORWARDED' },
  { type: 'L7', subtype: 'HTTP', verdict: 'DROPPED' },
  { type: 'L7', subtype: 'HTTP', verdict: 'ERROR' },
  { type: 'PolicyVerdict', subtype: '', verdict: 'DROPPED' },
  { type: 'Drop', subtype: '', verdict: 'DROPPED' },
  { type: 'L7', subtype: 'HTTP', verdict: 'AUDIT' },
  { type: 'PolicyVerdict', subtype: '', verdict: 'AUDIT' },
] as const;
const L7_FWD = 0;
const L7_DROP = 1;
const L7_ERR = 2;
const POLICY_VERDICT = 3;
const DROP = 4;
const L7_AUDIT = 5;
const POLICY_AUDIT = 6;

/**
 * hubble_policy_verdicts_total label sets we produce: Hubble's policy handler counts policy-verdict
 * events (pkg/hubble/metrics/policy/handler.go) by direction, match type (ours carry none: "none")
 * and action (the verdict, lower case). Index: direction (0 ingress, 1 egress) * 2 + (0 dropped, 1 audit).
 */
const POLICY_VERDICTS = [
  { direction: 'ingress', match: 'none', action: 'dropped' },
  { direction: 'ingress', match: 'none', action: 'audit' },
  { direction: 'egress', match: 'none', action: 'dropped' },
  { direction: 'egress', match: 'none', action: 'audit' },
] as const;

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #flowKinds = new Float64Array(FLOW_KINDS.length);
  /** hubble_drop_total: "reason\0protocol" -> count (a handful of keys). */
  readonly #drops = new Map<string, number>();
  /** hubble_http_requests_total: method -> protocol -> status -> reporter "server". */
  readonly #requests = new Map<string, Map<string, Map<number, { n: number }>>>();
  readonly #durations = new Map<string, Histo>();
  readonly #l7 = { received: 0, forwarded: 0, denied: 0, parse_errors: 0, audited: 0 };
  readonly #policyVerdicts = new Float64Array(POLICY_VERDICTS.length);
  /** Staged policies' differing verdicts: "kind/namespace/name" -> [would deny, would allow]. */
  readonly #staged = new Map<string, [number, number]>();
  readonly #upstreamErrors = new Map<string, number>();
  readonly #timeouts = new Map<string, number>();

  constructor(sources: MetricsSources) {
    const reg = this.registry;
    // The collect() callbacks run with `this` = the prom-client metric: read our counters via locals.
    const kinds = this.#flowKinds;
    const drops = this.#drops;
    const requests = this.#requests;
    const l7 = this.#l7;
    const upstreamErrors = this.#upstreamErrors;
    const timeouts = this.#timeouts;
    const policyVerdicts = this.#policyVerdicts;
    const staged = this.#staged;
    new Counter({
      name: 'hubble_flows_processed_total', help: 'Total number of flows processed', labelNames: ['type', 'subtype', 'verdict'], registers: [reg],
      collect() {
        this.reset();
        FLOW_KINDS.forEach((k, i) => { if (kinds[i]! > 0) this.inc({ ...k }, kinds[i]); });
      },
    });
    new Counter({
      name: 'hubble_drop_total', help: 'Number of drops', labelNames: ['reason', 'protocol'], registers: [reg],
      collect() {
        this.reset();
        for (const [k, n] of drops) {
          const [reason, protocol] = k.split('\0') as [string, string];
          this.inc({ reason, protocol }, n);
        }
      },
    });
    new Counter({
      name: 'hubble_http_requests_total', help: 'Count of HTTP requests', labelNames: ['method', 'protocol', 'status', 'reporter'], registers: [reg],
      collect() {
        this.reset();
        for (const [method, byProto] of requests) {
          for (const [protocol, byStatus] of byProto) {
            for (const [status, c] of byStatus) this.inc({ method, protocol, status: String(status), reporter: 'server' }, c.n);
          }
        }
      },
    });
    // Registry reads only name/help/type/get() (prom-client lib/registry.js getMetricsAsString).
    reg.registerMetric(durationHistogram(this.#durations) as unknown as Metric);
    new Counter({
      name: 'cilium_policy_l7_total', help: 'Number of total proxy requests handled', labelNames: ['rule', 'proxy_type'], registers: [reg],
      collect() {
        this.reset();
        for (const rule of ['received', 'forwarded', 'denied', 'parse_errors'] as const) this.inc({ rule, proxy_type: 'http' }, l7[rule]);
        // Audit mode's requests: forwarded, but neither "forwarded" (policy allowed) nor "denied".
        if (l7.audited > 0) this.inc({ rule: 'audited', proxy_type: 'http' }, l7.audited);
      },
    });
    new Counter({
      name: 'hubble_policy_verdicts_total', help: 'Total number of Cilium network policy verdicts', labelNames: ['direction', 'match', 'action'], registers: [reg],
      collect() {
        this.reset();
        POLICY_VERDICTS.forEach((k, i) => { if (policyVerdicts[i]! > 0) this.inc({ ...k }, policyVerdicts[i]); });
      },
    });
    new Counter({
      name: 'l7guard_staged_verdicts_total',
      help: 'Requests a staged policy (l7guard.io/mode: audit) would have decided differently, by policy and change (deny, allow)',
      labelNames: ['policy', 'change'], registers: [reg],
      collect() {
        this.reset();
        for (const [policy, [deny, allow]] of staged) {
          if (deny > 0) this.inc({ policy, change: 'deny' }, deny);
          if (allow > 0) this.inc({ policy, change: 'allow' }, allow);
        }
      },
    });
    new Gauge({
      name: 'l7guard_connections_active', help: 'Client connections currently open on the data-plane listeners', registers: [reg],
      collect() { this.set(sources.connectionsActive()); },
    });
    new Counter({
      name: 'l7guard_upstream_errors_total', help: 'Failed upstream exchanges, by error code', labelNames: ['code'], registers: [reg],
      collect() {
        this.reset();
        for (const [code, n] of upstreamErrors) this.inc({ code }, n);
      },
    });
    new Counter({
      // Envoy's downstream_rq_header_timeout / downstream_rq_timeout; a header timeout has no
      // request to put in a flow, so this is its only trace.
      name: 'l7guard_downstream_timeouts_total', help: 'Client exchanges ended by a front-end timeout, by timeout (header, client_body, request, send)', labelNames: ['timeout'], registers: [reg],
      collect() {
        this.reset();
        for (const [timeout, n] of timeouts) this.inc({ timeout }, n);
      },
    });
    new Gauge({
      name: 'l7guard_policy_revision', help: 'Revision of the policy being enforced (0 before the first load)', registers: [reg],
      collect() { this.set(sources.revision()); },
    });
    if (sources.reloads !== undefined) {
      const reloads = sources.reloads;
      new Counter({
        name: 'l7guard_policy_reloads_total', help: 'Policy reloads after the initial load, by result', labelNames: ['result'], registers: [reg],
        collect() {
          const s = reloads();
          this.reset();
          this.inc({ result: 'success' }, s.reloads);
          this.inc({ result: 'error' }, s.failures);
        },
      });
    }
    if (sources.kubernetes !== undefined) kubernetesMetrics(reg, sources.kubernetes);
    if (sources.flowFile !== undefined) {
      const file = sources.flowFile;
      new Counter({
        name: 'l7guard_flow_log_lines_total', help: 'Flow log (--flows) lines, by outcome; dropped = the writer fell behind', labelNames: ['result'], registers: [reg],
        collect() {
          const s = file();
          this.reset();
          this.inc({ result: 'written' }, s.written);
          this.inc({ result: 'dropped' }, s.dropped);
        },
      });
    }
  }

  /** One FlowEvent (workers' flows arrive this way); the same counting as the direct calls below. */
  count(ev: FlowEvent): void {
    if (ev.kind === 'drop') {
      if (ev.verdict === 'AUDIT') this.audited(ev.direction);
      else this.dropped(ev.dropReason, ev.direction);
      return;
    }
    if (ev.kind === 'http-request') {
      const r = ev.by?.[0];
      if (ev.staged !== undefined) this.staged(r === undefined ? '' : `${r.kind}/${r.namespace ?? ''}/${r.name}`, ev.staged);
      else this.l7Request(ev.verdict);
      return;
    }
    const http = ev.http;
    if (http === undefined) {
      this.#flowKinds[ev.verdict === 'ERROR' ? L7_ERR : L7_FWD]!++;
      return;
    }
    const latency = http.latencyNs === undefined ? -1 : Number(http.latencyNs);
    this.l7Response(http.method, http.protocol === 'HTTP/1.0', http.code ?? 0, latency, ev.verdict === 'ERROR');
  }

  // Hot path: the data path counts each decision here directly (no FlowEvent needed) — change with care.
  // Array/Map increments only.

  /** An L3/L4 or proxy-level drop (a 'drop' FlowEvent). */
  dropped(dropReason: FlowEvent['dropReason'], direction: FlowEvent['direction'] = 'INGRESS'): void {
    const reason = dropReason === 'NO_SERVICE' ? 'SERVICE_BACKEND_NOT_FOUND' : (dropReason ?? 'POLICY_DENIED');
    if (reason === 'POLICY_DENIED' || reason === 'POLICY_DENY') {
      this.#policyVerdicts[direction === 'EGRESS' ? 2 : 0]!++;
      // Hubble sees two DROPPED flows for a policy drop (policy-verdict + drop notification) and
      // its drop handler counts every DROPPED flow; we count the same way.
      this.#flowKinds[POLICY_VERDICT]!++;
      this.#drop(reason, 'TCP', 2);
    } else {
      this.#drop(reason, 'TCP', 1);
    }
    this.#flowKinds[DROP]!++;
  }

  /**
   * An L3/L4 policy drop that audit mode let through: one policy-verdict flow (AUDIT), no drop
   * notification, so no hubble_drop_total (Hubble's drop handler counts DROPPED flows only).
   */
  audited(direction: FlowEvent['direction']): void {
    this.#flowKinds[POLICY_AUDIT]!++;
    this.#policyVerdicts[direction === 'EGRESS' ? 3 : 1]!++;
  }

  /** A staged policy would have decided a request differently (`policy`: "kind/namespace/name"). */
  staged(policy: string, change: 'deny' | 'allow'): void {
    this.#flowKinds[L7_AUDIT]!++;
    let c = this.#staged.get(policy);
    if (c === undefined) this.#staged.set(policy, (c = [0, 0]));
    c[change === 'deny' ? 0 : 1]++;
  }

  /** An L7 request judged: forwarded, denied with a 403, or forwarded by audit mode (an 'http-request' FlowEvent). */
  l7Request(verdict: FlowEvent['verdict']): void {
    this.#l7.received++;
    if (verdict === 'AUDIT') {
      this.#l7.audited++;
      this.#flowKinds[L7_AUDIT]!++;
    } else if (verdict === 'DROPPED') {
      this.#l7.denied++;
      this.#flowKinds[L7_DROP]!++;
      // L7 flows carry no drop_reason_desc: Hubble labels them DROP_REASON_UNKNOWN.
      this.#drop('DROP_REASON_UNKNOWN', 'HTTP', 1);
    } else {
      this.#l7.forwarded++;
      this.#flowKinds[L7_FWD]!++;
    }
  }

  /**
   * A response to an L7 request (an 'http-response' FlowEvent): `code` 0 = none, `latencyNs`
   * negative = unknown. httpV2 counts responses; reporter "server": we observe ingress, at the
   * server's side.
   */
  l7Response(method: string, http10: boolean, code: number, latencyNs: number, error: boolean): void {
    this.#flowKinds[error ? L7_ERR : L7_FWD]!++;
    const m = KNOWN_METHODS.has(method) ? method : 'OTHER';
    let byProto = this.#requests.get(m);
    if (byProto === undefined) this.#requests.set(m, (byProto = new Map()));
    const protocol = http10 ? 'HTTP/1.0' : 'HTTP/1.1';
    let byStatus = byProto.get(protocol);
    if (byStatus === undefined) byProto.set(protocol, (byStatus = new Map()));
    const c = byStatus.get(code);
    if (c === undefined) byStatus.set(code, { n: 1 });
    else c.n++;
    if (latencyNs >= 0) {
      let h = this.#durations.get(m);
      if (h === undefined) this.#durations.set(m, (h = { buckets: new Float64Array(DURATION_BUCKETS.length), sum: 0, count: 0 }));
      const s = latencyNs / 1e9;
      h.sum += s;
      h.count++;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        if (s <= DURATION_BUCKETS[i]!) {
          h.buckets[i]!++;
          break;
        }
      }
    }
  }

  /** A request the front end could not parse (cilium_policy_l7_total{rule="parse_errors"}). */
  parseError(): void {
    this.#l7.parse_errors++;
  }

  /** An upstream failure; `code` is the error's code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...). */
  upstreamError(code: string | undefined): void {
    const k = code ?? 'UNKNOWN';
    this.#upstreamErrors.set(k, (this.#upstreamErrors.get(k) ?? 0) + 1);
  }

  /** A front-end timeout, by its error code (L7G_ERR_HEADERS_TIMEOUT, ...); other codes are ignored. */
  downstreamTimeout(code: string | undefined): void {
    const k = code === undefined ? undefined : TIMEOUT_LABELS[code];
    if (k !== undefined) this.#timeouts.set(k, (this.#timeouts.get(k) ?? 0) + 1);
  }

  /** Prometheus text exposition (format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #drop(reason: string, protocol: string, n: number): void {
    const k = reason + '\0' + protocol;
    this.#drops.set(k, (this.#drops.get(k) ?? 0) + n);
  }
}

/**
 * hubble_http_request_duration_seconds{method, reporter} as a prom-client metric object whose
 * values come from the precounted (non-cumulative) buckets; prom-client's Registry only needs
 * `name`, `help`, `type` and `get()`.
 */
function durationHistogram(src: ReadonlyMap<string, Histo>) {
  const name = 'hubble_http_request_duration_seconds';
  return {
    name,
    help: 'Quantiles of HTTP request duration in seconds',
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    collect: undefined,
    reset() {},
    get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const [method, h] of src) {
        let cum = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cum += h.buckets[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { le, method, reporter: 'server' }, value: cum });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', method, reporter: 'server' }, value: h.count });
        values.push({ metricName: `${name}_sum`, labels: { method, reporter: 'server' }, value: h.sum });
        values.push({ metricName: `${name}_count`, labels: { method, reporter: 'server' }, value: h.count });
      }
      return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
  };
}

/** One label set per watched collection: `kind` and, for a Secret, its `name`. */
function watches(k: KubernetesMetrics): { labels: { kind: string; name: string }; w: KubernetesMetrics['kinds'][number] }[] {
  return [...k.kinds, ...k.secrets].map((w) => ({ labels: { kind: w.kind, name: w.fieldSelector?.replace(/^metadata\.name=/, '') ?? '' }, w }));
}

function kubernetesMetrics(reg: Registry, status: () => KubernetesMetrics): void {
  new Gauge({
    name: 'l7guard_kubernetes_watch_connected', help: 'Whether the list+watch of a kind (or of one referenced Secret) is connected to the API server (1) or retrying (0)',
    labelNames: ['kind', 'name'], registers: [reg],
    collect() {
      this.reset();
      for (const { labels, w } of watches(status())) this.set(labels, w.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'l7guard_kubernetes_last_sync_timestamp_seconds', help: 'When a kind was last listed in full (0: never; the data plane serves only once every kind was)',
    labelNames: ['kind', 'name'], registers: [reg],
    collect() {
      this.reset();
      for (const { labels, w } of watches(status())) this.set(labels, w.lastSync === undefined ? 0 : Date.parse(w.lastSync) / 1000);
    },
  });
  new Counter({
    name: 'l7guard_kubernetes_watch_errors_total', help: 'Failed lists and watches, by kind (each followed by a retry with backoff)',
    labelNames: ['kind', 'name'], registers: [reg],
    collect() {
      this.reset();
      for (const { labels, w } of watches(status())) if (w.errors > 0) this.inc(labels, w.errors);
    },
  });
  new Gauge({
    name: 'l7guard_kubernetes_rejected_objects', help: 'API objects left out of the policy as invalid (each keeps its last valid version, if any)', registers: [reg],
    collect() { this.set(status().rejected.length); },
  });
  new Counter({
    name: 'l7guard_kubernetes_rejections_total', help: 'Invalid API object versions rejected since start', registers: [reg],
    collect() {
      this.reset();
      this.inc(status().rejections);
    },
  });
}
