// Staged policies (docs/audit.md), end to end through a real `l7guard serve`: a policy annotated
// `l7guard.io/mode: audit` changes no verdict, and each request it would decide differently gets an
// extra flow — verdict AUDIT, `"staged": true`, the policy in *_denied_by (it would deny) or
// *_allowed_by (it would allow) — and counts in l7guard_staged_verdicts_total. Removing the
// annotation promotes it at the next reload; an annotation with another value fails the reload.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackBlock, rawExchange } from '../../helpers/net.js';
import { serve } from '../../helpers/serve.js';
import { adminFlows, adminText, metricSample } from '../../helpers/admin.js';
import { until } from '../../helpers/poll.js';
import { recordingBackend } from '../../helpers/backend.js';
import { clusterDir, deathstarPolicy, starWarsCluster } from '../../helpers/cluster.js';
import { adminRequest } from '../../../proxy/admin/client.js';

const HOST = 'deathstar.default.svc.cluster.local';
const PORT = 18932;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const LANDING = [{ method: 'POST', path: '/v1/request-landing' }];

const staged = (yaml: string, mode = 'audit'): string => yaml.replace(/^metadata:\n/m, `metadata:\n  annotations:\n    l7guard.io/mode: ${mode}\n`);

/** Alliance ships may land too: what the xwing would need. */
const xwingLanding = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: xwing-landing
  namespace: default
spec:
  endpointSelector:
    matchLabels: { org: empire, class: deathstar }
  ingress:
    - fromEndpoints:
        - matchLabels: { org: alliance }
      toPorts:
        - ports: [{ port: "${PORT}", protocol: TCP }]
          rules:
            http: [{ method: POST, path: /v1/request-landing }]
`;

interface Flow {
  flow: {
    verdict: string;
    l7?: { type: string; http?: { method: string; url: string } };
    ingress_denied_by?: { name: string; namespace?: string; kind?: string }[];
    ingress_allowed_by?: { name: string }[];
    staged?: boolean;
    IP: { source: string };
  };
}

const flows = (admin: string) => adminFlows<Flow>(admin);
const sample = metricSample;

function send(s: { host: string; port: number }, from: string, method: string, path: string) {
  const data = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
  return rawExchange({ from, to: s.host, port: s.port, data, idleMs: 3000 });
}

async function backends(t: { teardown(fn: () => unknown): void }) {
  const bs = await Promise.all(ips.deathstar.map((h, i) => recordingBackend(`deathstar-${i}`, h, PORT)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return () => bs.reduce((n, b) => n + b.seen.length, 0);
}

t.test("the demo's L7 policy staged: would-deny flows and metrics, no enforcement; promoted by removing the annotation", async (t) => {
  const reached = await backends(t);
  const dir = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': staged(deathstarPolicy(PORT, LANDING)) });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());

  const policy = async () => JSON.parse(await adminText(s.admin, '/v1/policy')) as { policies: { name: string }[]; staged?: unknown };
  const before = await policy();
  t.same(before.staged, [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }], '/v1/policy lists it as staged');
  t.same(before.policies, [], 'not among the policies in force');

  // Nothing enforced selects the deathstar: everything lands, as before rule1.
  t.match((await send(s, ips.tiefighter, 'PUT', '/v1/exhaust-port')).text, /^HTTP\/1\.1 200 /, 'the staged L7 rule does not enforce');
  t.match((await send(s, ips.tiefighter, 'POST', '/v1/request-landing')).text, /^HTTP\/1\.1 200 /);
  t.match((await send(s, ips.xwing, 'POST', '/v1/request-landing')).text, /^HTTP\/1\.1 200 /, 'nor its default deny');
  t.equal(reached(), 3);

  const all = await until(() => flows(s.admin), (fs) => fs.filter((f) => f.flow.staged === true).length === 2, 'two staged flows');
  const stagedFlows = all.filter((f) => f.flow.staged === true);
  const put = stagedFlows.find((f) => f.flow.l7?.http?.method === 'PUT');
  t.equal(put?.flow.verdict, 'AUDIT');
  t.equal(put?.flow.l7?.type, 'REQUEST');
  t.equal(put?.flow.l7?.http?.url, `http://${HOST}/v1/exhaust-port`);
  t.same(put?.flow.ingress_denied_by?.map((p) => [p.kind, p.namespace, p.name]), [['CiliumNetworkPolicy', 'default', 'rule1']], 'rule1 would deny the PUT');
  t.equal(put?.flow.ingress_allowed_by, undefined);
  const xwing = stagedFlows.find((f) => f.flow.IP.source === ips.xwing);
  t.equal(xwing?.flow.verdict, 'AUDIT');
  t.same(xwing?.flow.ingress_denied_by?.map((p) => p.name), ['rule1'], "rule1's default deny would drop the xwing: the policy is named though no rule of it matched");
  const enforced = all.filter((f) => f.flow.staged === undefined && f.flow.l7?.type === 'REQUEST');
  t.same(enforced.map((f) => f.flow.verdict), ['FORWARDED', 'FORWARDED', 'FORWARDED'], 'the enforced records are unchanged');
  t.equal(await sample(s.admin, 'l7guard_staged_verdicts_total{policy="CiliumNetworkPolicy/default/rule1",change="deny"}'), 2);
  t.equal(await sample(s.admin, 'hubble_flows_processed_total{type="L7",subtype="HTTP",verdict="AUDIT"}'), 2);
  t.equal(await sample(s.admin, 'cilium_policy_l7_total{rule="received",proxy_type="http"}'), 3, 'staged flows are not requests');

  // A mode other than audit/enforce is bad input: the reload fails, the revision in force stays.
  writeFileSync(join(dir, 'rule1.yaml'), staged(deathstarPolicy(PORT, LANDING), 'sometimes'));
  const bad = await adminRequest(s.admin, 'POST', '/reload');
  t.not(bad.status, 200);
  t.match(JSON.stringify(bad.body), /l7guard\.io\/mode.*must be \\"audit\\" \(staged\) or \\"enforce\\", not \\"sometimes\\"/);
  t.match((await send(s, ips.tiefighter, 'PUT', '/v1/exhaust-port')).text, /^HTTP\/1\.1 200 /, 'still staged');

  // Promotion: the annotation removed, a reload as today.
  writeFileSync(join(dir, 'rule1.yaml'), deathstarPolicy(PORT, LANDING));
  const ok = await adminRequest(s.admin, 'POST', '/reload');
  t.equal(ok.status, 200, JSON.stringify(ok.body));
  t.match((await send(s, ips.tiefighter, 'PUT', '/v1/exhaust-port')).text, /^HTTP\/1\.1 403 /, 'promoted: enforced');
  t.equal((await send(s, ips.xwing, 'POST', '/v1/request-landing')).text, '', 'promoted: the xwing is dropped');
  t.equal(reached(), 4);
  const after = await flows(s.admin);
  t.equal(after.filter((f) => f.flow.staged === true).length, 3, 'one more staged flow (the PUT before promotion), none after it');
  const promoted = await policy();
  t.equal(promoted.staged, undefined);
  t.same(promoted.policies.map((p) => p.name), ['rule1']);
});

