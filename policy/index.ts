/**
 * Public API of the policy layer.
 */
import { buildPolicyState, type BuildOptions } from './build.js';
import { loadObjects } from './load.js';
import type { PolicyState } from './model.js';

export { buildPolicyState, buildPolicyStateSliced, type BuildOptions } from './build.js';
export { loadObjects, expand as expandPaths, parseText, objectKey, type SourcedObject } from './load.js';
export { validatePaths, type ValidationReport, type PolicyValidation } from './validate.js';
export { PolicyLoadError, PolicyErrorCodes, ProblemCodes, filePosition, formatProblem, type LoadProblem } from './errors.js';
export { locateInFiles, locateProblems } from './locate.js';
export { RESERVED_IDS } from './identity.js';
export type * from './model.js';

/** Reads `-f` paths and builds the state; throws PolicyLoadError on any problem. */
export async function loadPolicyState(paths: string[], opts: BuildOptions): Promise<PolicyState> {
  return buildPolicyState(await loadObjects(paths), opts);
}
