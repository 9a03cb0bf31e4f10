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

t.test('a headerMatches edit may not touch framing or connection fields, nor carry CR/LF', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'l7g-edit-'));
  const policy = (name: string, match: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - method: GET
          headerMatches:
          - ${match}
`;
  const cases: [string, string, RegExp | undefined][] = [
    ['cl-add', '{name: Content-Length, value: "5", mismatch: ADD}', /mismatch ADD cannot edit "Content-Length": it frames the message/],
    ['te-replace', '{name: transfer-encoding, value: chunked, mismatch: REPLACE}', /mismatch REPLACE cannot edit "transfer-encoding"/],
    ['conn-delete', '{name: Connection, mismatch: DELETE}', /mismatch DELETE cannot edit "Connection"/],
    ['crlf', '{name: x-token, value: "a\\r\\nx-evil: 1", mismatch: ADD}', /cannot hold CR, LF or NUL/],
    ['name-space', '{name: "Content-Length ", value: "5", mismatch: ADD}', /"Content-Length " is not a header field name/],
    ['cl-log', '{name: Content-Length, value: "5", mismatch: LOG}', undefined],
    ['token-add', '{name: x-token, value: abc, mismatch: ADD}', undefined],
  ];
  for (const [name, match, problem] of cases) {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, policy(name, match));
    const r = await validatePaths([file]);
    if (problem === undefined) t.equal(r.valid, true, `${name}: valid`);
    else {
      t.equal(r.valid, false, `${name}: refused`);
      t.match(r.policies[0]?.reasons.join('\n'), problem, name);
    }
  }
});
