/** `policy validate` report (VALID True/False per policy, like `kubectl get cnp`). */
import t from 'tap';
import { validatePaths } from '../../policy/index.js';
import { MANIFESTS } from './helpers.js';

t.test('validate the shared manifests', async (t) => {
  const r = await validatePaths([MANIFESTS]);
  t.equal(r.valid, false, 'not all valid');
  t.same(r.fileErrors, [], 'no file errors');
  const invalid = r.policies.filter((p) => !p.valid).map((p) => p.name).sort();
  t.same(invalid, ['and-statement-policy', 'client-egress-l7-http', 'or-statement-policy']);
  const and = r.policies.find((p) => p.name === 'and-statement-policy');
  t.match(and?.reasons[0], /operator: invalid operator "in"/);
  // duplicate names: l7-rule (x3) and rule1 (x3) collapse to the last loaded object of each
  t.equal(r.policies.filter((p) => p.name === 'rule1').length, 1, 'rule1 once');
  const ok = await validatePaths([MANIFESTS + 'examples__minikube__sw_l3_l4_l7_policy.yaml']);
  t.same([ok.valid, ok.policies.length, ok.policies[0]?.namespace], [true, 1, 'default']);
  const missing = await validatePaths([MANIFESTS + 'nope.yaml']);
  t.same([missing.valid, missing.fileErrors[0]?.code], [false, 'L7G_ERR_POLICY_READ']);
});
