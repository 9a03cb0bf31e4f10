/**
 * Every timeout and limit of the data path in one table: its default, whose default that is, the
 * `serve` flag that changes it, and where it is applied. `/config_dump` shows the effective values
 * (`limits`, `timeouts`), and the table in docs/hardening.md#timeouts-and-limits is this table.
 */
import type { FrontEndLimits } from './http1/types.js';
import type { UpstreamOptions } from './upstream/upstream.js';
import type { OutlierOptions } from './upstream/outlier.js';
import { DEFAULT_FRONT_END_LIMITS } from './listen/front-end.js';
import { defaultUpstreamOptions } from './upstream/upstream.js';
import { DEFAULT_OUTLIER_OPTIONS } from './upstream/outlier.js';
import { DEFAULT_HEALTH_CHECK_OPTIONS, type HealthCheckOptions } from './upstream/health-check.js';

type Kind = 'duration' | 'bytes' | 'count';

interface Setting {
  readonly flag: string;
  readonly kind: Kind;
  readonly section: 'limits' | 'timeouts';
  readonly default: number;
  /** Why this number (shown in docs/hardening.md). */
  readonly source: string;
}

/** Flag → setting. Durations in ms; `0` / Infinity mean "off" where noted. */
export const SETTINGS = {
  headersTimeoutMs: { flag: 'header-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_FRONT_END_LIMITS.headersTimeoutMs, source: 'nginx client_header_timeout 60s' },
  keepAliveTimeoutMs: { flag: 'idle-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_FRONT_END_LIMITS.keepAliveTimeoutMs, source: "between Node's 5s and nginx's 75s keepalive_timeout" },
  connectTimeoutMs: { flag: 'connect-timeout', kind: 'duration', section: 'timeouts', default: defaultUpstreamOptions.connectTimeout, source: 'Envoy cluster connect_timeout 5s' },
  responseTimeoutMs: { flag: 'response-timeout', kind: 'duration', section: 'timeouts', default: defaultUpstreamOptions.headersTimeout, source: 'Envoy route timeout 15s' },
  bodyTimeoutMs: { flag: 'body-timeout', kind: 'duration', section: 'timeouts', default: defaultUpstreamOptions.bodyTimeout, source: 'Envoy stream_idle_timeout 5m' },
  outlierEjectionMs: { flag: 'outlier-ejection-time', kind: 'duration', section: 'timeouts', default: DEFAULT_OUTLIER_OPTIONS.ejectionMs, source: 'Envoy outlier_detection base_ejection_time 30s' },
  maxHeaderBytes: { flag: 'max-header-bytes', kind: 'bytes', section: 'limits', default: DEFAULT_FRONT_END_LIMITS.maxHeaderBytes, source: 'Envoy max_request_headers_kb 60' },
  maxHeaderCount: { flag: 'max-headers', kind: 'count', section: 'limits', default: DEFAULT_FRONT_END_LIMITS.maxHeaderCount, source: 'Envoy max_headers_count 100' },
  maxTargetLength: { flag: 'max-target-length', kind: 'bytes', section: 'limits', default: DEFAULT_FRONT_END_LIMITS.maxTargetLength, source: 'nginx large_client_header_buffers 8k; RFC 9112 §3 ≥ 8000' },
  maxPipelinedBytes: { flag: 'max-pipelined-bytes', kind: 'bytes', section: 'limits', default: DEFAULT_FRONT_END_LIMITS.maxPipelinedBytes, source: 'one socket read (64 KiB); one request in flight per connection' },
  maxConnections: { flag: 'max-connections', kind: 'count', section: 'limits', default: 0, source: 'Envoy: none without the overload manager (0 = unlimited)' },
  upstreamConnections: { flag: 'upstream-connections', kind: 'count', section: 'limits', default: defaultUpstreamOptions.connections, source: 'per pod; Envoy circuit breaker max_connections 1024 is per cluster' },
  outlierFailures: { flag: 'outlier-failures', kind: 'count', section: 'limits', default: DEFAULT_OUTLIER_OPTIONS.maxFailures, source: 'Envoy consecutive_local_origin_failure 5' },
  requestTimeoutMs: { flag: 'request-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_FRONT_END_LIMITS.requestTimeoutMs, source: "Cilium agent --http-request-timeout 3600s (its Envoy route timeout); 0 = off" },
  clientBodyTimeoutMs: { flag: 'client-body-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_FRONT_END_LIMITS.clientBodyTimeoutMs, source: 'nginx client_body_timeout 60s' },
  sendTimeoutMs: { flag: 'send-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_FRONT_END_LIMITS.sendTimeoutMs, source: 'nginx send_timeout 60s' },
  healthCheckIntervalMs: { flag: 'health-check-interval', kind: 'duration', section: 'timeouts', default: DEFAULT_HEALTH_CHECK_OPTIONS.intervalMs, source: 'off, as in Envoy and HAProxy until configured (kubelet probes do it in Cilium); 0 = off, 5s suggested' },
  healthCheckTimeoutMs: { flag: 'health-check-timeout', kind: 'duration', section: 'timeouts', default: DEFAULT_HEALTH_CHECK_OPTIONS.timeoutMs, source: 'Kubernetes probe timeoutSeconds 1' },
  healthCheckUnhealthy: { flag: 'health-check-unhealthy-threshold', kind: 'count', section: 'limits', default: DEFAULT_HEALTH_CHECK_OPTIONS.unhealthyThreshold, source: 'HAProxy fall 3, Kubernetes failureThreshold 3' },
  healthCheckHealthy: { flag: 'health-check-healthy-threshold', kind: 'count', section: 'limits', default: DEFAULT_HEALTH_CHECK_OPTIONS.healthyThreshold, source: 'HAProxy rise 2' },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;
export type Hardening = Record<SettingName, number> & {
  /** `--health-check-path`: an HTTP GET probe (2xx/3xx = healthy); absent: TCP connect only. */
  readonly healthCheckPath?: string | undefined;
  /** `--upstream-client`: absent = native (proxy/upstream/pools.ts). */
  readonly upstreamClient?: 'native' | 'undici' | undefined;
};

/** parseArgs option entries for every flag above. */
export const HARDENING_PARSE_OPTIONS = {
  ...(Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }])) as Record<
    (typeof SETTINGS)[SettingName]['flag'],
    { type: 'string' }
  >),
  'health-check-path': { type: 'string' as const },
  'upstream-client': { type: 'string' as const },
};

/** Flag values (strings) → numbers; throws an Error naming the flag on a bad value. */
export function parseHardening(values: Readonly<Record<string, unknown>>): Hardening {
  const out = {} as Hardening;
  for (const [name, s] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const raw = values[s.flag];
    if (raw === undefined) {
      out[name] = s.default;
      continue;
    }
    const n = parseValue(String(raw), s.kind);
    if (n === undefined) throw new Error(`--${s.flag} must be ${s.kind === 'duration' ? 'a duration (30, 30s, 500ms)' : 'a non-negative integer'}, not "${String(raw)}"`);
    out[name] = n;
  }
  const client = values['upstream-client'];
  if (client !== undefined) {
    if (client !== 'native' && client !== 'undici') throw new Error(`--upstream-client must be native or undici, not "${String(client)}"`);
    (out as { upstreamClient?: string }).upstreamClient = client;
  }
  const path = values['health-check-path'];
  if (path !== undefined) {
    // An origin-form path: it goes on the probe's request line as is.
    if (typeof path !== 'string' || !/^\/[\x21-\x7e]*$/.test(path)) throw new Error(`--health-check-path must be a path starting with "/", not "${String(path)}"`);
    return { ...out, healthCheckPath: path };
  }
  return out;
}

function parseValue(text: string, kind: Kind): number | undefined {
  if (kind === 'duration') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
    if (m === null) return undefined;
    const n = Number(m[1]);
    const unit = m[2] ?? 's';
    return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
  }
  const m = /^(\d+)(k|ki|kib)?$/i.exec(text.trim());
  if (m === null) return undefined;
  return Number(m[1]) * (m[2] === undefined ? 1 : 1024);
}

export function frontEndLimits(h: Hardening): Partial<FrontEndLimits> {
  return {
    headersTimeoutMs: h.headersTimeoutMs,
    keepAliveTimeoutMs: h.keepAliveTimeoutMs,
    maxHeaderBytes: h.maxHeaderBytes,
    maxHeaderCount: h.maxHeaderCount,
    maxTargetLength: h.maxTargetLength,
    maxPipelinedBytes: h.maxPipelinedBytes,
    ...frontEndTimeouts(h),
  };
}

export function upstreamOptions(h: Hardening): Partial<UpstreamOptions> {
  return {
    connectTimeout: h.connectTimeoutMs, headersTimeout: h.responseTimeoutMs, bodyTimeout: h.bodyTimeoutMs, connections: h.upstreamConnections,
    ...(h.upstreamClient !== undefined && { client: h.upstreamClient }),
  };
}

export function outlierOptions(h: Hardening): Partial<OutlierOptions> {
  return { maxFailures: h.outlierFailures, ejectionMs: h.outlierEjectionMs };
}

export function frontEndTimeouts(h: Hardening): Pick<FrontEndLimits, 'requestTimeoutMs' | 'clientBodyTimeoutMs' | 'sendTimeoutMs'> {
  return { requestTimeoutMs: h.requestTimeoutMs, clientBodyTimeoutMs: h.clientBodyTimeoutMs, sendTimeoutMs: h.sendTimeoutMs };
}

export function healthCheckOptions(h: Hardening): HealthCheckOptions {
  return {
    intervalMs: h.healthCheckIntervalMs,
    timeoutMs: h.healthCheckTimeoutMs,
    unhealthyThreshold: Math.max(1, h.healthCheckUnhealthy),
    healthyThreshold: Math.max(1, h.healthCheckHealthy),
    path: h.healthCheckPath,
  };
}

/** `/config_dump`'s `limits` and `timeouts`: flag name → { value, default, source }. */
export function hardeningDump(h: Hardening): { limits: Record<string, unknown>; timeouts: Record<string, unknown> } {
  const limits: Record<string, unknown> = {};
  const timeouts: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const entry = s.kind === 'duration' ? { ms: h[name], default_ms: s.default, source: s.source } : { value: h[name], default: s.default, source: s.source };
    (s.section === 'limits' ? limits : timeouts)[s.flag] = entry;
  }
  limits['health-check-path'] = { value: h.healthCheckPath ?? null, default: null, source: 'none: TCP connect only (policy backends are arbitrary services)' };
  return { limits, timeouts };
}
