/**
 * Graceful drain of the data-plane listeners (SIGTERM, like Envoy's `drain_listeners?graceful`):
 * stop accepting at once, let each connection finish the response in flight (announced with
 * `connection: close`), close idle keep-alive connections now, and at the deadline reset whatever is
 * still open so the process can exit before the kubelet's SIGKILL.
 */
import type { Logger } from 'pino';
import type { FrontEnd } from './front-end.js';

/**
 * 25 s. Kubernetes sends SIGKILL `terminationGracePeriodSeconds` (default 30 s) after SIGTERM; a
 * drain that outlives it ends in a kill with no flushed logs or flows, so we stop 5 s earlier. Envoy's
 * own `--drain-time-s` default (600 s) assumes long-lived HTTP/2 streams that a pod never gets to keep.
 * Deployments with a longer grace period raise both together (`--drain-timeout`).
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;

/** Resolves when every connection is gone; returns how many had to be reset at the deadline. */
export async function drainFrontEnds(frontEnds: readonly FrontEnd[], timeoutMs: number, log: Logger): Promise<number> {
  const open = frontEnds.reduce((n, f) => n + f.connections, 0);
  log.info({ connections: open, timeoutMs }, 'draining');
  const graceful = Promise.allSettled(frontEnds.map((f) => f.close()));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), timeoutMs);
  });
  const first = await Promise.race([graceful.then(() => 'drained' as const), deadline]);
  clearTimeout(timer);
  if (first === 'drained') return 0;
  const forced = frontEnds.reduce((n, f) => n + f.connections, 0);
  log.warn({ connections: forced, timeoutMs }, 'drain deadline reached: closing the remaining connections');
  for (const f of frontEnds) f.closeAll();
  await graceful;
  return forced;
}
