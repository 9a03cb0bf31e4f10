// Hubble's filter flags over the Star Wars demo's flows: each row is (flags -> which flows match),
// flows named by their scenario in recorded-scenarios.ts (landingRequest, ..., xwingDrop = policy-verdict + drop).
import t from 'tap';
import { compileFilters, FilterError, labelSelector, parseTimeBound, type FilterOptions } from '../../observe/filters.js';
import { toFlows, type HubbleFlowResponse } from '../../observe/flow.js';
import { scenarios, type ScenarioName } from './recorded-scenarios.js';

const flows: { name: string; res: HubbleFlowResponse }[] = (Object.keys(scenarios) as ScenarioName[]).flatMap((n) =>
  toFlows(scenarios[n]).map((res, i, a) => ({ name: a.length > 1 ? `${n}#${i}` : n, res })),
);
const names = (o: FilterOptions) => {
  const p = compileFilters(o);
  return flows.filter((f) => p(f.res)).map((f) => f.name);
};
const ALL = flows.map((f) => f.name);
const L7 = ['landingRequest', 'landingResponse', 'exhaustRequest', 'exhaustResponse'];
const XW = ['xwingDrop#0', 'xwingDrop#1'];

t.test('filters, table-driven', async (t) => {
  const rows: [string, FilterOptions, string[]][] = [
    ['no flags: everything', {}, ALL],
    // the commands of Cilium's Star Wars demo
    ['--pod deathstar --verdict DROPPED (Star Wars demo)', { pod: ['deathstar'], verdict: ['DROPPED'] }, ['exhaustRequest', ...XW]],
    ['--type drop (Star Wars demo)', { type: ['drop'] }, ['xwingDrop#1']],
    ['--identity 42250 --identity 22234 --identity 27476 (Star Wars demo): repeated = OR', { identity: ['42250', '22234', '27476'] }, ALL],
    ['--identity 42250: either side', { identity: ['42250'] }, XW],
    ['--type policy-verdict', { type: ['policy-verdict'] }, ['xwingDrop#0']],
    ['--type l7', { type: ['l7'] }, L7],
    ['--type drop --type l7: OR', { type: ['drop', 'l7'] }, [...L7, 'xwingDrop#1']],
    ['--verdict forwarded (case-insensitive)', { verdict: ['forwarded'] }, ['landingRequest', 'landingResponse', 'exhaustResponse']],
    // either-side vs directional
    ['--from-pod tiefighter: responses come from deathstar', { fromPod: ['tiefighter'] }, ['landingRequest', 'exhaustRequest']],
    ['--to-pod tiefighter', { toPod: ['tiefighter'] }, ['landingResponse', 'exhaustResponse']],
    ['--pod tiefighter matches either side', { pod: ['tiefighter'] }, L7],
    ['--pod default/xw (namespace/prefix)', { pod: ['default/xw'] }, XW],
    ['--pod xwing in another namespace: nothing', { pod: ['kube-system/xwing'] }, []],
    ['--from-pod xwing --to-pod deathstar: AND', { fromPod: ['xwing'], toPod: ['deathstar'] }, XW],
    ['--from-pod xwing --to-pod tiefighter: AND, nothing', { fromPod: ['xwing'], toPod: ['tiefighter'] }, []],
    ['--namespace default', { namespace: ['default'] }, ALL],
    ['--namespace kube-system', { namespace: ['kube-system'] }, []],
    // labels
    ['--label org=alliance', { label: ['org=alliance'] }, XW],
    ['--from-label k8s:org=empire', { fromLabel: ['k8s:org=empire'] }, ALL.filter((n) => !n.startsWith('xwing'))],
    ['--from-label org!=empire', { fromLabel: ['org!=empire'] }, XW],
    ['--to-label class=deathstar,org=empire (AND inside one selector)', { toLabel: ['class=deathstar,org=empire'] }, ['landingRequest', 'exhaustRequest', ...XW]],
    ['--label reserved:world: nobody', { label: ['reserved:world'] }, []],
    ['--from-identity 22234 --to-identity 27476', { fromIdentity: ['22234'], toIdentity: ['27476'] }, ['landingRequest', 'exhaustRequest']],
    // addresses and ports
    ['--ip 10.233.65.156 (xwing)', { ip: ['10.233.65.156'] }, XW],
    ['--ip 10.233.65.0/24: everyone', { ip: ['10.233.65.0/24'] }, ALL],
    ['--to-ip 10.233.65.155 (deathstar)', { toIp: ['10.233.65.155'] }, ['landingRequest', 'exhaustRequest', ...XW]],
    ['--port 33338: the exhaust exchange, both directions', { port: ['33338'] }, ['exhaustRequest', 'exhaustResponse']],
    ['--to-port 80', { toPort: ['80'] }, ['landingRequest', 'exhaustRequest', ...XW]],
    // HTTP
    ['--http-method put', { httpMethod: ['put'] }, ['exhaustRequest', 'exhaustResponse']],
    ['--http-path exhaust (regex, unanchored)', { httpPath: ['exhaust'] }, ['exhaustRequest', 'exhaustResponse']],
    ['--http-path ^/v1/request-.*$ (path, not URL)', { httpPath: ['^/v1/request-.*$'] }, ['landingRequest', 'landingResponse']],
    ['--http-status 403', { httpStatus: ['403'] }, ['exhaustResponse']],
    ['--http-status 2+', { httpStatus: ['2+'] }, ['landingResponse']],
    ['--http-status 4+ --http-status 200: OR', { httpStatus: ['4+', '200'] }, ['landingResponse', 'exhaustResponse']],
    // time (the recorded flows: Jul 26 2025 06:57:05.120 .. 06:57:34.526 UTC)
    ['--since 06:57:10', { sinceMs: Date.parse('2025-07-26T06:57:10Z') }, ['exhaustRequest', 'exhaustResponse', ...XW]],
    ['--until 06:57:10', { untilMs: Date.parse('2025-07-26T06:57:10Z') }, ['landingRequest', 'landingResponse']],
    // different flags AND
    ['--pod deathstar --http-method PUT --verdict DROPPED', { pod: ['deathstar'], httpMethod: ['PUT'], verdict: ['DROPPED'] }, ['exhaustRequest']],
  ];
  for (const [name, o, want] of rows) t.same(names(o), want, name);
});

