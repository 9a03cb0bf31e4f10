// The operator commands (docs/cli.md#endpoint-list) as real child processes against a real `l7guard serve`:
// `endpoint list`, `identity list`, `policy get`, `policy trace`, before any policy, after the Star Wars demo's
// rule1 (sw_l3_l4_policy.yaml, applied through the admin API like `kubectl apply`) and after the L7
// rule1 (sw_l3_l4_l7_policy.yaml), against golden text in test/cli/golden/operator/ (reviewed by hand
// against Cilium's printers; UPDATE_GOLDEN=1 rewrites them). Pod IPs are those of a run of the Star Wars demo on a Cilium 1.17.6 cluster: endpoint list
// column widths depend on them, and nothing connects to a pod here.
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECORDED_ADDRESSES } from '../../fixtures/star-wars.js';
import { clusterDir, fixture, starWarsCluster } from '../helpers/cluster.js';
import { runCli, serve } from '../helpers/serve.js';

const GOLDEN_DIR = fileURLToPath(new URL('../../../test/cli/golden/operator/', import.meta.url));
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

function golden(name: string, actual: string): string {
  const file = GOLDEN_DIR + name + '.txt';
  if (UPDATE) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
  }
  return readFileSync(file, 'utf8');
}

const DS = 'default/deathstar-8c4c77fb7-vhj8x';

async function ok(t: Test, args: string[]): Promise<string> {
  const r = await runCli(args);
  t.equal(r.code, 0, `${args.slice(0, 2).join(' ')} exits 0; stderr: ${r.stderr}`);
  return r.stdout;
}

