/**
 * Which upstream failures may be retried, and on which pod.
 *
 * A request is retried only when no byte of it can have reached a backend: the TCP connection was
 * never established, or a pooled keep-alive connection was found closed before any byte of the
 * request was written to it (proxy/upstream/upstream.ts `unsentOnClosedConnection`). Never on a 5xx, nor
 * when a connection took (some of) the request and then closed or reset without answering: the pod
 * may have acted on it (RFC 9110 §9.2.2; Cilium's Envoy retries 5xx, and deathstar's exhaust-port
 * shows why re-sending a PUT that crashed a pod is dangerous). Never once the request body has
 * started to be read: it cannot be replayed. The retry is judged again against the chosen pod's
 * policy by the caller.
 */
import type { Readable } from 'node:stream';
import type { Backend, Destination } from '../../policy/model.js';
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
    case 'L7G_ERR_UPSTREAM_CONNECT_TIMEOUT':
      return true;
    default:
      return false;
  }
}

/**
 * - `unreachable`: the connect failed. It counts against the pod (outlier ejection) and the retry
 *   goes to another pod.
 * - `unsent`: a pooled connection the pod had closed (idle timeout, restart) without announcing it.
 *   Normal pod behaviour, so it is not held against the pod, and any pod may take the retry — the
 *   same one on a fresh connection included, so a one-pod Service is covered too (Go's
 *   net/http retries a request "nothing written" to a closed idle connection the same way).
 */
export type RetryClass = 'unreachable' | 'unsent';

export function retryClass(err: Error, unsent: boolean, body: Readable | null): RetryClass | undefined {
  if (body !== null && (body.readableDidRead || body.destroyed)) return undefined;
  if (failedBeforeSend(err, null)) return 'unreachable';
  return unsent ? 'unsent' : undefined;
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