t.test('either-side flags share a side: --pod and --label must hold on the same endpoint', async (t) => {
  t.same(names({ pod: ['xwing'], label: ['class=deathstar'] }), [], 'xwing is not a deathstar');
  t.same(names({ pod: ['xwing'], label: ['class=xwing'] }), XW);
});

t.test('label selector syntax', async (t) => {
  const L = ['k8s:org=empire', 'k8s:class=deathstar', 'reserved:host'];
  t.equal(labelSelector('org')(L), true, 'exists');
  t.equal(labelSelector('!org')(L), false, 'not exists');
  t.equal(labelSelector('!team')(L), true);
  t.equal(labelSelector('k8s:org==empire')(L), true, '== as =');
  t.equal(labelSelector('container:org=empire')(L), false, 'source must match when given');
  t.equal(labelSelector('any:org=empire')(L), true, 'any: prefix');
  t.equal(labelSelector('reserved:host')(L), true, 'reserved label, no value');
});

t.test('invalid values are FilterErrors with a stable code', async (t) => {
  for (const o of [{ verdict: ['NOPE'] }, { type: ['packet'] }, { identity: ['x'] }, { port: ['70000'] }, { ip: ['10.0.0.300'] }, { httpStatus: ['20'] }, { httpPath: ['('] }, { label: ['=x'] }] as FilterOptions[]) {
    t.throws(() => compileFilters(o), { code: 'L7G_ERR_OBSERVE_FILTER' }, JSON.stringify(o));
  }
  t.ok(new FilterError('x') instanceof Error);
});

t.test('--since/--until values', async (t) => {
  const now = Date.parse('2025-07-26T07:00:00Z');
  t.equal(parseTimeBound('--since', '5m', now), now - 300_000);
  t.equal(parseTimeBound('--since', '1h30m', now), now - 5_400_000);
  t.equal(parseTimeBound('--since', '2025-07-26T06:57:10Z', now), Date.parse('2025-07-26T06:57:10Z'));
  t.throws(() => parseTimeBound('--since', 'yesterday', now), { code: 'L7G_ERR_OBSERVE_FILTER' });
});
