/**
 * The Secrets that policies reference, read from the policies as the API server returns them:
 * `terminatingTLS.secret`, `originatingTLS.secret` and `headerMatches[].secret` of CNP/CCNP rules
 * (an absent namespace is the policy's own, `default` for a CCNP, as policy/schema.ts resolves it).
 * Only these are watched, each on its own (a field selector on its name), so l7guard never lists
 * or watches every Secret of the cluster.
 */
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const DIRECTIONS = ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const;

/** "namespace/name" of every Secret `policy` (a CNP or CCNP object) references. */
export function secretRefs(policy: Obj, policyNamespace: string | undefined, out: Set<string>): void {
  const ns = policyNamespace ?? 'default';
  const add = (s: unknown): void => {
    const so = obj(s);
    if (so === undefined || typeof so['name'] !== 'string' || so['name'] === '') return;
    const sns = typeof so['namespace'] === 'string' && so['namespace'] !== '' ? so['namespace'] : ns;
    out.add(`${sns}/${so['name']}`);
  };
  const specs = [obj(policy['spec']), ...arr(policy['specs']).map(obj)];
  for (const spec of specs) {
    if (spec === undefined) continue;
    for (const dir of DIRECTIONS) {
      for (const rule of arr(spec[dir])) {
        for (const tp of arr(obj(rule)?.['toPorts'])) {
          const port = obj(tp);
          if (port === undefined) continue;
          add(obj(port['terminatingTLS'])?.['secret']);
          add(obj(port['originatingTLS'])?.['secret']);
          for (const h of arr(obj(port['rules'])?.['http'])) {
            for (const m of arr(obj(h)?.['headerMatches'])) add(obj(m)?.['secret']);
          }
        }
      }
    }
  }
}
