/** Field paths placed at line:column (policy/locate.ts) and near-name suggestions (policy/suggest.ts). */
import t from 'tap';
import { type LoadProblem, ProblemCodes } from '../../policy/errors.js';
import { locateProblems } from '../../policy/locate.js';
import { editDistance, nearest, unknownField } from '../../policy/suggest.js';

const TEXT = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: p
spec:
  endpointSelector:
    matchLabels:
      app.kubernetes.io/name: 7
  ingress:
  - {}
  - fromEntities: [wrld]
`;

const problem = (field: string, line: number, code: LoadProblem['code'] = ProblemCodes.L7G_ERR_POLICY_VALUE): LoadProblem => ({
  code, file: 'f.yaml', object: 'CiliumNetworkPolicy default/p', field, line, message: 'm',
});
const at = (p: LoadProblem) => `${p.line}:${p.column ?? '-'}`;

t.test('field paths resolve to their line and column', async (t) => {
  const rows: [LoadProblem, string, string][] = [
    [problem('spec.endpointSelector.matchLabels.app.kubernetes.io/name', 7), '14:31', 'dotted label key: the value'],
    [problem('spec.ingress[1].fromEntities[0]', 7), '17:20', 'list items'],
    [problem('spec.ingress[1].toPorts', 7), '17:5', 'missing field: its deepest ancestor'],
    [problem('spec.ingres', 7, ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD), '11:1', 'unknown key not in the text: its parent key'],
    [problem('spec.endpointSelector', 1, ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD), '5:3', 'a repeated name: the object at the problem line'],
    [problem('spec.ingress[5]', 7), '15:3', 'index out of range: the list key'],
  ];
  for (const [p, want, name] of rows) t.equal(at(locateProblems([p], () => TEXT)[0]!), want, name);
});

t.test('problems it cannot place are kept as they are', async (t) => {
  const p = problem('spec.x', 7);
  t.equal(locateProblems([p], () => undefined)[0], p, 'no text');
  t.equal(locateProblems([{ ...p, object: 'CiliumNetworkPolicy default/other' }], () => TEXT)[0]!.column, undefined, 'no such object');
  t.equal(locateProblems([p], () => TEXT, { maxDocumentBytes: 10 })[0], p, 'document over the size limit');
});

t.test('nearest known name', async (t) => {
  t.equal(editDistance('methd', 'method'), 1);
  t.equal(editDistance('mehtod', 'method'), 1, 'a swapped pair is one edit');
  t.equal(nearest('methd', ['method', 'path', 'host']), 'method');
  t.equal(nearest('ingres', ['ingress', 'ingressDeny', 'egress']), 'ingress');
  t.equal(nearest('EndpointSelector', ['endpointSelector']), 'endpointSelector', 'case');
  t.equal(nearest('foo', ['method', 'path', 'host']), undefined, 'nothing near');
  t.equal(unknownField('methd', ['method', 'path']), 'unknown field "methd"; did you mean "method"?');
  t.equal(unknownField('foo', ['method', 'path']), 'unknown field "foo"', 'no question when nothing is near');
});
