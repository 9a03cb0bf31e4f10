// Policy audit mode (docs/audit.md), end to end through a real `l7guard serve`: with
// --policy-audit-mode, or with PolicyAuditMode=Enabled set per endpoint by `l7guard endpoint config`,
// what policy would deny (the xwing at L3/L4, the tiefighter's PUT /v1/exhaust-port at L7) reaches
// the deathstar; the flows say AUDIT (a policy-verdict event as Cilium's audited verdict, and the
// request's L7 record naming the rules), the metrics count it apart; the compact printer says AUDITED.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopbackBlock, rawExchange } from '../../helpers/net.js';
import { runCli, serve } from '../../helpers/serve.js';
import { adminFlows, adminText, metricSample } from '../../helpers/admin.js';
import { until } from '../../helpers/poll.js';
import { recordingBackend, type RecordingBackend } from '../../helpers/backend.js';
import { clusterDir, deathstarPolicy, starWarsCluster } from '../../helpers/cluster.js';
import { adminRequest } from '../../../proxy/admin/client.js';
import { runEndpointConfig } from '../../../cli/endpoint-config.js';
import { reportError } from '../../../cli/report-error.js';
import { Writable } from 'node:stream';

const HOST = 'deathstar.default.svc.cluster.local';
const PORT = 18931;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const LANDING = [{ method: 'POST', path: '/v1/request-landing' }];

interface Flow {
  flow: {
    verdict: string;
    drop_reason?: number;
    drop_reason_desc?: string;
    Type: string;
    is_reply?: boolean;
    event_type?: { type: number; sub_type?: number };
    traffic_direction?: string;
    l7?: { type: string; http?: { code?: number; method: string; url: string } };
    ingress_denied_by?: { name: string }[];
    ingress_allowed_by?: { name: string }[];
    staged?: boolean;
    IP: { source: string };
  };
}

const flows = (admin: string) => adminFlows<Flow>(admin);
const sample = metricSample;

interface Req { readonly from: string; readonly method: string; readonly path: string }

