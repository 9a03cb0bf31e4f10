/**
 * Typed errors of the policy layer: one table of stable codes. Callers branch on `code`, never on
 * message text (after undici lib/core/errors.js).
 */

export const PolicyErrorCodes = {
  /** A load or build failed; `problems` lists every reason. */
  L7G_ERR_POLICY_INVALID: 'L7G_ERR_POLICY_INVALID',
} as const;

/** Stable codes of individual problems inside a PolicyLoadError. */
export const ProblemCodes = {
  /** A file could not be read (missing, unreadable, not a file or folder). */
  L7G_ERR_POLICY_READ: 'L7G_ERR_POLICY_READ',
  /** YAML/JSON syntax error. */
  L7G_ERR_POLICY_PARSE: 'L7G_ERR_POLICY_PARSE',
  /** A field not in the CRD/Kubernetes schema. */
  L7G_ERR_POLICY_UNKNOWN_FIELD: 'L7G_ERR_POLICY_UNKNOWN_FIELD',
  /** A value the CRD (or Cilium's sanitizer) rejects. */
  L7G_ERR_POLICY_VALUE: 'L7G_ERR_POLICY_VALUE',
  /** A valid Cilium feature that l7guard cannot enforce: rejected, never silently ignored. */
  L7G_ERR_POLICY_UNSUPPORTED: 'L7G_ERR_POLICY_UNSUPPORTED',
  /** A cilium.io kind l7guard does not know. */
  L7G_ERR_POLICY_KIND: 'L7G_ERR_POLICY_KIND',
} as const;

export type ProblemCode = (typeof ProblemCodes)[keyof typeof ProblemCodes];

export interface LoadProblem {
  readonly code: ProblemCode;
  readonly file: string;
  /** "Kind ns/name" (or "Kind name" when cluster-scoped); undefined for file-level problems. */
  readonly object: string | undefined;
  /** Field path inside the object, e.g. "spec.ingress[0].toPorts[0].rules.http[0].path". */
  readonly field: string | undefined;
  /** 1-based line in the file, when known: the object's, or the field's once located (policy/locate.ts). */
  readonly line: number | undefined;
  /** 1-based column of the field, when located. */
  readonly column?: number | undefined;
  readonly message: string;
}

export function formatProblem(p: LoadProblem): string {
  const where = [filePosition(p), p.object, p.field].filter(Boolean).join(' ');
  return `${where}: ${p.message}`;
}

/** `file`, `file:line` or `file:line:column`: what editors and terminals turn into a link. */
export function filePosition(p: LoadProblem): string {
  if (p.line === undefined) return p.file;
  return p.column === undefined ? `${p.file}:${p.line}` : `${p.file}:${p.line}:${p.column}`;
}

const kBrand = Symbol.for('l7guard.error.L7G_ERR_POLICY_INVALID');

export class PolicyLoadError extends Error {
  readonly code = PolicyErrorCodes.L7G_ERR_POLICY_INVALID;
  readonly problems: readonly LoadProblem[];
  readonly [kBrand] = true;

  constructor(problems: readonly LoadProblem[]) {
    super(`policy load failed with ${problems.length} problem(s):\n` + problems.map((p) => '  ' + formatProblem(p)).join('\n'));
    this.name = 'PolicyLoadError';
    this.problems = problems;
  }

  // instanceof across duplicated copies of the package (undici's pattern).
  static override [Symbol.hasInstance](obj: unknown): boolean {
    return typeof obj === 'object' && obj !== null && (obj as Record<symbol, unknown>)[kBrand] === true;
  }
}
