/**
 * `l7guard policy validate -f PATH`: per policy object VALID True/False with reasons, like
 * `kubectl get cnp`, plus file-level problems. Never throws for bad input.
 */
import { buildPolicyState } from './build.js';
import { parseObjects } from './build-rules.js';
import { filePosition, formatProblem, PolicyLoadError, type LoadProblem } from './errors.js';
import { locateProblems } from './locate.js';
import { readObjects, type SourcedObject } from './load.js';

type ParsedResults = ReturnType<typeof parseObjects>['results'];

export interface PolicyValidation {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly file: string;
  readonly valid: boolean;
  readonly reasons: readonly string[];
}

export interface ValidationReport {
  /** One entry per policy object (and per object of an unknown cilium.io kind). */
  readonly policies: readonly PolicyValidation[];
  /** Problems not tied to one policy: unreadable files, YAML syntax errors. */
  readonly fileErrors: readonly LoadProblem[];
  readonly warnings: readonly string[];
  /** True when every policy is valid and there are no file errors (exit code 0). */
  readonly valid: boolean;
}

export async function validatePaths(paths: string[]): Promise<ValidationReport> {
  const texts = new Map<string, string>();
  const { objects, problems, warnings } = await readObjects(paths, texts);
  const parsed = parseObjects(objects);
  const textOf = (f: string) => texts.get(f);
  const policies: PolicyValidation[] = parsed.results.map(({ object: o, problems: ps }) => ({
    kind: o.kind,
    namespace: o.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (o.namespace ?? 'default'),
    name: o.name,
    file: o.file,
    valid: ps.length === 0,
    reasons: locateProblems(ps, textOf).map((p) => `${filePosition(p)} ${[p.field, p.message].filter(Boolean).join(': ')}`),
  }));
  return {
    policies,
    fileErrors: problems,
    warnings: withBuildWarnings([...warnings, ...parsed.warnings], objects, parsed.results),
    valid: problems.length === 0 && policies.every((p) => p.valid),
  };
}

export { formatProblem };

/**
 * `known` and what the build of the valid objects adds: inputs that yield nothing (a Pod without an
 * IP, a Service or a policy that selects no pod; policy/build-warnings.ts), contested pod IPs.
 */
function withBuildWarnings(known: string[], objects: readonly SourcedObject[], results: ParsedResults): string[] {
  const invalid = new Set(results.filter((r) => r.problems.length > 0).map((r) => r.object));
  let state;
  try {
    state = buildPolicyState(objects.filter((o) => !invalid.has(o)), { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', revision: 1 });
  } catch (e) {
    // Problems only a build finds (a TLS Secret missing) are serve's to report.
    if (e instanceof PolicyLoadError) return known;
    throw e;
  }
  const seen = new Set(known);
  return [...known, ...state.warnings.filter((w) => !seen.has(w))];
}
