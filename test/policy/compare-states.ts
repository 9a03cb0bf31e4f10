/** Views of a PolicyState for comparing a rebuild with a build from scratch (incremental-build tests). */
import type { PolicyState } from '../../policy/model.js';

/** Identity numbers and endpoint IDs included: what a build with the same `previous` must equal. */
export function numbered(s: PolicyState): unknown {
  return {
    identities: [...s.identities.values()].map((i) => `${i.id}=${i.labels.join(',')}`),
    endpoints: s.endpoints.map((e) => [e.id, e.namespace, e.name, [...e.ips], e.identity.id, e.podLabels, e.workload, [...e.namedPorts]]),
    services: s.services.map((x) => [
      x.namespace, x.name, [...x.clusterIPs], x.ports, x.endpoints.map((e) => `${e.namespace}/${e.name}`),
      x.sliceBackends === undefined ? null : [...x.sliceBackends].map(([port, bs]) => [port, bs.map((b) => [b.endpoint.name, b.ip, b.port, b.endpoint.id])]),
    ]),
    warnings: s.warnings,
    objects: s.objects,
    policyRules: (s.policyRules ?? []).map((r) => [r.kind, r.namespace, r.name, r.ruleIndex, r.file]),
  };
}

/**
 * `previous` without what its build kept (policy/build.ts keeps it by state object): a build from it
 * starts from scratch, and keeps its identity and endpoint numbers as any build does.
 */
export const bare = (s: PolicyState): PolicyState => ({ identities: s.identities, endpoints: s.endpoints }) as PolicyState;
