/**
 * A reload re-validates only objects that changed (policy/build.ts `validated`): unchanged parsed
 * objects keep their validated rules; a changed object, or the same one under another name or
 * file, is validated again, and an invalid one is still rejected every time.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildPolicyState } from '../../policy/build.js';
import type { CompiledPolicyState } from '../../policy/state.js';
import { CLUSTER, MANIFESTS, objects, OPTS } from './helpers.js';

const cluster = objects(readFileSync(CLUSTER, 'utf8'), 'cluster.yaml');
const l7 = objects(readFileSync(MANIFESTS + 'examples__minikube__sw_l3_l4_l7_policy.yaml', 'utf8'), 'l7.yaml');
const specs = (s: unknown) => (s as CompiledPolicyState).traceContext().rules.map((r) => r.spec);

t.test('unchanged objects keep their validated rules; others are validated again', async (t) => {
  const a = buildPolicyState([...cluster, ...l7], OPTS);
  const b = buildPolicyState([...cluster, ...l7], { ...OPTS, previous: a, revision: 2 });
  t.equal(specs(b).length, 1);
  t.equal(specs(b)[0], specs(a)[0], 'the same parsed object: its validated rule is reused');
  const moved = l7.map((o) => ({ ...o, file: 'elsewhere.yaml' }));
  const c = buildPolicyState([...cluster, ...moved], { ...OPTS, previous: b, revision: 3 });
  t.not(specs(c)[0], specs(a)[0], 'the same raw object from another file is validated again (problems name the file)');
  t.same(specs(c)[0], specs(a)[0], 'to the same rule');
  const reparsed = objects(readFileSync(MANIFESTS + 'examples__minikube__sw_l3_l4_l7_policy.yaml', 'utf8'), 'l7.yaml');
  const d = buildPolicyState([...cluster, ...reparsed], { ...OPTS, previous: c, revision: 4 });
  t.not(specs(d)[0], specs(a)[0], 'a newly parsed object is validated');
});

t.test('an invalid object is rejected on every build, cached or not', async (t) => {
  const bad = objects('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bad}\nspec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: "70000"}]}]}]}\n', 'bad.yaml');
  for (let i = 0; i < 2; i++) t.throws(() => buildPolicyState([...cluster, ...bad], OPTS), { code: 'L7G_ERR_POLICY_INVALID' }, `build ${i + 1}`);
});
