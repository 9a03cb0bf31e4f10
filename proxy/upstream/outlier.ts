/**
 * Passive outlier detection per backend address, Envoy's `consecutive_local_origin_failure`
 * shape: `maxFailures` consecutive failures to reach a pod (connect refused/timeout/unreachable)
 * eject it for `ejectionMs`; the first success resets the count. After the ejection time the pod
 * is tried again (automatic recovery); one more failure ejects it again at once.
 * Defaults are Envoy's: 5 consecutive failures, 30 s base ejection time.
 */
import type { Backend } from '../../policy/model.js';

export interface OutlierOptions {
  readonly maxFailures: number;
  readonly ejectionMs: number;
}

export const DEFAULT_OUTLIER_OPTIONS: OutlierOptions = Object.freeze({ maxFailures: 5, ejectionMs: 30_000 });

interface Health {
  failures: number;
  /** `Date.now()` until which the backend is ejected; 0 when it is not. */
  ejectedUntil: number;
}

export class OutlierDetector {
  readonly #opts: OutlierOptions;
  readonly #health = new Map<string, Health>();
  /** Backends the active health checker (proxy/upstream/health-check.ts) has marked down. */
  readonly #down = new Set<string>();

  constructor(opts: Partial<OutlierOptions> = {}) {
    this.#opts = { ...DEFAULT_OUTLIER_OPTIONS, ...opts };
  }

  get options(): OutlierOptions {
    return this.#opts;
  }

  /** Hot path: one Map lookup; backends that never failed have no entry. Also true while an active check says down. */
  isEjected(b: Backend): boolean {
    if (this.#health.size === 0 && this.#down.size === 0) return false;
    const key = backendKey(b);
    if (this.#down.size !== 0 && this.#down.has(key)) return true;
    const h = this.#health.get(key);
    return h !== undefined && h.ejectedUntil > Date.now();
  }

  /** Active health check verdict (health-check.ts): a down backend is skipped until it is healthy again. */
  setActiveHealth(key: string, healthy: boolean): void {
    if (healthy) this.#down.delete(key);
    else this.#down.add(key);
  }

  /** A probe reached the backend: end its passive ejection now (Envoy's `successful_active_health_check_uneject_host`). */
  unejectAfterActiveSuccess(key: string): void {
    if (this.#health.size !== 0) this.#health.delete(key);
  }

  failure(b: Backend): void {
    const key = backendKey(b);
    let h = this.#health.get(key);
    if (h === undefined) this.#health.set(key, (h = { failures: 0, ejectedUntil: 0 }));
    h.failures++;
    if (h.failures >= this.#opts.maxFailures) h.ejectedUntil = Date.now() + this.#opts.ejectionMs;
  }

  success(b: Backend): void {
    if (this.#health.size !== 0) this.#health.delete(backendKey(b));
  }

  /** For /config_dump: the backends currently counted or ejected. */
  snapshot(): { backend: string; consecutive_failures: number; ejected_for_ms: number }[] {
    const now = Date.now();
    return [...this.#health].map(([backend, h]) => ({
      backend,
      consecutive_failures: h.failures,
      ejected_for_ms: Math.max(0, h.ejectedUntil - now),
    }));
  }
}

export function backendKey(b: Backend): string {
  return `${b.ip}|${b.port}`;
}
