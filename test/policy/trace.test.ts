// policy/trace.ts: the `policy trace` engine. Its verdict must be decide()'s for every known pair
// (same procedure, fresh peers), it must name the deciding rule, and it must never touch the state's
// tables (a trace of an unknown label set cannot change a later decide()).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { trace, traceQuery, endFromLabels, TraceError, type TraceResult } from '../../policy/trace.js';
import type { PolicyState } from '../../policy/model.js';
import { build, CLUSTER, MANIFESTS, pod, req, verdict } from './helpers.js';

const cluster = readFileSync(CLUSTER, 'utf8');
const manifest = (n: string) => readFileSync(MANIFESTS + n, 'utf8');
const L34 = manifest('examples__minikube__sw_l3_l4_policy.yaml');
const L7 = manifest('examples__minikube__sw_l3_l4_l7_policy.yaml');
const DENY_EMPIRE = manifest('examples__minikube__sw_deny_policy.yaml');
const EGRESS = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: xwing-out, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: xwing}}
  egress:
  - toEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: no-8080}
spec:
  endpointSelector: {}
  ingressDeny:
  - fromEntities: [all]
    toPorts: [{ports: [{port: "8080"}]}]
`;

/** The trace's verdict in helpers.verdict()'s vocabulary. */
function traced(r: TraceResult): string {
  if (r.verdict === 'DENIED' && r.layer === 'L3/L4') return `drop:${r.reason}:${r.direction}`;
  if (r.verdict === 'DENIED') return '403';
  if (r.http !== undefined && [r.egress, r.ingress].some((d) => d.decision === 'l7')) return '200';
  return r.l7Pending ? 'l7' : 'allow';
}

const at = (s: PolicyState, src: string, dst: string, port: number, m?: string, p?: string) =>
  trace(s, traceQuery(s, { srcPod: `default/${src}`, dstPod: `default/${dst}`, dport: String(port), httpMethod: m, httpPath: p, httpHost: m && 'deathstar' }));

t.test('same verdict as decide() for every pod pair, port and request, under each policy', async (t) => {
  const sets: Record<string, string[]> = { none: [cluster], l34: [cluster, L34], l7: [cluster, L7], deny: [cluster, DENY_EMPIRE, L7], egress: [cluster, EGRESS, L7] };
  const requests: [string, string][] = [['POST', '/v1/request-landing'], ['PUT', '/v1/exhaust-port'], ['GET', '/']];
  let compared = 0;
  const seen = new Set<string>();
  for (const [name, texts] of Object.entries(sets)) {
    const s = build(texts);
    for (const a of s.endpoints) {
      for (const b of s.endpoints) {
        for (const port of [80, 8080]) {
          const d = s.decide(s.identify(a.ips[0]!), b, port);
          t.equal(traced(at(s, a.name, b.name, port)), verdict(d), `${name}: ${a.name} -> ${b.name}:${port}`);
          for (const [m, p] of requests) {
            const want = verdict(d, req(m, p));
            t.equal(traced(at(s, a.name, b.name, port, m, p)), want, `${name}: ${a.name} -> ${b.name}:${port} ${m} ${p}`);
            seen.add(want);
            compared++;
          }
        }
      }
    }
  }
  t.ok(compared > 300, `${compared} comparisons`);
  // The sets above must exercise every outcome, or the comparison proves less than it says.
  t.same([...seen].sort(), ['200', '403', 'allow', 'drop:POLICY_DENIED:EGRESS', 'drop:POLICY_DENIED:INGRESS', 'drop:POLICY_DENY:INGRESS'].sort());
});

t.test('names the deciding rule, or says no rule selected the peer', async (t) => {
  const s = build([cluster, EGRESS, L7]);
  const xw = at(s, 'xwing', 'deathstar-8c4c77fb7-b9qmw', 80);
  t.same([xw.verdict, xw.layer, xw.direction, xw.reason, xw.by], ['DENIED', 'L3/L4', 'EGRESS', 'POLICY_DENIED', []], 'xwing: its own egress policy drops it, no rule selected that peer');
  t.same(xw.egress.selected, [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'xwing-out', ruleIndex: 0 }]);
  const deny = at(s, 'tiefighter', 'deathstar-8c4c77fb7-b9qmw', 8080);
  t.same([deny.reason, deny.by.map((r) => `${r.kind}/${r.name}/${r.field}`)], ['POLICY_DENY', ['CiliumClusterwideNetworkPolicy/no-8080/spec.ingressDeny[0]']], 'explicit deny names its rule');
  const put = at(s, 'tiefighter', 'deathstar-8c4c77fb7-b9qmw', 80, 'PUT', '/v1/exhaust-port');
  t.same([put.verdict, put.layer, put.by.map((r) => `${r.namespace}/${r.name}/${r.ruleIndex}/${r.field}`)], ['DENIED', 'L7', ['default/rule1/0/spec.ingress[0]']]);
  t.equal(put.ingress.enforced, true);
  t.equal(put.egress.enforced, false, 'tiefighter has no egress policy');
});

t.test('label sets: known identity resolved, unknown ones traced without touching the state', async (t) => {
  const s = build([cluster, L34]);
  const tf = pod(s, 'tiefighter');
  const end = endFromLabels(s, [tf.identity.labels.slice(0, 3).join(','), ...tf.identity.labels.slice(3)]);
  t.same([end.identity, end.pod, end.isPod], [tf.identity.id, 'default/tiefighter', true], 'repeated and comma-separated labels make the tiefighter identity');
  const plain = endFromLabels(s, ['org=empire']);
  t.same([plain.labels, plain.identity, plain.isPod], [['k8s:org=empire'], undefined, false], 'a label without source is a pod label (k8s:)');
  // An unknown pod label set of namespace default with org=empire: allowed by rule1.
  const q = traceQuery(s, { srcLabels: ['k8s:org=empire,k8s:io.kubernetes.pod.namespace=default'], dstPod: 'default/deathstar-8c4c77fb7-b9qmw', dport: '80' });
  const r = trace(s, q);
  t.same([r.verdict, r.by.map((x) => x.name), r.src.identity], ['ALLOWED', ['rule1'], undefined]);
  const alliance = trace(s, traceQuery(s, { srcLabels: ['k8s:org=alliance,k8s:io.kubernetes.pod.namespace=default'], dstPod: 'default/deathstar-8c4c77fb7-b9qmw', dport: '80' }));
  t.equal(alliance.verdict, 'DENIED');
  // decide() is unchanged for the real identities after those traces.
  t.equal(verdict(s.decide(s.identify(tf.ips[0]!), pod(s, 'deathstar-8c4c77fb7-b9qmw'), 80)), 'allow');
  t.equal(verdict(s.decide(s.identify(pod(s, 'xwing').ips[0]!), pod(s, 'deathstar-8c4c77fb7-b9qmw'), 80)), 'drop:POLICY_DENIED:INGRESS');
  const host = trace(s, traceQuery(s, { srcLabels: ['reserved:host'], dstPod: 'default/deathstar-8c4c77fb7-b9qmw', dport: '80' }));
  t.same([host.verdict, host.allowLocalhost], ['ALLOWED', true], 'allow-localhost=always lets the host through');
  const strict = build([cluster, L34], { allowLocalhost: 'policy' });
  t.equal(trace(strict, traceQuery(strict, { srcLabels: ['reserved:host'], dstPod: 'default/deathstar-8c4c77fb7-b9qmw', dport: '80' })).verdict, 'DENIED');
});

t.test('bad queries are TraceErrors', async (t) => {
  const s = build([cluster]);
  const bad = (o: Parameters<typeof traceQuery>[1], message: RegExp) => {
    let caught: unknown;
    try {
      traceQuery(s, o);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof TraceError, `TraceError for ${JSON.stringify(o)}`);
    t.match((caught as Error | undefined)?.message, message);
  };
  bad({ srcPod: 'default/xwing', dport: '80' }, /exactly one of --dst-labels and --dst-pod/);
  bad({ srcPod: 'default/xwing', dstPod: 'default/nope', dport: '80' }, /pod default\/nope is not a known endpoint/);
  bad({ srcPod: 'default/xwing', dstLabels: ['k8s:a=b'], dstPod: 'default/xwing', dport: '80' }, /exactly one/);
  bad({ srcPod: 'default/xwing', dstPod: 'default/tiefighter', dport: '80/udp' }, /--dport PORT is required/);
  bad({ srcPod: 'default/xwing', dstPod: 'default/tiefighter', dport: undefined }, /--dport PORT is required/);
  bad({ srcPod: 'default/xwing', dstPod: 'default/tiefighter', dport: '80', httpHeaders: ['no-colon'] }, /--http-header must be/);
});
