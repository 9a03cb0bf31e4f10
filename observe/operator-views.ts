/**
 * The JSON the admin API serves to the operator commands (`endpoint list`, `identity list`,
 * `policy get`), derived from one PolicyState. Field names follow Cilium's API models where one
 * exists (`id`, `identity`, `labels`, `policy-enabled`-style booleans), kept flat for the CLI.
 */
import { fnv1a } from '../policy/identity.js';
import type { PolicyRuleSource, PolicyState } from '../policy/model.js';

export interface EndpointView {
  readonly id: number;
  readonly namespace: string;
  readonly name: string;
  readonly identity: number;
  /** Identity labels, sorted ("k8s:org=empire", ...). */
  readonly labels: readonly string[];
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** Cilium's POLICY (ingress/egress) ENFORCEMENT column: a selecting rule enforces that direction. */
  readonly ingressEnforcement: boolean;
  readonly egressEnforcement: boolean;
  readonly status: 'ready';
}

export interface IdentityView {
  readonly id: number;
  readonly labels: readonly string[];
}

export interface PolicyView {
  readonly revision: number;
  readonly policies: readonly { readonly kind: string; readonly namespace: string | undefined; readonly name: string; readonly file: string }[];
  /** Every rule as written (`spec`, then `specs[]`), for `policy get`. */
  readonly rules: readonly PolicyRuleSource[];
}

const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

export function endpointsView(state: PolicyState): EndpointView[] {
  const pods: EndpointView[] = state.endpoints.map((e) => {
    const enf = state.enforcement?.(e.identity) ?? { ingress: false, egress: false };
    return {
      id: e.id, namespace: e.namespace, name: e.name, identity: e.identity.id, labels: e.identity.labels,
      ipv4: e.ips.filter((ip) => !ip.includes(':')), ipv6: e.ips.filter((ip) => ip.includes(':')),
      ingressEnforcement: enf.ingress, egressEnforcement: enf.egress, status: 'ready',
    };
  });
  return [...pods, hostEndpoint(pods)].sort((a, b) => a.id - b.id);
}

/**
 * Cilium lists the node itself as an endpoint (`reserved:host`, identity 1, no pod IP) on every
 * node (seed: `441 Disabled Disabled 1 reserved:host ready`). Host policies (nodeSelector) are
 * rejected here and l7guard never judges traffic to the node, so both directions stay Disabled.
 * Its ID: the hash slot of "reserved:host" in the endpoint ID range, probing past pods' IDs.
 */
function hostEndpoint(pods: readonly EndpointView[]): EndpointView {
  const used = new Set(pods.map((p) => p.id));
  let id = 1 + (fnv1a('reserved:host') % 4095);
  while (used.has(id)) id = id === 4095 ? 1 : id + 1;
  return {
    id, namespace: '', name: '', identity: 1, labels: ['reserved:host'], ipv4: [], ipv6: [],
    ingressEnforcement: false, egressEnforcement: false, status: 'ready',
  };
}

export function identitiesView(state: PolicyState): IdentityView[] {
  return [...state.identities.values()].sort((a, b) => a.id - b.id).map((i) => ({ id: i.id, labels: i.labels }));
}

export function policyView(state: PolicyState): PolicyView {
  return {
    revision: state.revision,
    policies: state.objects.filter((o) => POLICY_KINDS.has(o.kind)).map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, file: o.file })),
    rules: state.policyRules ?? [],
  };
}
