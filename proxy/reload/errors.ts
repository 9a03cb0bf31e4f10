/**
 * Errors of the admin object API and the reload pipeline: one table, stable codes, the HTTP status
 * the admin API answers with. Validation problems travel as `problems` (policy/errors.ts LoadProblem).
 */
import type { LoadProblem } from '../../policy/index.js';
import { ProxyError } from '../errors.js';

export const APPLY_ERRORS = {
  L7G_ERR_APPLY_BAD_PATH: [404, 'expected /v1/{kind}/{namespace}/{name} ("_" as namespace for cluster-scoped kinds)'],
  L7G_ERR_APPLY_UNKNOWN_KIND: [404, 'the server does not have this resource type'],
  L7G_ERR_APPLY_BAD_BODY: [400, 'the body is not one Kubernetes object in YAML or JSON'],
  L7G_ERR_APPLY_MISMATCH: [400, 'the body does not match the URL'],
  L7G_ERR_APPLY_TOO_LARGE: [413, 'the body exceeds the admin API limit'],
  L7G_ERR_APPLY_NOT_FOUND: [404, 'no such object applied through the API'],
  /** The objects do not validate or compile: nothing was swapped, the running revision stays. */
  L7G_ERR_APPLY_INVALID: [422, 'the object is invalid; the running rules stay in force'],
  L7G_ERR_RELOAD_CLOSED: [503, 'the proxy is draining; no more reloads'],
} as const satisfies Record<string, readonly [number, string]>;

export type ApplyErrorCode = keyof typeof APPLY_ERRORS;

export class ApplyError extends ProxyError {
  declare readonly code: ApplyErrorCode;
  readonly status: number;
  readonly problems: readonly LoadProblem[];
  constructor(code: ApplyErrorCode, detail?: string, problems: readonly LoadProblem[] = []) {
    const [status, message] = APPLY_ERRORS[code];
    super(code, detail === undefined ? message : `${message}: ${detail}`);
    this.status = status;
    this.problems = problems;
  }
}
