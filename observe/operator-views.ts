/**
 * The JSON the admin API serves to the operator commands (`endpoint list`, `identity list`,
 * `policy get`), derived from one PolicyState. Field names follow Cilium's API models where one
 * exists (`id`, `identity`, `labels`, `policy-enabled`-style booleans), kept flat for the CLI.
 */
import { fnv1a } from '../policy/identity.js';
import type { Endpoint, PolicyRuleSource, PolicyState } from '../policy/model.js';

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
  /** Present (true) only when the endpoint is in policy audit mode: its denials are forwarded. */
  readonly policyAuditMode?: true;
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
  /** `--kubernetes`: API objects left out as invalid (proxy/sources/kubernetes/); absent or empty: none. */
  readonly rejected?: readonly RejectedObject[];
  /** Staged policies (`l7guard.io/mode: audit`, docs/audit.md), judged and not enforced; absent: none. */
  readonly staged?: readonly { readonly kind: string; readonly namespace: string | undefined; readonly name: string }[];
}

export interface RejectedObject {
  readonly source: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly problems: readonly string[];
  /** The version in force instead, or none (the object is absent from the policy). */
  readonly inForce: string | undefined;
}

const POLICY_KINDS = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

/**
 * `endpoint list`: this node's endpoints, as `cilium endpoint list` lists its agent's. The pods of
 * other nodes (endpoint ID 0, policy/model.ts Endpoint.id) are identities here, not endpoints.
 */
export function endpointsView(state: PolicyState, audited?: (ep: Endpoint) => boolean): EndpointView[] {
  const pods: EndpointView[] = state.endpoints.filter((e) => e.id !== 0).map((e) => {
    const enf = state.enforcement?.(e.identity) ?? { ingress: false, egress: false };
    return {
      id: e.id, namespace: e.namespace, name: e.name, identity: e.identity.id, labels: e.identity.labels,
      ipv4: e.ips.filter((ip) => !ip.includes(':')), ipv6: e.ips.filter((ip) => ip.includes(':')),
      ingressEnforcement: enf.ingress, egressEnforcement: enf.egress,
      ...(audited?.(e) === true ? { policyAuditMode: true as const } : {}),
      status: 'ready',
    };
  });
  return [...pods, hostEndpoint(pods)].sort((a, b) => a.id - b.id);
}

/**
 * Cilium lists the node itself as an endpoint (`reserved:host`, identity 1, no pod IP) on every
 * node (`441 Disabled Disabled 1 reserved:host ready` in a run of the Star Wars demo on a Cilium 1.17.6 cluster). Host policies (nodeSelector) are
 * rejected here and l7guard never judges traffic to the node, so both directions stay Disabled.
 * Its ID: the hash slot of "reserved:host" in the endpoint ID range, probing past pods' IDs.
 */
function hostEndpoint(pods: readonly EndpointView[]): EndpointView {
  const used = new Set(pods.map((p) => p.id));
  let id = 1 + (fnv1a('reserved:host') % 4095);
  // Every ID of the pool taken (4,095 pods, or a node numbered past the pool): the first free one above it.
  for (let tries = 0; used.has(id) && tries < 4095; tries++) id = id === 4095 ? 1 : id + 1;
  if (used.has(id)) for (id = 4096; used.has(id); ) id++;
  return {
    id, namespace: '', name: '', identity: 1, labels: ['reserved:host'], ipv4: [], ipv6: [],
    ingressEnforcement: false, egressEnforcement: false, status: 'ready',
  };
}

export function identitiesView(state: PolicyState): IdentityView[] {
  return [...state.identities.values()].sort((a, b) => a.id - b.id).map((i) => ({ id: i.id, labels: i.labels }));
}

export function policyView(state: PolicyState, rejected?: readonly RejectedObject[]): PolicyView {
  return {
    ...(rejected === undefined || rejected.length === 0 ? {} : { rejected }),
    revision: state.revision,
    policies: state.objects.filter((o) => POLICY_KINDS.has(o.kind)).map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, file: o.file })),
    rules: state.policyRules ?? [],
    ...(state.staged === undefined ? {} : { staged: state.staged.map((p) => ({ kind: p.kind, namespace: p.namespace, name: p.name })) }),
  };
}
