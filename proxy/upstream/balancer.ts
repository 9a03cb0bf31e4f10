import type { Backend, Destination } from '../../policy/model.js';

/**
 * Round robin per (Service, port), chosen before the policy is applied: as in Cilium, service
 * translation picks the pod first, then that pod's ingress policy judges the request.
 * Counters survive reloads (keyed by name, not by revision objects).
 */
export class Balancer {
  readonly #next = new Map<string, number>();
  /** The counter key of a (shared, cached) Destination: built once instead of per request. */
  readonly #keys = new WeakMap<Destination, string>();

  pick(dest: Destination): Backend | undefined {
    if (dest.kind === 'pod') return dest.backend;
    const backends = dest.backends;
    const n = backends.length;
    if (n === 0) return undefined;
    if (n === 1) return backends[0];
    let key = this.#keys.get(dest);
    if (key === undefined) {
      key = `${dest.service.namespace}/${dest.service.name}:${dest.servicePort}`;
      this.#keys.set(dest, key);
    }
    const i = this.#next.get(key) ?? 0;
    this.#next.set(key, (i + 1) % n);
    return backends[i % n];
  }
}
