/**
 * Which destinations must pass through l7guard, computed from one revision: every destination
 * whose verdict could differ from allow-all. As in Cilium, ingress is enforced at the
 * destination's node (docs/interception.md).
 *
 * - `pod` (default): each pod of this node with ingress enforcement (some rule selects it, L3/L4
 *   rules included, or default deny) is intercepted on its pod IP, on every port it can be reached
 *   on: the target ports of the Services it backs and its named container ports. Traffic to it
 *   from other nodes (their kube-proxy already DNATed the clusterIP to the pod IP) and pod-IP
 *   traffic arrive here addressed to the pod IP. A client on this node reaching it through a
 *   Service is DNATed by kube-proxy in this node's own PREROUTING, and the nat table is consulted
 *   once per connection, so that path is caught before the DNAT: the clusterIP:port of every
 *   Service with an enforced backend on this node is intercepted too (l7guard then balances over
 *   all of the Service's backends, judging each by its own policy, as it does for any Service).
 * - `service`: each Service clusterIP:port with at least one enforced backend, intercepted on the
 *   node of the client (traffic from this node's pods to the clusterIP, before kube-proxy's DNAT).
 *   Pod-IP traffic and other nodes' clients escape it.
 */
import type { PolicyState } from '../../policy/index.js';
import { serviceBackends } from '../../policy/resolve.js';

export type InterceptMode = 'pod' | 'service';

export interface InterceptTarget {
  readonly ip: string;
  readonly port: number;
  /** What it is, for the rule's comment and the logs: `pod NS/NAME` or `service NS/NAME`. */
  readonly what: string;
}

export const targetKey = (t: { readonly ip: string; readonly port: number }): string => `${t.ip}:${t.port}`;

const isIPv4 = (ip: string): boolean => /^\d{1,3}(?:\.\d{1,3}){3}$/.test(ip);

export function planTargets(state: PolicyState, mode: InterceptMode): InterceptTarget[] {
  const enforced = (identity: PolicyState['endpoints'][number]['identity']) => state.enforcement?.(identity).ingress ?? true;
  const out = new Map<string, InterceptTarget>();
  const add = (ip: string, port: number, what: string) => {
    if (!isIPv4(ip)) return; // iptables (not ip6tables) rules only, for now
    const t = { ip, port, what };
    if (!out.has(targetKey(t))) out.set(targetKey(t), t);
  };
  if (mode === 'pod') {
    const ports = new Map<PolicyState['endpoints'][number], Set<number>>();
    for (const ep of state.endpoints) {
      // Endpoint id 0: a pod of another node (policy/build.ts): its own node intercepts it.
      if (ep.id === 0 || !enforced(ep.identity)) continue;
      ports.set(ep, new Set(ep.namedPorts.values()));
    }
    for (const svc of state.services) {
      for (const sp of svc.ports) {
        if (sp.protocol !== 'TCP') continue;
        for (const b of serviceBackends(svc, sp)) ports.get(b.endpoint)?.add(b.port);
      }
    }
    for (const [ep, set] of ports) {
      for (const port of [...set].sort((a, b) => a - b)) for (const ip of ep.ips) add(ip, port, `pod ${ep.namespace}/${ep.name}`);
    }
    for (const svc of state.services) {
      for (const sp of svc.ports) {
        if (sp.protocol !== 'TCP' || !serviceBackends(svc, sp).some((b) => ports.has(b.endpoint))) continue;
        for (const ip of svc.clusterIPs) add(ip, sp.port, `service ${svc.namespace}/${svc.name}`);
      }
    }
  } else {
    for (const svc of state.services) {
      for (const sp of svc.ports) {
        if (sp.protocol !== 'TCP') continue;
        if (!serviceBackends(svc, sp).some((b) => enforced(b.endpoint.identity))) continue;
        for (const ip of svc.clusterIPs) add(ip, sp.port, `service ${svc.namespace}/${svc.name}`);
      }
    }
  }
  return [...out.values()];
}
