/**
 * Which upstream client a data plane uses, and pools that follow the pods: with each policy
 * revision, the pools of addresses no pod (or EndpointSlice endpoint) has any more are drained and
 * closed. Without this a pool per address ever seen would live until exit — unbounded under the pod
 * churn the Kubernetes source makes routine.
 */
import type { PolicyState } from '../../policy/model.js';
import type { StateRef } from '../state-ref.js';
import { Http1Upstream } from './http1-client.js';
import { Upstream, type UpstreamClient, type UpstreamOptions } from './upstream.js';

/** The plain-HTTP client `opts.client` names (undici whenever `opts.tls` asks for TLS origination). */
export function createUpstreamClient(opts: Partial<UpstreamOptions>): UpstreamClient {
  return opts.client === 'undici' || opts.tls !== undefined ? new Upstream(opts) : new Http1Upstream(opts);
}

/** Every address a request may be sent to under `state`: pod IPs, and EndpointSlice endpoints (which need not be pods). */
export function podAddresses(state: PolicyState): Set<string> {
  const out = new Set<string>();
  for (const ep of state.endpoints) for (const ip of ep.ips) out.add(ip);
  for (const svc of state.services) {
    if (svc.sliceBackends === undefined) continue;
    for (const backends of svc.sliceBackends.values()) for (const b of backends) out.add(b.ip);
  }
  return out;
}

/** From now on, each new revision prunes the pools of `clients()` to its addresses. */
export function followPods(state: StateRef, clients: () => Iterable<Pick<UpstreamClient, 'retainOnly'>>): void {
  state.onSwap((s) => {
    const live = podAddresses(s);
    for (const c of clients()) c.retainOnly(live);
  });
}
