// policy/staged.ts: which objects are staged (`l7guard.io/mode: audit`), the errors for a mode or
// kind that cannot be staged, and the build: the enforced state never sees a staged policy, each
// staged policy gets a candidate state numbered as the enforced one.
import t from 'tap';
import { parseText, type SourcedObject } from '../../policy/load.js';
import { buildPolicyState } from '../../policy/build.js';
import { PolicyLoadError, type LoadProblem } from '../../policy/errors.js';
import { splitStaged } from '../../policy/staged.js';
import { starWarsCluster, deathstarPolicy } from '../helpers/cluster.js';

const PORT = 80;
const ips = { tiefighter: '10.0.0.11', xwing: '10.0.0.12', deathstar: ['10.0.0.21', '10.0.0.22'] as const, clusterIP: '10.0.0.10' };
const LANDING = [{ method: 'POST', path: '/v1/request-landing' }];
const annotate = (yaml: string, mode: string): string => yaml.replace(/^metadata:\n/m, `metadata:\n  annotations:\n    l7guard.io/mode: ${mode}\n`);

function objects(...texts: string[]): SourcedObject[] {
  const problems: LoadProblem[] = [];
  const out = texts.flatMap((text, i) => parseText(`f${i}.yaml`, text, problems));
  if (problems.length > 0) throw new Error(JSON.stringify(problems));
  return out;
}
const build = (objs: SourcedObject[]) => buildPolicyState(objs, { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', revision: 1 });

t.test('splitStaged: audit is staged, enforce or nothing is in force, anything else is a problem', async (t) => {
  const np = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
  namespace: default
spec:
  podSelector: {}
`;
  const s = splitStaged(objects(
    annotate(deathstarPolicy(PORT, LANDING, 'a'), 'audit'),
    annotate(deathstarPolicy(PORT, LANDING, 'b'), 'enforce'),
    deathstarPolicy(PORT, LANDING, 'c'),
    annotate(deathstarPolicy(PORT, LANDING, 'd'), 'Audit'),
    annotate(np, 'audit'),
  ));
  t.same(s.staged.map((o) => o.name), ['a']);
  t.same(s.enforced.map((o) => o.name), ['b', 'c']);
  t.same(s.problems.map((p) => [p.code, p.object, p.field, p.message]), [
    ['L7G_ERR_POLICY_VALUE', 'CiliumNetworkPolicy default/d', 'metadata.annotations["l7guard.io/mode"]', 'must be "audit" (staged) or "enforce", not "Audit"'],
    ['L7G_ERR_POLICY_VALUE', 'NetworkPolicy default/np', 'metadata.annotations["l7guard.io/mode"]', 'only a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy can be staged, not a NetworkPolicy'],
  ]);
  t.throws(() => build(objects(starWarsCluster(ips), annotate(np, 'audit'))), PolicyLoadError, 'the build refuses it');
});

t.test('the enforced state leaves staged policies out; each has its own candidate', async (t) => {
  const plain = build(objects(starWarsCluster(ips)));
  t.equal(plain.staged, undefined, 'no staged policy: nothing for the request path to read');
  const state = build(objects(starWarsCluster(ips), annotate(deathstarPolicy(PORT, LANDING), 'audit')));
  const deathstar = state.endpoints.find((e) => e.name.startsWith('deathstar'))!;
  const xwing = state.identify(ips.xwing);
  t.equal(state.decide(xwing, deathstar, PORT).kind, 'allow', 'enforced: no policy selects the deathstar');
  t.same(state.objects.map((o) => o.name).includes('rule1'), false, 'the staged object is not among those in force');
  t.equal(state.staged?.length, 1);
  const s = state.staged![0]!;
  t.same([s.kind, s.namespace, s.name, s.key], ['CiliumNetworkPolicy', 'default', 'rule1', 'CiliumNetworkPolicy/default/rule1']);
  t.same(s.state.identities, state.identities, 'the candidate numbers identities as the enforced state');
  const d = s.state.decide(xwing, deathstar, PORT);
  t.equal(d.kind, 'drop', 'the candidate: default deny for the xwing');
  const own = s.own(d.by, 'INGRESS');
  t.same(own.map((r) => [r.name, r.direction, r.field]), [['rule1', 'INGRESS', 'spec']], 'a default deny names the policy');
  const l7 = s.state.decide(state.identify(ips.tiefighter), deathstar, PORT);
  t.equal(l7.kind, 'l7');
  t.same(s.own(l7.by, 'INGRESS').map((r) => r.name), ['rule1']);
  t.equal(s.own(l7.by, 'INGRESS'), s.own(l7.by, 'INGRESS'), 'computed once per decision');
  t.same(s.own(undefined, 'EGRESS'), [], 'rule1 has no egress rules');
});
