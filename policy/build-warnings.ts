/**
 * Warnings for inputs that yield nothing: valid, but almost always a mistake (a Pod written without
 * its status, a selector with a typo). Each is one line in the state's warnings; serve logs a
 * revision's warnings that the previous revision did not have (proxy/reload/reload-controller.ts),
 * so a big cluster's steady state does not repeat them.
 */
import type { CompiledRule } from './compile.js';
import type { IdentityEntry } from './identity.js';
import type { PodInfo, ServiceInfo } from './kube.js';
import type { Service } from './model.js';
import { IdentityIndex } from './selector-index.js';
import { matchRequirements } from './selector.js';

/**
 * Pods without an IP that are not on their way to one or done with it: no endpoint, so no policy
 * applies to them. A Pending pod (scheduled, its sandbox not up yet) is skipped: in a cluster every
 * new pod is one for a moment, and that is no mistake; a hand-written Pod without `status` is.
 */
export function podsWithoutIP(pods: readonly PodInfo[], out: string[]): void {
  for (const p of pods) {
    if (p.ips.length > 0 || p.phase === 'Pending' || p.phase === 'Succeeded' || p.phase === 'Failed') continue;
    out.push(`Pod ${p.namespace}/${p.name} has no status.podIP: it is not an endpoint, so no policy selects it and no traffic is attributed to it`);
  }
}

/** Services with a selector that matches no endpoint (and no EndpointSlices): nothing to send to. */
export function servicesWithoutPods(infos: readonly ServiceInfo[], services: readonly Service[], out: string[]): void {
  let empty: Set<string> | undefined;
  for (const s of services) if (s.endpoints.length === 0 && s.sliceBackends === undefined) (empty ??= new Set()).add(`${s.namespace}/${s.name}`);
  if (empty === undefined) return;
  for (const i of infos) {
    if (i.selector === undefined || Object.keys(i.selector).length === 0 || !empty.has(`${i.namespace}/${i.name}`)) continue;
    const sel = Object.entries(i.selector).map(([k, v]) => `${k}=${v}`).join(',');
    out.push(`Service ${i.namespace}/${i.name} selects no pod: no running pod with an IP in ${i.namespace} has labels ${sel}`);
  }
}

/**
 * Policies none of whose rules selects an endpoint: they enforce nothing. Only said when there are
 * endpoints at all (a policy file checked without its cluster selects nothing by design).
 */
export function policiesSelectingNothing(rules: readonly CompiledRule[], podIdentities: readonly IdentityEntry[], out: string[]): void {
  if (podIdentities.length === 0) return;
  const index = new IdentityIndex(podIdentities);
  const policies = new Set<string>();
  const selecting = new Set<string>();
  for (const r of rules) {
    const o = r.origin;
    if (o === undefined) continue;
    const key = `${o.kind} ${o.namespace === undefined ? o.name : `${o.namespace}/${o.name}`}`;
    policies.add(key);
    if (selecting.has(key)) continue;
    const subject = r.spec.subject;
    if (index.candidates(subject).some((id) => matchRequirements(subject, id.labelSet))) selecting.add(key);
  }
  for (const key of policies) if (!selecting.has(key)) out.push(`${key} selects no endpoint: its endpointSelector (or podSelector) matches no pod`);
}