async function send(s: { host: string; port: number }, r: Req): Promise<{ text: string; closed: boolean }> {
  const data = `${r.method} ${r.path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
  return rawExchange({ from: r.from, to: s.host, port: s.port, data, idleMs: 3000 });
}

async function backends(t: { teardown(fn: () => unknown): void }): Promise<RecordingBackend[]> {
  const bs = await Promise.all(ips.deathstar.map((h, i) => recordingBackend(`deathstar-${i}`, h, PORT)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}
const reached = (bs: readonly RecordingBackend[]) => bs.flatMap((b) => b.seen.map((r) => `${r.method} ${r.url}`)).sort();

t.test('--policy-audit-mode: L3/L4 and L7 denials are forwarded and flowed as AUDIT', async (t) => {
  const bs = await backends(t);
  const dir = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': deathstarPolicy(PORT, LANDING) });
  const flowFile = join(dir, 'flows.ndjson');
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--flows', flowFile, '--policy-audit-mode']);
  t.teardown(() => s.stop());

  const xwing = await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' });
  t.match(xwing.text, /^HTTP\/1\.1 200 /, 'the xwing, dropped at L3/L4 without audit mode, lands');
  const exhaust = await send(s, { from: ips.tiefighter, method: 'PUT', path: '/v1/exhaust-port' });
  t.match(exhaust.text, /^HTTP\/1\.1 200 /, 'the PUT, a 403 without audit mode, reaches the deathstar');
  const landing = await send(s, { from: ips.tiefighter, method: 'POST', path: '/v1/request-landing' });
  t.match(landing.text, /^HTTP\/1\.1 200 /);
  t.same(reached(bs), ['POST /v1/request-landing', 'POST /v1/request-landing', 'PUT /v1/exhaust-port'], 'all three reached a pod');

  const all = await until(() => flows(s.admin), (fs) => fs.filter((f) => f.flow.l7?.type === 'RESPONSE').length === 3, 'three responses');
  const fromXwing = all.filter((f) => f.flow.IP.source === ips.xwing);
  const verdict = fromXwing.find((f) => f.flow.event_type?.type === 5);
  t.ok(verdict, 'a policy-verdict event for the xwing');
  t.equal(verdict?.flow.verdict, 'AUDIT');
  t.equal(verdict?.flow.Type, 'L3_L4');
  t.equal(verdict?.flow.drop_reason, undefined, 'an audited verdict carries no drop reason');
  t.equal(verdict?.flow.drop_reason_desc, undefined);
  t.equal(verdict?.flow.is_reply, false);
  t.equal(verdict?.flow.traffic_direction, 'INGRESS');
  t.notOk(all.some((f) => f.flow.event_type?.type === 1), 'no drop notification at all');
  t.same(fromXwing.filter((f) => f.flow.l7?.type === 'REQUEST').map((f) => f.flow.verdict), ['AUDIT'], "the xwing's request record: AUDIT");

  const put = all.find((f) => f.flow.l7?.type === 'REQUEST' && f.flow.l7.http?.method === 'PUT');
  t.equal(put?.flow.verdict, 'AUDIT', 'the PUT: AUDIT');
  t.same(put?.flow.ingress_denied_by?.map((p) => p.name), ['rule1'], 'naming the rules that would deny it');
  t.equal(put?.flow.staged, undefined, 'audit mode is not a staged policy');
  const post = all.find((f) => f.flow.l7?.type === 'REQUEST' && f.flow.IP.source === ips.tiefighter && f.flow.l7.http?.method === 'POST');
  t.equal(post?.flow.verdict, 'FORWARDED', 'what policy allows stays FORWARDED');
  t.same(all.filter((f) => f.flow.l7?.type === 'RESPONSE').map((f) => f.flow.l7?.http?.code), [200, 200, 200]);

  t.equal(await sample(s.admin, 'hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="AUDIT"}'), 1);
  t.equal(await sample(s.admin, 'hubble_flows_processed_total{type="L7",subtype="HTTP",verdict="AUDIT"}'), 2);
  t.equal(await sample(s.admin, 'hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="DROPPED"}'), 0);
  t.equal(await sample(s.admin, 'hubble_policy_verdicts_total{direction="ingress",match="none",action="audit"}'), 1);
  t.equal(await sample(s.admin, 'cilium_policy_l7_total{rule="audited",proxy_type="http"}'), 2);
  t.equal(await sample(s.admin, 'cilium_policy_l7_total{rule="forwarded",proxy_type="http"}'), 1, 'audited requests are not "forwarded"');
  t.equal(await sample(s.admin, 'cilium_policy_l7_total{rule="denied",proxy_type="http"}'), 0);
  t.equal(await sample(s.admin, 'hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"}'), 0);

  // The flow log, through `observe --verdict AUDIT` (filters.ts) and the compact printer.
  await until(() => readFileSync(flowFile, 'utf8').trim().split('\n').length, (n) => n >= all.length, 'the flow log written');
  const o = await runCli(['observe', '--input-file', flowFile, '--verdict', 'AUDIT', '-o', 'compact']);
  t.equal(o.code, 0, o.stderr);
  const lines = o.stdout.trim().split('\n');
  t.equal(lines.length, 3, 'the policy-verdict event and two request records');
  t.match(lines.find((l) => l.includes('policy-verdict')) ?? '', /policy-verdict:none INGRESS AUDITED \(TCP Flags: SYN\)/);
  t.match(lines.find((l) => l.includes('exhaust-port')) ?? '', /http-request AUDIT \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)/);
});

/** `l7guard endpoint config …` in this process, errors reported as main.ts reports them (a CLI child costs seconds under tap's coverage hooks). */
async function endpointConfig(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) => new Writable({ write(c: Buffer, _e, cb) { add(c.toString()); cb(); } });
  let code: number;
  try {
    code = await runEndpointConfig(args, sink((s) => (stdout += s)));
  } catch (err) {
    // What main.ts prints for a command's error.
    const r = reportError('endpoint', err);
    stderr += r.text;
    code = r.exitCode;
  }
  return { code, stdout, stderr };
}

t.test('endpoint config: PolicyAuditMode per endpoint, from the CLI, kept across reloads', async (t) => {
  const bs = await backends(t);
  const dir = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': deathstarPolicy(PORT, LANDING) });
  const sock = join(mkdtempSync(join(tmpdir(), 'l7guard-admin-')), 'admin.sock');
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `unix:${sock}`, '--admin-readonly', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  const ro = String(s.logs.find((l) => l['msg'] === 'ready')?.['adminReadOnly']);
  const admin = `unix:${sock}`;

  // Enforced: no HTTP bytes for the xwing, 403 for the PUT (the behaviour without audit mode).
  const dropped = await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' });
  t.equal(dropped.text, '', 'the xwing gets no bytes');
  t.match((await send(s, { from: ips.tiefighter, method: 'PUT', path: '/v1/exhaust-port' })).text, /^HTTP\/1\.1 403 /);
  t.equal(reached(bs).length, 0);

  const eps = (JSON.parse(await adminText(ro, '/v1/endpoints')) as { id: number; name: string; policyAuditMode?: boolean }[])
    .filter((e) => e.name.startsWith('deathstar'));
  t.equal(eps.length, 2);
  t.notOk(eps.some((e) => e.policyAuditMode), 'no endpoint in audit mode yet');
  const [one, two] = eps as [typeof eps[0], typeof eps[0]];

  t.same(await endpointConfig([String(one.id), '--server', ro]), { code: 0, stdout: 'PolicyAuditMode          Disabled\n', stderr: '' });
  const refused = await endpointConfig([String(one.id), 'PolicyAuditMode=Enabled', '--server', ro]);
  t.equal(refused.code, 1, 'the read-only listener refuses the change');
  t.match(refused.stderr, /HTTP 403/);
  const bad = await endpointConfig([String(one.id), 'PolicyAuditMode=Maybe', '--server', admin]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /PolicyAuditMode must be Enabled or Disabled, not "Maybe"/);
  const unknownOption = await endpointConfig([String(one.id), 'Debug=Enabled', '--server', admin]);
  t.match(unknownOption.stderr, /unknown option "Debug"/);
  const unknown = await endpointConfig(['4094', 'PolicyAuditMode=Enabled', '--server', admin]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /endpoint 4094 not found/);
  t.equal((await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })).text, '', 'refused changes changed nothing');

  // The real command line once, then in-process.
  const set = await runCli(['endpoint', 'config', String(one.id), 'PolicyAuditMode=Enabled', '--server', admin]);
  t.equal(set.code, 0, set.stderr);
  t.equal(set.stdout, `Endpoint ${one.id} configuration updated successfully\n`);
  t.equal((await endpointConfig([String(two.id), 'PolicyAuditMode=enabled', '--server', admin])).code, 0);
  t.equal((await endpointConfig([String(one.id), '--server', ro])).stdout, 'PolicyAuditMode          Enabled\n');
  const table = await runCli(['endpoint', 'list', '--server', ro]);
  for (const ep of eps) t.match(table.stdout, new RegExp(`^${ep.id}\\s+Disabled \\(Audit\\)\\s+Disabled\\s+`, 'm'), 'cilium endpoint list: "Disabled (Audit)"');

  t.match((await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })).text, /^HTTP\/1\.1 200 /, 'audited: the xwing lands');
  t.match((await send(s, { from: ips.tiefighter, method: 'PUT', path: '/v1/exhaust-port' })).text, /^HTTP\/1\.1 200 /);

  // A reload builds new Endpoint objects: the option belongs to the pod and stays.
  writeFileSync(join(dir, 'rule1.yaml'), deathstarPolicy(PORT, [...LANDING, { method: 'GET', path: '/v1/' }]));
  const r = await adminRequest(admin, 'POST', '/reload');
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.match((await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })).text, /^HTTP\/1\.1 200 /, 'still audited after a reload');
  t.equal(reached(bs).length, 3);

  // One pod back to enforcement: only the requests the balancer sends to the other are audited.
  t.equal((await endpointConfig([String(one.id), 'PolicyAuditMode=Disabled', '--server', admin])).code, 0);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push((await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })).text.slice(0, 15));
  t.same(answers.sort(), ['', '', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'], 'round robin: half dropped, half audited');
  t.equal(bs[ips.deathstar.indexOf(ips.deathstar[0])]!.seen.length + bs[1]!.seen.length, 5);
  t.equal((await endpointConfig([String(two.id), 'PolicyAuditMode=Disabled', '--server', admin])).code, 0);
  t.equal((await send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })).text, '', 'enforced again');
  t.equal(reached(bs).length, 5);
  const audited = (await flows(ro)).filter((f) => f.flow.verdict === 'AUDIT' && f.flow.event_type?.type === 5);
  t.equal(audited.length, 4, 'one audited policy verdict per audited xwing request');
});

t.test('--workers 2: the primary hands the flag and every endpoint option to its workers', async (t) => {
  const bs = await backends(t);
  const dir = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': deathstarPolicy(PORT, LANDING) });
  const s = await serve(['-f', dir, '--listen', `${ip(2)}:0`, '--admin', `${ip(2)}:0`, '--workers', '2']);
  t.teardown(() => s.stop());
  const eps = (JSON.parse(await adminText(s.admin, '/v1/endpoints')) as { id: number; name: string }[]).filter((e) => e.name.startsWith('deathstar'));
  for (const ep of eps) t.equal((await endpointConfig([String(ep.id), 'PolicyAuditMode=Enabled', '--server', s.admin])).code, 0);
  // Several connections: the kernel spreads them over both workers.
  const answers = await Promise.all(Array.from({ length: 6 }, () => send(s, { from: ips.xwing, method: 'POST', path: '/v1/request-landing' })));
  t.same(answers.map((a) => a.text.slice(0, 15)), Array(6).fill('HTTP/1.1 200 OK'), 'every worker audits');
  t.equal(reached(bs).length, 6);
  const audited = await until(() => flows(s.admin), (fs) => fs.filter((f) => f.flow.event_type?.type === 5).length === 6, 'six audited verdicts');
  t.ok(audited.every((f) => f.flow.event_type?.type !== 5 || f.flow.verdict === 'AUDIT'));
  t.equal(await sample(s.admin, 'hubble_policy_verdicts_total{direction="ingress",match="none",action="audit"}'), 6, 'counted by the primary');
});

t.test('AuditModes: per-direction L7 auditing, options follow pods across revisions, snapshots', async (t) => {
  const { AuditModes } = await import('../../../proxy/exchange/audit-modes.js');
  const ep = (id: number, name: string) => ({ id, namespace: 'default', name, ips: [], identity: { id: 1, labels: [] }, podLabels: {}, workload: undefined, namedPorts: new Map() });
  const src = ep(7, 'tiefighter');
  const dst = ep(9, 'deathstar');
  const rule = (direction: 'INGRESS' | 'EGRESS') => ({ kind: 'CiliumNetworkPolicy' as const, namespace: 'default', name: 'r', ruleIndex: 0, direction, field: 'spec' });
  const a = new AuditModes();
  a.index([src, dst]);
  t.equal(a.enabled(dst), false);
  a.set(dst, true);
  t.equal(a.enabled(dst), true);
  t.equal(a.enabled(src), false);
  t.equal(a.l7Audited(src, dst, [rule('INGRESS')]), true, "ingress rules: the destination's mode");
  t.equal(a.l7Audited(src, dst, undefined), true);
  t.equal(a.l7Audited(src, dst, [rule('EGRESS')]), false, "egress rules: the source's mode");
  t.equal(a.l7Audited(src, dst, [rule('EGRESS'), rule('INGRESS')]), false, 'both directions judged: both must audit');
  // The next revision: new Endpoint objects; the deathstar pod renumbered, another pod on its old ID.
  const dst2 = ep(11, 'deathstar');
  const other = ep(9, 'other');
  a.index([src, dst2, other]);
  t.equal(a.enabled(dst2), true, 'the option follows the pod');
  t.equal(a.enabled(other), false, 'not the ID');
  t.equal(a.enabled(ep(0, 'deathstar')), false, "another node's pod (ID 0) follows the flag");
  const seen: unknown[] = [];
  const b = new AuditModes(true);
  b.index([src, dst2, other]);
  b.onChange((s) => seen.push(s));
  t.equal(b.enabled(other), true, 'the flag');
  b.restore(a.snapshot());
  t.equal(b.global, false);
  t.equal(b.enabled(dst2), true);
  t.equal(b.enabled(other), false);
  t.same(seen, [{ global: false, endpoints: [['default/deathstar', true]] }]);
  a.set(dst2, false);
  t.equal(a.enabled(dst2), false, 'a change is seen by the next request');
  t.equal(a.option(dst2), false);
  t.equal(a.option(src), undefined);
  // The pod leaves, then one of the same name comes back: it starts from the flag, as in Cilium.
  a.set(dst2, true);
  a.index([src, other]);
  t.equal(a.option(dst2), undefined, 'the option ended with its pod');
  const back = ep(12, 'deathstar');
  a.index([src, other, back]);
  t.equal(a.enabled(back), false, 'a new pod of the same name is not audited');
});

/** tiefighter's egress: TCP PORT to the xwing only (so traffic to the deathstar is an egress drop), or L7 to the deathstar. */
const tiefighterEgress = (to: 'xwing' | 'deathstar-l7') => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: tiefighter-egress, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: ${to === 'xwing' ? 'xwing' : 'deathstar'}}}]
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
${to === 'xwing' ? '' : `      rules:
        http: [{method: GET, path: /public}]
`}`;

/** deathstar's ingress from the xwing only: the tiefighter is an ingress drop. */
const deathstarFromXwing = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deathstar-from-xwing, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {class: xwing}}]
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
`;

t.test("one endpoint in audit mode never lifts the other endpoint's policy", async (t) => {
  const bs = await backends(t);
  const sock = join(mkdtempSync(join(tmpdir(), 'l7guard-admin-')), 'admin.sock');
  const admin = `unix:${sock}`;
  const endpointIds = async (prefix: string) =>
    ((await adminRequest(admin, 'GET', '/v1/endpoints')).body as unknown as { id: number; name: string }[]).filter((e) => e.name.startsWith(prefix)).map((e) => e.id);

  // (a) The tiefighter is audited and its egress does not cover the deathstar; the deathstar enforces L7.
  const a = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': deathstarPolicy(PORT, LANDING), 'egress.yaml': tiefighterEgress('xwing') });
  const s = await serve(['-f', a, '--listen', `${ip(1)}:0`, '--admin', admin]);
  t.teardown(() => s.stop());
  const [tie] = await endpointIds('tiefighter');
  t.equal((await endpointConfig([String(tie), 'PolicyAuditMode=Enabled', '--server', admin])).code, 0);
  const landing = await send(s, { from: ips.tiefighter, method: 'POST', path: '/v1/request-landing' });
  t.match(landing.text, /^HTTP\/1\.1 200 /, 'the egress drop is audited: what the deathstar allows lands');
  const put = await send(s, { from: ips.tiefighter, method: 'PUT', path: '/v1/exhaust-port' });
  t.match(put.text, /^HTTP\/1\.1 403 /, "the deathstar's L7 rules still deny the PUT");
  t.same(reached(bs), ['POST /v1/request-landing'], 'the PUT never reached a pod');
  await s.stop();

  // (b) The deathstar is audited and denies the tiefighter at L3/L4; the tiefighter's egress L7 rules enforce.
  const b = clusterDir(starWarsCluster(ips, PORT), { 'rule1.yaml': deathstarFromXwing, 'egress.yaml': tiefighterEgress('deathstar-l7') });
  const s2 = await serve(['-f', b, '--listen', `${ip(1)}:0`, '--admin', admin]);
  t.teardown(() => s2.stop());
  for (const id of await endpointIds('deathstar')) t.equal((await endpointConfig([String(id), 'PolicyAuditMode=Enabled', '--server', admin])).code, 0);
  const get = await send(s2, { from: ips.tiefighter, method: 'GET', path: '/public' });
  t.match(get.text, /^HTTP\/1\.1 200 /, "the ingress drop is audited: what the tiefighter's egress allows lands");
  const post = await send(s2, { from: ips.tiefighter, method: 'POST', path: '/x' });
  t.match(post.text, /^HTTP\/1\.1 403 /, "the tiefighter's egress L7 rules still deny the POST");
  t.same(reached(bs), ['GET /public', 'POST /v1/request-landing'], 'the POST never reached a pod');
});
