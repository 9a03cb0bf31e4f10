/**
 * Which upstream failures may be retried, and on which pod.
 *
 * A request is retried only when no byte of it can have reached a backend: the TCP connection was
 * never established. Never on a 5xx or a reset after the request was written (Cilium's Envoy
 * retries 5xx; deathstar's exhaust-port shows why re-sending a PUT that crashed a pod is
 * dangerous), and never once the request body has started to be read. The retry goes to another
 * pod and is judged again against that pod's policy by the caller.
 */
import type { Readable } from 'node:stream';
import type { Backend, Destination } from '../policy/model.js';
import type { Balancer } from './balancer.js';
import { backendKey, type OutlierDetector } from './outlier.js';

/** Attempts per request, the first included. 2 = one retry, Envoy's `num_retries` default of 1. */
export const MAX_ATTEMPTS = 2;

/** Connect-stage failures: the request never left the proxy. */
export function failedBeforeSend(err: Error, body: Readable | null): boolean {
  if (body !== null && body.readableDidRead) return false;
  switch ((err as { code?: string }).code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return true;
    default:
      return false;
  }
}

/**
 * Round robin, skipping ejected pods and those already tried for this request. When every pod is
 * ejected the answer is "none" (503 at once) rather than Envoy's panic routing: a pod that failed
 * five connects in a row is not worth a client's wait.
 */
export function pickBackend(
  balancer: Balancer,
  dest: Destination,
  outlier: OutlierDetector | undefined,
  tried: ReadonlySet<string> | undefined,
): Backend | undefined {
  const n = dest.kind === 'pod' ? 1 : dest.backends.length;
  for (let i = 0; i < n; i++) {
    const b = balancer.pick(dest);
    if (b === undefined) return undefined;
    if (outlier !== undefined && outlier.isEjected(b)) continue;
    if (tried !== undefined && tried.has(backendKey(b))) continue;
    return b;
  }
  return undefined;
}
