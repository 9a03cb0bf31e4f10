/**
 * Active health checks per pod (`--health-check-interval`), next to passive outlier ejection
 * (proxy/upstream/outlier.ts). Every interval each Service backend (pod IP : target port) of the running
 * policy revision is probed: a TCP connect by default, or `GET --health-check-path` (2xx/3xx =
 * healthy, as a kubelet `httpGet` probe judges). `unhealthyThreshold` failures in a row mark a pod
 * down, `healthyThreshold` successes in a row bring it back (HAProxy's `fall`/`rise`); a down pod is
 * skipped by the balancer exactly like an ejected one, so when every pod of a Service is down the
 * answer is `503 no healthy upstream` at once. Any successful probe also ends a passive ejection
 * early (Envoy's `successful_active_health_check_uneject_host`, default true).
 *
 * Off by default: Envoy and HAProxy do not probe until told to, and in Cilium the kubelet's
 * readiness probes (not the proxy) take dead pods out of the endpoints. l7guard reads endpoints
 * from files, with no readiness signal, so turning this on is recommended (`5s`), but a node-mode
 * proxy would probe every pod of the snapshot from every node: the operator decides.
 *
 * Probes come from the proxy itself and are not judged by policy (as kubelet probes are not).
 * New pods start healthy (HAProxy's default), so enabling checks never delays traffic.
 */
import http from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Backend, PolicyState } from '../../policy/model.js';
import { serviceBackends } from '../../policy/resolve.js';
import type { StateRef } from '../state-ref.js';
import { backendKey, type OutlierDetector } from './outlier.js';

export interface HealthCheckOptions {
  /** 0: no active checks. */
  readonly intervalMs: number;
  /** One probe's connect + response. 1 s = Kubernetes probe `timeoutSeconds`. */
  readonly timeoutMs: number;
  /** Failed probes in a row that mark a pod down. 3 = HAProxy `fall`, Kubernetes `failureThreshold`. */
  readonly unhealthyThreshold: number;
  /** Passed probes in a row that bring it back. 2 = HAProxy `rise`. */
  readonly healthyThreshold: number;
  /** `GET` this path instead of a bare TCP connect. */
  readonly path?: string | undefined;
}

export const DEFAULT_HEALTH_CHECK_OPTIONS = Object.freeze({
  intervalMs: 0,
  timeoutMs: 1_000,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
});

interface Target {
  readonly ip: string;
  readonly port: number;
  healthy: boolean;
  failures: number;
  successes: number;
  probing: boolean;
  lastError: string | undefined;
}

export class HealthChecker {
  readonly #state: StateRef;
  readonly #outlier: OutlierDetector;
  readonly #opts: HealthCheckOptions;
  readonly #log: Logger | undefined;
  readonly #targets = new Map<string, Target>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The revision whose backends #targets holds (recomputed only on a swap). */
  #revisionSeen: PolicyState | undefined;

  constructor(state: StateRef, outlier: OutlierDetector, opts: HealthCheckOptions, log?: Logger) {
    this.#state = state;
    this.#outlier = outlier;
    this.#opts = opts;
    this.#log = log;
  }

  get enabled(): boolean {
    return this.#opts.intervalMs > 0;
  }

  /** First round at once, then every interval. A no-op when checks are off. */
  start(): void {
    if (!this.enabled || this.#stopped || this.#timer !== undefined) return;
    this.#round();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** For /config_dump: every probed backend and its state. */
  snapshot(): { backend: string; healthy: boolean; consecutive_failures: number; consecutive_successes: number; last_error: string | null }[] {
    return [...this.#targets].map(([backend, t]) => ({
      backend,
      healthy: t.healthy,
      consecutive_failures: t.failures,
      consecutive_successes: t.successes,
      last_error: t.lastError ?? null,
    }));
  }

  #round(): void {
    if (this.#stopped) return;
    this.#syncTargets();
    for (const [key, t] of this.#targets) {
      if (t.probing) continue; // a probe slower than the interval: never two at once per pod
      t.probing = true;
      const done = (err: string | undefined): void => {
        t.probing = false;
        if (!this.#stopped && this.#targets.get(key) === t) this.#record(key, t, err);
      };
      if (this.#opts.path === undefined) probeTcp(t.ip, t.port, this.#opts.timeoutMs, done);
      else probeHttp(t.ip, t.port, this.#opts.path, this.#opts.timeoutMs, done);
    }
    this.#timer = setTimeout(() => this.#round(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Targets = the Service backends of the running revision; pods that left it are forgotten. */
  #syncTargets(): void {
    const state = this.#state.current;
    if (state === undefined || state === this.#revisionSeen) return;
    this.#revisionSeen = state;
    const wanted = new Map<string, Backend>();
    for (const svc of state.services) {
      for (const sp of svc.ports) {
        if (sp.protocol !== 'TCP') continue;
        // The same backends the balancer picks from: EndpointSlices' ready endpoints and ports
        // when the Service has slices, else its selected pods and targetPort.
        for (const b of serviceBackends(svc, sp)) wanted.set(backendKey(b), b);
      }
    }
    for (const key of this.#targets.keys()) {
      if (wanted.has(key)) continue;
      this.#targets.delete(key);
      this.#outlier.setActiveHealth(key, true);
    }
    for (const [key, b] of wanted) {
      if (!this.#targets.has(key)) this.#targets.set(key, { ip: b.ip, port: b.port, healthy: true, failures: 0, successes: 0, probing: false, lastError: undefined });
    }
  }

  #record(key: string, t: Target, err: string | undefined): void {
    if (err === undefined) {
      t.failures = 0;
      t.successes++;
      t.lastError = undefined;
      this.#outlier.unejectAfterActiveSuccess(key);
      if (!t.healthy && t.successes >= this.#opts.healthyThreshold) {
        t.healthy = true;
        this.#outlier.setActiveHealth(key, true);
        this.#log?.info({ backend: `${t.ip}:${t.port}`, successes: t.successes }, 'health check: backend healthy');
      }
      return;
    }
    t.successes = 0;
    t.failures++;
    t.lastError = err;
    if (t.healthy && t.failures >= this.#opts.unhealthyThreshold) {
      t.healthy = false;
      this.#outlier.setActiveHealth(key, false);
      this.#log?.warn({ backend: `${t.ip}:${t.port}`, failures: t.failures, err }, 'health check: backend unhealthy');
    }
  }
}

/** Healthy when the TCP handshake completes within `timeoutMs`; the connection is closed at once. */
function probeTcp(host: string, port: number, timeoutMs: number, done: (err: string | undefined) => void): void {
  let settled = false;
  const sock = net.connect({ host, port });
  const finish = (err: string | undefined): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    sock.destroy();
    done(err);
  };
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  sock.once('connect', () => finish(undefined));
  sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
}

/** Healthy on a 2xx/3xx answer to `GET path` within `timeoutMs` (a kubelet httpGet probe's rule). */
function probeHttp(host: string, port: number, path: string, timeoutMs: number, done: (err: string | undefined) => void): void {
  let settled = false;
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const req = http.request({
    host,
    port,
    path,
    method: 'GET',
    agent: false,
    headers: { host: authority, 'user-agent': 'l7guard-health-check', connection: 'close' },
  });
  const finish = (err: string | undefined): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.destroy();
    done(err);
  };
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  req.on('response', (res) => {
    const status = res.statusCode ?? 0;
    res.resume();
    finish(status >= 200 && status < 400 ? undefined : `HTTP ${status}`);
  });
  req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
  req.end();
}