t.test('staged next to enforced policies: would-allow and would-deny, each naming its own policy', async (t) => {
  const reached = await backends(t);
  const noTiefighter = staged(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-tiefighter
  namespace: default
spec:
  endpointSelector:
    matchLabels: { org: empire, class: deathstar }
  ingressDeny:
    - fromEndpoints:
        - matchLabels: { class: tiefighter }
`);
  const dir = clusterDir(starWarsCluster(ips, PORT), {
    'rule1.yaml': deathstarPolicy(PORT), 'xwing-landing.yaml': staged(xwingLanding), 'no-tiefighter.yaml': noTiefighter,
  });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());

  t.match((await send(s, ips.tiefighter, 'PUT', '/v1/exhaust-port')).text, /^HTTP\/1\.1 200 /, 'rule1 (L3/L4) is what is enforced');
  t.equal((await send(s, ips.xwing, 'POST', '/v1/request-landing')).text, '', 'the staged allow does not enforce');
  t.equal(reached(), 1);
  const all = await until(() => flows(s.admin), (fs) => fs.filter((f) => f.flow.staged === true).length === 2, 'two staged flows');
  const st = all.filter((f) => f.flow.staged === true);
  const tie = st.find((f) => f.flow.IP.source === ips.tiefighter);
  t.same(tie?.flow.ingress_denied_by?.map((p) => p.name), ['no-tiefighter'], 'no-tiefighter would deny (its ingressDeny)');
  const xw = st.find((f) => f.flow.IP.source === ips.xwing);
  t.same(xw?.flow.ingress_allowed_by?.map((p) => p.name), ['xwing-landing'], 'xwing-landing would allow');
  t.equal(xw?.flow.ingress_denied_by, undefined);
  t.equal(await sample(s.admin, 'l7guard_staged_verdicts_total{policy="CiliumNetworkPolicy/default/xwing-landing",change="allow"}'), 1);
  t.equal(await sample(s.admin, 'l7guard_staged_verdicts_total{policy="CiliumNetworkPolicy/default/no-tiefighter",change="deny"}'), 1);
});
