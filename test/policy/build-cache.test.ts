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

t.test('compiled rules are reused only when they read no Secret: a changed Secret value is enforced', async (t) => {
  const policy = objects(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: token, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - method: POST
          path: /v1/request-landing
          headerMatches: [{name: x-token, secret: {name: landing-token}}]
`, 'token.yaml');
  const secret = (value: string) => objects(`apiVersion: v1\nkind: Secret\nmetadata: {name: landing-token, namespace: default}\nstringData: {token: ${value}}\n`, 'secret.yaml');
  const allowed = (s: ReturnType<typeof buildPolicyState>, token: string): boolean => {
    const ds = s.endpoints.find((e) => e.name.startsWith('deathstar'))!;
    const d = s.decide(s.identify(s.endpoints.find((e) => e.name === 'tiefighter')!.ips[0]!), ds, 80);
    return d.kind === 'l7' && d.check({ method: 'POST', path: '/v1/request-landing', host: 'deathstar', headers: ['x-token', token] }).allowed;
  };
  const a = buildPolicyState([...cluster, ...policy, ...secret('alpha')], OPTS);
  t.ok(allowed(a, 'alpha') && !allowed(a, 'beta'), 'revision 1 wants the first value');
  const b = buildPolicyState([...cluster, ...policy, ...secret('beta')], { ...OPTS, previous: a, revision: 2 });
  t.equal(specs(b)[0], specs(a)[0], 'the validated rule is reused (the policy object did not change)');
  t.ok(allowed(b, 'beta') && !allowed(b, 'alpha'), 'revision 2 enforces the new Secret value');
  const plain = buildPolicyState([...cluster, ...l7], OPTS);
  const again = buildPolicyState([...cluster, ...l7], { ...OPTS, previous: plain, revision: 2 });
  const rules = (s: unknown) => (s as CompiledPolicyState).traceContext().rules;
  t.equal(rules(again)[0], rules(plain)[0], 'a rule that reads no Secret is reused compiled');
  t.not(rules(b)[0], rules(a)[0], 'one that reads a Secret is compiled again');
});
