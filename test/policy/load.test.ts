/**
 * Loading: every shared manifest fixture loads or is rejected as expected; bad YAML of each kind;
 * folders (lexical order, dot-entries, ConfigMap `..data` symlinks); List; duplicates.
 */
import { mkdtempSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildPolicyState } from '../../policy/build.js';
import { type LoadProblem, PolicyLoadError } from '../../policy/errors.js';
import { loadObjects, loadPolicyState } from '../../policy/index.js';
import { CLUSTER, MANIFESTS, OPTS } from './helpers.js';

async function problems(paths: string[]): Promise<readonly LoadProblem[]> {
  try {
    await loadPolicyState(paths, OPTS);
    return [];
  } catch (e) {
    if (e instanceof PolicyLoadError) return e.problems;
    throw e;
  }
}

t.test('shared manifest fixtures', async (t) => {
  // expected: [] = loads; otherwise the field path and a fragment of the message of each problem
  const expected: Record<string, string[]> = {
    // docs/semantics.md#where-upstream-leaves-room: operator "in" is rejected (CRD enum In|NotIn|Exists|DoesNotExist)
    'examples__policies__l3__match-expressions__and-statement.yaml': ['spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: invalid operator "in"', 'spec.ingress[0].fromEndpoints[0].matchExpressions[1].operator: invalid operator "in"'],
    'examples__policies__l3__match-expressions__or-statement.yaml': ['spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: invalid operator "in"', 'spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator: invalid operator "in"'],
    // toFQDNs: unsupported, never ignored
    'cilium-cli__connectivity__builder__manifests__client-egress-l7-http.yaml': ['spec.egress[1].toFQDNs: unsupported'],
  };
  for (const f of readdirSync(MANIFESTS).sort()) {
    const got = (await problems([CLUSTER, MANIFESTS + f])).map((p) => `${p.field}: ${p.message}`);
    const want = expected[f] ?? [];
    t.equal(got.length, want.length, `${f}: problem count (${got.join(' | ')})`);
    want.forEach((w, i) => t.ok(got[i]?.startsWith(w), `${f}: ${w}`));
  }
  // templated values in matchExpressions are just strings (matchheader-secret.yaml)
  const s = await loadPolicyState([MANIFESTS + 'cilium-cli__connectivity__builder__manifests__client-egress-l7-http-matchheader-secret.yaml'], OPTS);
  t.equal(s.objects[0]?.name, 'client-egress-l7-http-matchheader-secret', 'templated policy loads');
  const app = await loadPolicyState([MANIFESTS + 'examples__minikube__http-sw-app.yaml'], OPTS);
  t.same(app.warnings, [
    'Deployment default/deathstar is not expanded: only `l7guard demo` turns Deployments into Pods',
    'Pod default/tiefighter has no status.podIP: it is not an endpoint, so no policy selects it and no traffic is attributed to it',
    'Pod default/xwing has no status.podIP: it is not an endpoint, so no policy selects it and no traffic is attributed to it',
    'Service default/deathstar selects no pod: no running pod with an IP in default has labels org=empire,class=deathstar',
  ], 'the Deployment is not expanded; Pods without an IP and a Service without pods are said');
  t.equal(app.endpoints.length, 0, 'pods without an IP are not endpoints');
});