t.test('endpoint list, identity list, policy get/trace through a policy lifecycle (TCP --server)', { timeout: 120_000 }, async (t) => {
  const dir = clusterDir(starWarsCluster(RECORDED_ADDRESSES));
  const s = await serve(['-f', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.teardown(() => s.stop());
  const srv = ['--server', s.admin];

  // Before any policy: every endpoint Disabled/Disabled (no ingress or egress policy exists yet).
  const before = await ok(t, ['endpoint', 'list', ...srv]);
  t.equal(before, golden('endpoint-list-before', before), 'endpoint list before policy');
  t.match(before, /^ENDPOINT {3}POLICY \(ingress\) {3}POLICY \(egress\) {3}IDENTITY {3}LABELS \(source:key\[=value\]\) +IPv6 {3}IPv4 +STATUS {3}\n {11}ENFORCEMENT {8}ENFORCEMENT +\n/);
  t.notMatch(before, /Enabled/, 'no endpoint enforces anything before policy');
  t.match(before, /\n\d+ +Disabled {11}Disabled {10}1 {10}reserved:host {2,}ready {3}\n/, 'the node is listed as reserved:host, identity 1, no IP');

  const ids = await ok(t, ['identity', 'list', ...srv]);
  t.equal(ids, golden('identity-list', ids), 'identity list');

  t.equal(await ok(t, ['policy', 'get', ...srv]), 'null\nRevision: 1\n', 'policy get with no rules: the agent prints a nil rule list');

  const xwingBefore = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/xwing', '--dst-pod', DS, '--dport', '80']);
  t.match(xwingBefore, /\nFinal verdict: ALLOWED \(no policy enforces either direction\)\n$/, 'before policy xwing may land');

  // rule1, L3/L4 (kubectl apply -f sw_l3_l4_policy.yaml).
  const applied = await runCli(['apply', '-f', fixture('examples__minikube__sw_l3_l4_policy.yaml'), ...srv]);
  t.equal(applied.stdout, 'ciliumnetworkpolicy.cilium.io/rule1 created\n', applied.stderr);
  const after = await ok(t, ['endpoint', 'list', ...srv]);
  t.equal(after, golden('endpoint-list-rule1', after), 'endpoint list after rule1');
  const enabled = after.split('\n').filter((l) => /^\d+ +Enabled/.test(l));
  t.equal(enabled.length, 2, 'exactly the two deathstar endpoints have ingress enforcement');
  t.ok(enabled.every((l) => /^\d+ +Enabled {12}Disabled {10}\d+ +k8s:app\.kubernetes\.io\/name=deathstar /.test(l)), 'deathstar: Enabled / Disabled');

  const xwing = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/xwing', '--dst-pod', DS, '--dport', '80']);
  t.equal(xwing, golden('trace-rule1-xwing', xwing), 'trace xwing -> deathstar under rule1');
  t.match(xwing, /\nFinal verdict: DENIED at L3\/L4 \(Policy denied, INGRESS\): no rule selected this peer\n$/);
  const tie = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/tiefighter', '--dst-pod', DS, '--dport', '80']);
  t.match(tie, /\nFinal verdict: ALLOWED by CiliumNetworkPolicy default\/rule1 rule 0 \(spec\.ingress\[0\]\)\n$/, 'tiefighter allowed by rule1');
  const port8080 = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/tiefighter', '--dst-pod', DS, '--dport', '8080']);
  t.match(port8080, /\nFinal verdict: DENIED at L3\/L4 \(Policy denied, INGRESS\): no rule selected this peer\n$/, 'rule1 allows port 80 only');

  // rule1, L7 (kubectl apply -f sw_l3_l4_l7_policy.yaml): same name, so it replaces the L3/L4 one.
  const l7 = await runCli(['apply', '-f', fixture('examples__minikube__sw_l3_l4_l7_policy.yaml'), ...srv]);
  t.equal(l7.stdout, 'ciliumnetworkpolicy.cilium.io/rule1 configured\n', l7.stderr);
  const get = await ok(t, ['policy', 'get', ...srv]);
  t.equal(get, golden('policy-get-l7', get), 'policy get: the L7 rule1 with its revision');
  t.match(get, /\n\]\nRevision: 3\n$/);
  const getJson = JSON.parse(await ok(t, ['policy', 'get', ...srv, '-o', 'json'])) as { policy: string; revision: number };
  t.equal(getJson.revision, 3);
  t.same((JSON.parse(getJson.policy) as { ingress: { toPorts: { rules: unknown }[] }[] }[])[0]!.ingress[0]!.toPorts[0]!.rules, { http: [{ method: 'POST', path: '/v1/request-landing' }] }, '-o json: Cilium models.Policy');

  const exhaust = await ok(t, ['policy', 'trace', ...srv, '-s', 'k8s:org=empire,k8s:class=tiefighter,k8s:app.kubernetes.io/name=tiefighter',
    '-s', 'k8s:io.kubernetes.pod.namespace=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.cilium.k8s.policy.cluster=default',
    '-s', 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default', '--dst-pod', DS, '--dport', '80',
    '--http-method', 'PUT', '--http-path', '/v1/exhaust-port', '--http-host', 'deathstar.default.svc.cluster.local']);
  t.equal(exhaust, golden('trace-l7-exhaust', exhaust), 'trace PUT /v1/exhaust-port by labels: 403');
  t.match(exhaust, /\nFrom: default\/tiefighter \(ID:\d+\) => /, 'the full label set is the tiefighter identity');
  const landing = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/tiefighter', '--dst-pod', DS, '--dport', '80', '--http-method', 'POST', '--http-path', '/v1/request-landing']);
  t.match(landing, /\nFinal verdict: ALLOWED \(POST \/v1\/request-landing matches an HTTP rule\) by CiliumNetworkPolicy default\/rule1 rule 0 \(spec\.ingress\[0\]\)\n$/);
  const xwingL7 = await ok(t, ['policy', 'trace', ...srv, '--src-pod', 'default/xwing', '--dst-pod', DS, '--dport', '80', '--http-method', 'POST', '--http-path', '/v1/request-landing']);
  t.match(xwingL7, /\nFinal verdict: DENIED at L3\/L4 \(Policy denied, INGRESS\): no rule selected this peer\n$/, 'xwing never reaches L7');

  // Errors: an unknown pod is the server's 400, printed as "l7guard policy: …" and exit 1.
  const unknown = await runCli(['policy', 'trace', ...srv, '--src-pod', 'default/nope', '--dst-pod', DS, '--dport', '80']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /^l7guard policy: .*HTTP 400: pod default\/nope is not a known endpoint/);
  const usage = await runCli(['policy', 'trace', ...srv, '--src-pod', 'default/xwing', '--dport', '80']);
  t.equal(usage.code, 1);
  t.match(usage.stderr, /give exactly one of --dst-labels and --dst-pod/);
});

t.test('--server unix:PATH, and -o json', { timeout: 60_000 }, async (t) => {
  const dir = clusterDir(starWarsCluster(RECORDED_ADDRESSES), { '10-rule1.yaml': readFileSync(fixture('examples__minikube__sw_l3_l4_policy.yaml'), 'utf8') });
  const sock = join(dir, 'admin.sock');
  const s = await serve(['-f', dir, '--listen', '127.0.0.1:0', '--admin', `unix:${sock}`]);
  t.teardown(() => s.stop());
  const list = await ok(t, ['endpoint', 'list', '--server', `unix:${sock}`]);
  t.equal(list, readFileSync(GOLDEN_DIR + 'endpoint-list-rule1.txt', 'utf8'), 'same table over the unix socket');
  const json = JSON.parse(await ok(t, ['endpoint', 'list', '--server', `unix:${sock}`, '-o', 'json'])) as { name: string; ingressEnforcement: boolean; ipv4: string[] }[];
  t.same(json.filter((e) => e.ingressEnforcement).map((e) => [e.name, e.ipv4]).sort(), [['deathstar-8c4c77fb7-b9qmw', ['10.233.64.96']], ['deathstar-8c4c77fb7-vhj8x', ['10.233.65.155']]]);
  const down = await runCli(['identity', 'list', '--server', `unix:${join(dir, 'nothing.sock')}`]);
  t.equal(down.code, 1);
  t.match(down.stderr, /^l7guard identity: cannot reach the admin API at unix:/);
});

t.test('policy trace -f: in-process, same text as the running proxy', { timeout: 60_000 }, async (t) => {
  const dir = clusterDir(starWarsCluster(RECORDED_ADDRESSES), { '10-rule1.yaml': readFileSync(fixture('examples__minikube__sw_l3_l4_policy.yaml'), 'utf8') });
  const local = await ok(t, ['policy', 'trace', '-f', dir, '--src-pod', 'default/xwing', '--dst-pod', DS, '--dport', '80']);
  // The running proxy had revision 2 for the same objects; the local state is revision 1.
  t.equal(local, readFileSync(GOLDEN_DIR + 'trace-rule1-xwing.txt', 'utf8').replace('(policy revision 2)', '(policy revision 1)'));
  const bad = await runCli(['policy', 'trace', '-f', join(dir, 'missing.yaml'), '--src-pod', 'default/xwing', '--dst-pod', DS, '--dport', '80']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^l7guard policy: the policy does not load:/);
});
