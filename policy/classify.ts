/**
 * Sorting loaded objects into policies, cluster objects, warnings and kind errors.
 */
import { type LoadProblem, ProblemCodes } from './errors.js';
import type { SourcedObject } from './load.js';
import { objectLabel, type PolicyKind } from './schema.js';

const POLICY_KINDS: Record<string, PolicyKind> = {
  CiliumNetworkPolicy: 'CiliumNetworkPolicy',
  CiliumClusterwideNetworkPolicy: 'CiliumClusterwideNetworkPolicy',
};

/** cilium.io kinds that exist upstream but carry nothing l7guard can enforce. */
const KNOWN_CILIUM_KINDS = new Set([
  'CiliumEndpoint', 'CiliumIdentity', 'CiliumNode', 'CiliumExternalWorkload', 'CiliumLocalRedirectPolicy', 'CiliumEgressGatewayPolicy',
  'CiliumEnvoyConfig', 'CiliumClusterwideEnvoyConfig', 'CiliumCIDRGroup', 'CiliumLoadBalancerIPPool', 'CiliumBGPPeeringPolicy',
  'CiliumBGPClusterConfig', 'CiliumBGPPeerConfig', 'CiliumBGPAdvertisement', 'CiliumNodeConfig', 'CiliumL2AnnouncementPolicy',
  'CiliumPodIPPool', 'CiliumEndpointSlice', 'CiliumBGPNodeConfig', 'CiliumBGPNodeConfigOverride',
]);

const CLUSTER_KINDS = new Set(['Pod', 'Service', 'Namespace', 'Secret']);
/** Cluster kinds of API groups other than core v1: "group/version" -> kinds. */
const GROUP_CLUSTER_KINDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  // A Service's backends (policy/build.ts sliceBackends).
  ['discovery.k8s.io/v1', new Set(['EndpointSlice'])],
]);

export type Classified =
  | { readonly type: 'policy'; readonly kind: PolicyKind; readonly object: SourcedObject }
  | { readonly type: 'cluster'; readonly object: SourcedObject }
  | { readonly type: 'skip'; readonly object: SourcedObject; readonly warning: string }
  | { readonly type: 'error'; readonly object: SourcedObject; readonly problem: LoadProblem };

export function classify(o: SourcedObject): Classified {
  const group = o.apiVersion.includes('/') ? o.apiVersion.slice(0, o.apiVersion.indexOf('/')) : '';
  const label = objectLabel(o.kind, o.namespace ?? (o.kind === 'Namespace' ? undefined : 'default'), o.name);
  if (group === 'cilium.io') {
    const kind = POLICY_KINDS[o.kind];
    if (kind) return { type: 'policy', kind, object: o };
    const known = KNOWN_CILIUM_KINDS.has(o.kind);
    return {
      type: 'error',
      object: o,
      problem: {
        code: ProblemCodes.L7G_ERR_POLICY_KIND, file: o.file, object: label, field: 'kind', line: o.line,
        message: known ? `unsupported cilium.io kind ${o.kind}: l7guard enforces only CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy` : `unknown cilium.io kind ${JSON.stringify(o.kind)}`,
      },
    };
  }
  if (group === 'networking.k8s.io' && o.kind === 'NetworkPolicy') return { type: 'policy', kind: 'NetworkPolicy', object: o };
  if (o.apiVersion === 'v1' && CLUSTER_KINDS.has(o.kind)) return { type: 'cluster', object: o };
  if (GROUP_CLUSTER_KINDS.get(o.apiVersion)?.has(o.kind) === true) return { type: 'cluster', object: o };
  if (group === 'apps' && o.kind === 'Deployment') {
    return { type: 'skip', object: o, warning: `Deployment ${o.namespace ?? 'default'}/${o.name} is not expanded: only \`l7guard demo\` turns Deployments into Pods` };
  }
  return { type: 'skip', object: o, warning: `${o.file}: skipped ${o.apiVersion} ${label}: kind not used by l7guard` };
}
