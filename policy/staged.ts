/**
 * Staged policies (docs/audit.md): a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy with the
 * annotation `l7guard.io/mode: audit` is left out of the enforced set and compiled beside it, as
 * the enforced objects plus that one policy. The request path compares the two decisions
 * (proxy/exchange/staged.ts); removing the annotation promotes the policy at the next reload.
 */
import { ProblemCodes, type LoadProblem } from './errors.js';
import type { SourcedObject } from './load.js';
import type { PolicyState, RuleRef, StagedPolicy } from './model.js';

export const MODE_ANNOTATION = 'l7guard.io/mode';

const STAGEABLE = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy']);

export interface StagedSplit {
  readonly enforced: SourcedObject[];
  readonly staged: SourcedObject[];
  readonly problems: LoadProblem[];
}

function modeOf(o: SourcedObject): unknown {
  const meta = o.raw['metadata'];
  if (typeof meta !== 'object' || meta === null) return undefined;
  const ann = (meta as Record<string, unknown>)['annotations'];
  if (typeof ann !== 'object' || ann === null) return undefined;
  return (ann as Record<string, unknown>)[MODE_ANNOTATION];
}

/** The objects in force and the staged policies; `enforce` (or no annotation) is in force. */
export function splitStaged(input: readonly SourcedObject[]): StagedSplit {
  const out: StagedSplit = { enforced: [], staged: [], problems: [] };
  for (const o of input) {
    const mode = modeOf(o);
    if (mode === undefined || mode === 'enforce') {
      out.enforced.push(o);
      continue;
    }
    const problem = (message: string): LoadProblem => ({
      code: ProblemCodes.L7G_ERR_POLICY_VALUE, file: o.file, line: o.line,
      object: o.namespace === undefined ? `${o.kind} ${o.name}` : `${o.kind} ${o.namespace}/${o.name}`,
      field: `metadata.annotations["${MODE_ANNOTATION}"]`, message,
    });
    if (mode !== 'audit') out.problems.push(problem(`must be "audit" (staged) or "enforce", not ${JSON.stringify(mode)}`));
    else if (!STAGEABLE.has(o.kind)) out.problems.push(problem(`only a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy can be staged, not a ${o.kind}`));
    else out.staged.push(o);
  }
  return out;
}

/** The staged policy `o`, given `candidate`: the enforced objects plus `o`, built. */
export function stagedPolicy(o: SourcedObject, candidate: PolicyState): StagedPolicy {
  const kind = o.kind as StagedPolicy['kind'];
  const mine = (r: { readonly kind: string; readonly name: string; readonly file: string }) => r.kind === kind && r.name === o.name && r.file === o.file;
  const sources = (candidate.policyRules ?? []).filter(mine);
  const namespace = sources[0]?.namespace;
  const hasSpec = o.raw['spec'] !== undefined && o.raw['spec'] !== null;
  // Every rule of the policy, per direction it has rules for: the provenance of a default deny the
  // policy brings, which no rule of it names (nothing selected the peer).
  const whole: Record<'INGRESS' | 'EGRESS', RuleRef[]> = { INGRESS: [], EGRESS: [] };
  for (const r of sources) {
    const spec = (typeof r.spec === 'object' && r.spec !== null ? r.spec : {}) as Record<string, unknown>;
    const field = hasSpec ? (r.ruleIndex === 0 ? 'spec' : `specs[${r.ruleIndex - 1}]`) : `specs[${r.ruleIndex}]`;
    const base = { kind, namespace, name: o.name, ruleIndex: r.ruleIndex, field };
    if (spec['ingress'] !== undefined || spec['ingressDeny'] !== undefined) whole.INGRESS.push({ ...base, direction: 'INGRESS' });
    if (spec['egress'] !== undefined || spec['egressDeny'] !== undefined) whole.EGRESS.push({ ...base, direction: 'EGRESS' });
  }
  const fallback = { INGRESS: Object.freeze(whole.INGRESS), EGRESS: Object.freeze(whole.EGRESS) };
  const cache = new WeakMap<readonly RuleRef[], readonly RuleRef[]>();
  return {
    kind, namespace, name: o.name, key: `${kind}/${namespace ?? ''}/${o.name}`, state: candidate,
    own(by, direction) {
      if (by === undefined || by.length === 0) return fallback[direction];
      let hit = cache.get(by);
      if (hit === undefined) {
        const own = by.filter((r) => r.kind === kind && r.name === o.name && r.namespace === namespace);
        hit = own.length > 0 ? Object.freeze(own) : fallback[direction];
        cache.set(by, hit);
      }
      return hit;
    },
  };
}
