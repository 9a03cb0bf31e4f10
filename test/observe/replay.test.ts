// observe/replay.ts: which flows of a log are recorded decisions, what each recorded (AUDIT = the
// policy in force would have denied), and how audited L3/L4 verdicts pair with their request.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { RECORDED_ADDRESSES, starWarsYaml } from '../../fixtures/star-wars.js';
import { toFlows, type HubbleFlow, type HubbleFlowResponse } from '../../observe/flow.js';
import { FlowReplay, splitUrl, type ReplayReport } from '../../observe/replay.js';
import { Replayer } from '../../policy/replay.js';
import { build, MANIFESTS } from '../policy/helpers.js';
import { scenarios, uuidSeq } from './recorded-scenarios.js';

const cluster = starWarsYaml({ addresses: RECORDED_ADDRESSES, namespaceObject: true });
const L34 = readFileSync(MANIFESTS + 'examples__minikube__sw_l3_l4_policy.yaml', 'utf8');
const L7 = readFileSync(MANIFESTS + 'examples__minikube__sw_l3_l4_l7_policy.yaml', 'utf8');
const DENY = readFileSync(MANIFESTS + 'examples__minikube__sw_deny_policy.yaml', 'utf8');

const flows = (name: keyof typeof scenarios): HubbleFlowResponse[] => toFlows(scenarios[name], { uuid: uuidSeq() });
const edit = (r: HubbleFlowResponse, f: Partial<HubbleFlow> & { staged?: boolean }): HubbleFlowResponse => ({ ...r, flow: { ...r.flow, ...f } });

function run(policy: string, list: HubbleFlowResponse[]): ReplayReport {
  const replay = new FlowReplay(new Replayer(build([cluster, policy])));
  for (const r of list) replay.add(r);
  return replay.finish();
}
const counts = (r: ReplayReport) => [r.decisions, r.unchanged, r.newlyDenied, r.newlyAllowed, r.undecidable];

t.test('the demo as Hubble recorded it, under the L7 policy it was recorded with: nothing changes', async (t) => {
  const all = (['landingRequest', 'landingResponse', 'exhaustRequest', 'exhaustResponse', 'xwingDrop'] as const).flatMap(flows);
  const r = run(L7, all);
  t.same(counts(r), [3, 3, 0, 0, 0]);
  t.same(r.skipped, { responses: 2, staged: 0, dropNotifications: 1, other: 0 });
  t.same(r.recordedRevisions, [], 'these flows name no policy, so no revision');
  const l34 = run(L34, all);
  t.same(counts(l34), [3, 2, 0, 1, 0], 'the L3/L4 policy allows the exhaust port again');
  t.same(l34.groups.map((g) => [g.change, g.source, g.destination, g.method, g.path, g.recorded]), [['newly-allowed', 'default/tiefighter', 'default/deathstar', 'PUT', '/v1/exhaust-port', 'DROPPED']]);
});

t.test('AUDIT: what the policy in force would have denied', async (t) => {
  const [exhaust] = flows('exhaustRequest');
  t.same(counts(run(L7, [edit(exhaust!, { verdict: 'AUDIT' })])), [1, 1, 0, 0, 0], 'an audited request is a recorded denial');
  t.same(counts(run(L34, [edit(exhaust!, { verdict: 'AUDIT' })])), [1, 0, 0, 1, 0]);
  const r = run(L7, [edit(exhaust!, { verdict: 'AUDIT', staged: true })]);
  t.same([counts(r), r.skipped.staged], [[0, 0, 0, 0, 0], 1], "a staged policy's flow changed nothing in force: skipped");

  // An audited L3/L4 verdict and the request it let through on the same connection: one decision.
  const [verdict] = flows('xwingDrop');
  const audited = edit(verdict!, { verdict: 'AUDIT' });
  const [landing] = flows('landingRequest');
  const through = edit(landing!, { verdict: 'FORWARDED', source: verdict!.flow.source, IP: verdict!.flow.IP, l4: { TCP: { source_port: verdict!.flow.l4!.TCP!.source_port, destination_port: 80 } } });
  const paired = run(L7, [audited, through]);
  t.same(counts(paired), [1, 1, 0, 0, 0], 'the request of an audited connection is the audited decision');
  const alone = run(L7, [audited]);
  t.same(counts(alone), [1, 1, 0, 0, 0], 'an audited verdict with no request: an L3/L4 decision');
  const none = run('', [audited, through]);
  t.same([counts(none), none.groups.map((g) => [g.change, g.source, g.method, g.recorded])], [[1, 0, 0, 1, 0], [['newly-allowed', 'default/xwing', 'POST', 'AUDIT']]]);
});

t.test("an allowed policy-verdict (Cilium's, per connection) is judged at L3/L4 only", async (t) => {
  const [verdict] = flows('xwingDrop');
  const [landing] = flows('landingRequest');
  const allowed = edit(verdict!, { verdict: 'REDIRECTED', source: landing!.flow.source, IP: landing!.flow.IP });
  const r = run(L7, [allowed, edit(allowed, { verdict: 'FORWARDED' })]);
  t.same(counts(r), [2, 2, 0, 0, 0], 'HTTP rules on the port: still allowed at L3/L4, not undecidable');
  const denied = run(DENY, [allowed]);
  t.same([counts(denied), denied.groups.map((g) => [g.change, g.method, g.path])], [[1, 0, 1, 0, 0], [['newly-denied', '', '']]]);
});

t.test('flows that are no decision, or that cannot be judged', async (t) => {
  const [landing] = flows('landingRequest');
  const r = run(L7, [
    edit(landing!, { Type: 'L3_L4', l7: undefined, event_type: { type: 1, sub_type: 158 }, drop_reason_desc: 'SERVICE_BACKEND_NOT_FOUND' }),
    edit(landing!, { destination: { labels: ['reserved:world'] } }),
    edit(landing!, { l7: { type: 'REQUEST', http: { method: 'GET', url: 'deathstar/v1' } } }),
    // Hand-edited lines: wrong types where fields should be.
    edit(landing!, { l4: { TCP: { destination_port: 70000 } } }),
    edit(landing!, { source: { labels: 'k8s:org=empire' as unknown as string[], pod_name: 7 as unknown as string }, IP: undefined }),
  ]);
  t.same(r.skipped.other, 1, 'a drop that is not policy');
  t.same(r.groups.map((g) => [g.change, (g.candidate as { why: string }).why]), [
    ['undecidable', 'the flow names no destination pod'],
    ['undecidable', 'the flow\'s URL "deathstar/v1" is not http://host/path'],
    ['undecidable', 'the flow\'s destination port 70000 is not a TCP port'],
    ['undecidable', 'the flow names no source labels or address'],
  ]);
});

t.test('splitUrl keeps the path and query as written', async (t) => {
  t.same(splitUrl('http://deathstar.default.svc.cluster.local:80/v1/a%2Fb?x=1&y=/z'), { host: 'deathstar.default.svc.cluster.local:80', path: '/v1/a%2Fb?x=1&y=/z' });
  t.same(splitUrl('http://[fd00::1]:8080?q'), { host: '[fd00::1]:8080', path: '?q' });
  t.same(splitUrl('http://deathstar'), { host: 'deathstar', path: '/' });
  t.equal(splitUrl('/v1'), undefined);
});