t.test('bad YAML of each kind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'l7g-load-'));
  const cnp = (spec: string, name = 'p') => `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}}\nspec:\n  endpointSelector: {}\n${spec}`;
  const rows: { name: string; text: string; code: string; field?: string; line?: number; message: string }[] = [
    { name: 'syntax error with line', text: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n', code: 'L7G_ERR_POLICY_PARSE', line: 5, message: 'YAML syntax error' },
    { name: 'unknown field in spec', text: cnp('  ingres: []'), code: 'L7G_ERR_POLICY_UNKNOWN_FIELD', field: 'spec.ingres', message: 'unknown field "ingres"; did you mean "ingress"?' },
    { name: 'unknown top-level field', text: `${cnp('')}spce: {}\n`, code: 'L7G_ERR_POLICY_UNKNOWN_FIELD', field: 'spce', message: 'unknown field "spce"; did you mean "spec"?' },
    { name: 'unknown field deep', text: cnp('  ingress:\n  - toPorts:\n    - ports: [{port: "80"}]\n      rules:\n        http:\n        - paht: /x'), code: 'L7G_ERR_POLICY_UNKNOWN_FIELD', field: 'spec.ingress[0].toPorts[0].rules.http[0].paht', message: 'unknown field' },
    { name: 'bad regex', text: cnp('  ingress:\n  - toPorts:\n    - ports: [{port: "80"}]\n      rules:\n        http:\n        - path: "(?=x)"'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].rules.http[0].path', message: 'invalid RE2 regex' },
    { name: 'bad port', text: cnp('  ingress: [{toPorts: [{ports: [{port: "70000"}]}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].ports[0].port', message: 'out of range' },
    { name: 'endPort < port', text: cnp('  ingress: [{toPorts: [{ports: [{port: "80", endPort: 70}]}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].ports[0].endPort', message: 'lower than port' },
    { name: 'bad protocol', text: cnp('  ingress: [{toPorts: [{ports: [{port: "80", protocol: HTTP}]}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].ports[0].protocol', message: 'invalid protocol' },
    { name: 'bad CIDR', text: cnp('  ingress: [{fromCIDR: [10.0.0.0/33]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].fromCIDR[0]', message: 'invalid CIDR' },
    { name: 'unknown entity', text: cnp('  ingress: [{fromEntities: [galaxy]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].fromEntities[0]', message: 'unknown entity' },
    { name: 'bad mismatch action', text: cnp('  ingress: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{headerMatches: [{name: X, mismatch: DROP}]}]}}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch', message: 'invalid mismatch action' },
    { name: 'L7 in a deny section', text: cnp('  ingressDeny: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{}]}}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingressDeny[0].toPorts[0].rules', message: 'not allowed in a deny section' },
    { name: 'http mixed with kafka', text: cnp('  ingress: [{toPorts: [{ports: [{port: "80"}], rules: {http: [{}], kafka: [{topic: t}]}}]}]'), code: 'L7G_ERR_POLICY_UNSUPPORTED', field: 'spec.ingress[0].toPorts[0].rules.kafka', message: 'unsupported' },
    { name: 'named port in policy', text: cnp('  ingress: [{toPorts: [{ports: [{port: http}]}]}]'), code: 'L7G_ERR_POLICY_UNSUPPORTED', field: 'spec.ingress[0].toPorts[0].ports[0].port', message: 'named port' },
    { name: 'terminatingTLS with a missing Secret', text: cnp('  ingress: [{toPorts: [{ports: [{port: "443"}], terminatingTLS: {secret: {name: x}}}]}]'), code: 'L7G_ERR_POLICY_VALUE', field: 'spec.ingress[0].toPorts[0].terminatingTLS.secret', message: 'Secret default/x not found' },
    { name: 'nodeSelector unsupported', text: 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: h}\nspec:\n  nodeSelector: {}\n  ingress: [{}]', code: 'L7G_ERR_POLICY_UNSUPPORTED', field: 'spec.nodeSelector', message: 'unsupported' },
    { name: 'icmps unsupported', text: cnp('  ingress: [{icmps: [{fields: [{type: 8}]}]}]'), code: 'L7G_ERR_POLICY_UNSUPPORTED', field: 'spec.ingress[0].icmps', message: 'unsupported' },
    { name: 'unknown cilium kind', text: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicyy\nmetadata: {name: x}\nspec: {}', code: 'L7G_ERR_POLICY_KIND', field: 'kind', message: 'unknown cilium.io kind' },
    { name: 'NetworkPolicy bad policyType', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n}\nspec:\n  podSelector: {}\n  policyTypes: [Inbound]', code: 'L7G_ERR_POLICY_VALUE', field: 'spec.policyTypes[0]', message: 'invalid policy type' },
  ];
  rows.forEach((r, i) => {
    const f = join(dir, `bad-${i}.yaml`);
    writeFileSync(f, r.text);
    t.test(r.name, async (t) => {
      const ps = await problems([f]);
      t.ok(ps.length >= 1, 'rejected');
      const p = ps[0] as LoadProblem;
      t.equal(p.code, r.code, 'code');
      t.equal(p.file, f, 'file');
      if (r.field) t.equal(p.field, r.field, 'field path');
      if (r.line) t.equal(p.line, r.line, 'line');
      t.match(p.message, r.message, 'message');
      if (p.code !== 'L7G_ERR_POLICY_PARSE') t.match(p.object ?? '', /^(CiliumNetworkPolicy default\/p|CiliumClusterwideNetworkPolicy h|CiliumNetworkPolicyy default\/x|NetworkPolicy default\/n)$/, 'object');
    });
  });
  // All problems are reported at once, and the error carries a stable code
  const two = join(dir, 'two.yaml');
  writeFileSync(two, cnp('  ingress: [{fromEntities: [galaxy], fromCIDR: [nope]}]'));
  try {
    await loadPolicyState([two], OPTS);
    t.fail('should throw');
  } catch (e) {
    t.equal((e as PolicyLoadError).code, 'L7G_ERR_POLICY_INVALID');
    t.equal((e as PolicyLoadError).problems.length, 2, 'both problems listed');
    t.match((e as Error).message, /galaxy[\s\S]*nope/, 'message lists all problems');
  }
});

t.test('folders, List, duplicates, multi-document', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'l7g-dir-'));
  const p = (name: string, port: string) => `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}}\nspec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: "${port}"}]}]}]\n`;
  writeFileSync(join(dir, 'b.yaml'), p('same', '2'));
  writeFileSync(join(dir, 'a.yml'), p('same', '1') + '---\n' + p('other', '3'));
  writeFileSync(join(dir, '.hidden.yaml'), 'this: is: not: yaml: [');
  writeFileSync(join(dir, 'notes.txt'), 'ignored');
  // ConfigMap mount layout: ..2024/x.json, ..data -> ..2024, c.json -> ..data/c.json
  mkdirSync(join(dir, '..2024_01_01'));
  writeFileSync(join(dir, '..2024_01_01', 'c.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-from-json' } }] }));
  symlinkSync('..2024_01_01', join(dir, '..data'));
  symlinkSync('..data/c.json', join(dir, 'c.json'));
  const objs = await loadObjects([dir]);
  t.same(objs.map((o) => `${o.kind}/${o.name}@${o.file.slice(dir.length + 1)}`), [
    'CiliumNetworkPolicy/same@b.yaml', // a.yml first (lexical), replaced by b.yaml
    'CiliumNetworkPolicy/other@a.yml',
    'Namespace/ns-from-json@c.json',
  ]);
  t.equal(objs[0]?.line, 1, 'line of the object');
  t.equal(objs[1]?.line, 8, 'line of the second document');
  // later paths win over earlier ones
  const later = await loadObjects([join(dir, 'b.yaml'), join(dir, 'a.yml')]);
  t.match(JSON.stringify(later.find((o) => o.name === 'same')?.raw), /"port":"1"/, 'later path wins');
  // kind: List as kubectl get -o yaml prints
  const s = buildPolicyState(await loadObjects([CLUSTER]), OPTS);
  t.equal(s.endpoints.length, 4, 'List items loaded');
  // a missing path is a read problem
  t.equal((await problems([join(dir, 'missing.yaml')]))[0]?.code, 'L7G_ERR_POLICY_READ');
});

t.test('the three parsers agree: JSON, plain YAML (fast path) and YAML with anchors (guarded path)', async (t) => {
  const { parseText } = await import('../../policy/load.js');
  const obj = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1', labels: { a: 'x' } } };
  const forms: [string, string][] = [
    ['json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [obj] })],
    ['yaml', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n1\n  labels: {a: x}\n'],
    ['yaml+anchor', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n1\n  labels: &l {a: x}\n'],
    // Looks like JSON but is a YAML flow mapping: JSON.parse fails, YAML reads it.
    ['yaml-flow', '{apiVersion: v1, kind: Namespace, metadata: {name: n1, labels: {a: x}}}'],
  ];
  for (const [name, text] of forms) {
    const problems: unknown[] = [];
    const got = parseText(`f.${name}`, text, problems as never);
    t.same(problems, [], `${name}: no problems`);
    t.same(got.map((o) => o.raw), [obj], `${name}: same object`);
  }
  // Each form really takes the path meant for it (the outputs above could agree through one path).
  const { parseJson, parseFast } = await import('../../policy/load.js');
  t.not(parseJson('f.json', forms[0]![1], []), undefined, 'JSON is read by JSON.parse');
  t.equal(parseJson('f.yaml', forms[3]![1], []), undefined, 'a YAML flow mapping is not JSON');
  t.not(parseFast('f.yaml', forms[1]![1], []), undefined, 'plain YAML is read by the fast path');
  t.equal(parseFast('bad.yaml', 'a: [unclosed\n', []), undefined, 'the fast path declines a syntax error');
  const bad: unknown[] = [];
  parseText('bad.yaml', 'kind: Namespace\nmetadata:\n  name: [unclosed\n', bad as never);
  t.equal(bad.length, 1, 'a syntax error on the fast path is reported by the guarded parser');
  t.match(bad[0], { line: Number }, 'with a line number');
});

t.test('a YAML alias bomb is a parse problem, not a crash, and the fast paths never expand it', async (t) => {
  const { parseText, parseFast } = await import('../../policy/load.js');
  // "Billion laughs": 10 levels of 10 aliases each would expand to 10^10 strings.
  let bomb = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i < 10; i++) bomb += `  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  t.equal(parseFast('bomb.yaml', bomb, []), undefined, 'the fast path (subset parser, then js-yaml) declines it');
  const problems: { code: string; file: string; message: string }[] = [];
  const objects = parseText('bomb.yaml', `${bomb}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n`, problems as never);
  t.same(objects.map((o) => o.name), ['fine'], 'the other document still loads');
  t.equal(problems.length, 1);
  t.match(problems[0], { code: 'L7G_ERR_POLICY_PARSE', file: 'bomb.yaml', message: /aliases expand too much/ });
});
