/** Shared helpers for policy tests: build states from YAML text and fixture files. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { starWarsYaml } from '../../fixtures/star-wars.js';
import { buildPolicyState, type BuildOptions } from '../../policy/build.js';
import { PolicyLoadError, type LoadProblem } from '../../policy/errors.js';
import { parseText, type SourcedObject } from '../../policy/load.js';
import type { Endpoint, L7Request, PolicyState, PortDecision } from '../../policy/model.js';

/** Fixtures live in the source tree; tests run from dist/test/policy/. */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
export const MANIFESTS = FIXTURES + 'manifests/';
/**
 * The Star Wars cluster (fixtures/star-wars.ts) once scheduled, with its Namespace, as one file: the
 * recorded run's Pod names, addresses of these tests' own.
 */
export const CLUSTER = join(mkdtempSync(join(tmpdir(), 'l7guard-policy-test-')), 'starwars-cluster.yaml');
writeFileSync(CLUSTER, starWarsYaml({
  addresses: { deathstar: ['10.0.1.10', '10.0.1.11'], tiefighter: '10.0.1.20', xwing: '10.0.1.30', clusterIP: '10.96.0.10' },
  namespaceObject: true,
}));

export const OPTS: BuildOptions = { clusterName: 'default', nodeIPs: ['192.168.49.2'], allowLocalhost: 'always', revision: 1 };

export function objects(yamlText: string, file = 'inline.yaml'): SourcedObject[] {
  const problems: LoadProblem[] = [];
  const out = parseText(file, yamlText, problems);
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return out;
}

export function build(yamlTexts: string[], opts: Partial<BuildOptions> = {}): PolicyState {
  return buildPolicyState(yamlTexts.flatMap((t, i) => objects(t, `inline-${i}.yaml`)), { ...OPTS, ...opts });
}

export function pod(state: PolicyState, name: string, ns = 'default'): Endpoint {
  const e = state.endpoints.find((x) => x.name === name && x.namespace === ns);
  if (!e) throw new Error(`no endpoint ${ns}/${name}`);
  return e;
}

export function req(method: string, path: string, host: string | undefined = 'deathstar', headers: string[] = []): L7Request {
  return { method, path, host, headers };
}

/** "drop:POLICY_DENIED:INGRESS" | "allow" | "200" | "403" for one request. */
export function verdict(d: PortDecision, r?: L7Request): string {
  if (d.kind === 'drop') return `drop:${d.reason}:${d.direction}`;
  if (d.kind === 'allow') return 'allow';
  if (!r) return 'l7';
  return d.check(r).allowed ? '200' : '403';
}

/** Problems of a failed build, or [] when it succeeded. */
export function problemsOf(fn: () => unknown): readonly LoadProblem[] {
  try {
    fn();
    return [];
  } catch (e) {
    if (e instanceof PolicyLoadError) return e.problems;
    throw e;
  }
}
