// `l7guard policy replay` on a flow log that a real `l7guard serve --flows FILE` wrote under the
// Star Wars demo's traffic, recorded under the demo's L3/L4 policy and replayed against candidates.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { runPolicyReplay } from '../../cli/policy-replay.js';
import { reportError } from '../../cli/report-error.js';
import { runCli, serve } from '../helpers/serve.js';
import { hasCompleteResponse, loopbackBlock, rawExchange } from '../helpers/net.js';
import { recordingBackend } from '../helpers/backend.js';
import { clusterDir, deathstarPolicy, starWarsCluster } from '../helpers/cluster.js';
import type { HubbleFlowResponse } from '../../observe/flow.js';
import type { ReplayReport } from '../../observe/replay.js';

const POD_PORT = 18080;
const HOST = 'deathstar.default.svc.cluster.local';
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const cluster = starWarsCluster(ips, POD_PORT);
const work = mkdtempSync(join(tmpdir(), 'l7guard-replay-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const flowsFile = join(work, 'flows.ndjson');

const L7 = [{ method: 'POST', path: '/v1/request-landing' }];
/** A candidate folder: the cluster (unless `bare`) and one policy. */
const candidate = (policy: string, bare = false) => (bare ? clusterDir('', { 'policy.yaml': policy }) : clusterDir(cluster, { 'policy.yaml': policy }));
const replay = (...args: string[]) => runCli(['policy', 'replay', '--flows', flowsFile, ...args]);

/** The command in this process (a child process costs seconds on a loaded machine): what it prints and returns. */
async function replayHere(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const sink = () => {
    const w = new Writable({ write: (c: Buffer, _e, done) => { w.text += c.toString(); done(); } }) as Writable & { text: string };
    w.text = '';
    return w;
  };
  const out = sink();
  const err = sink();
  let code: number;
  try {
    code = await runPolicyReplay(args, out, err);
  } catch (e) {
    // What main.ts prints for a command's error.
    const r = reportError('policy', e);
    err.text += r.text;
    code = r.exitCode;
  }
  return { code, stdout: out.text, stderr: err.text };
}
const replayed = (...args: string[]) => replayHere(['--flows', flowsFile, ...args]);

t.before(async () => {
  const backends = await Promise.all(ips.deathstar.map((a, i) => recordingBackend(`deathstar-${i}`, a, POD_PORT)));
  const s = await serve(['-f', candidate(deathstarPolicy(POD_PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--flows', flowsFile]);
  const send = (from: string, method: string, path: string) =>
    rawExchange({ from, to: s.host, port: s.port, data: `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, until: hasCompleteResponse, idleMs: 500 });
  try {
    // The demo's three commands, then the exhaust port again with a query.
    await send(ips.tiefighter, 'POST', '/v1/request-landing');
    await send(ips.tiefighter, 'PUT', '/v1/exhaust-port');
    const xwing = await send(ips.xwing, 'POST', '/v1/request-landing');
    if (xwing.bytes.length !== 0) throw new Error(`xwing got an answer under the L3/L4 policy: ${xwing.text}`);
    await send(ips.tiefighter, 'PUT', '/v1/exhaust-port?reactor=main');
  } finally {
    await s.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

const recorded = (): HubbleFlowResponse[] => readFileSync(flowsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HubbleFlowResponse);

t.test('the flows serve wrote record what replay needs', async (t) => {
  const flows = recorded().map((r) => r.flow);
  const requests = flows.filter((f) => f.l7?.type === 'REQUEST');
  t.same(requests.map((f) => [f.l7?.http?.method, f.l7?.http?.url]), [
    ['POST', `http://${HOST}/v1/request-landing`],
    ['PUT', `http://${HOST}/v1/exhaust-port`],
    ['PUT', `http://${HOST}/v1/exhaust-port?reactor=main`],
  ], 'method, and the URL: host, path and query');
  for (const f of requests) {
    t.equal(f.source?.pod_name, 'tiefighter');
    t.ok(f.source?.labels?.includes('k8s:org=empire') && f.source.identity !== undefined, 'source identity and labels');
    t.match(f.destination?.pod_name, /^deathstar-/);
    t.ok(f.destination?.labels?.includes('k8s:class=deathstar') && f.destination.identity !== undefined, 'destination identity and labels');
    t.equal(f.l4?.TCP?.destination_port, POD_PORT);
    t.same(f.ingress_allowed_by?.map((p) => [p.name, p.revision]), [['rule1', '1']], 'the revision that decided');
  }
  const verdict = flows.find((f) => f.event_type?.type === 5);
  t.equal(verdict?.source?.pod_name, 'xwing', 'the L3/L4 drop: its policy-verdict');
  t.ok(verdict?.source?.labels?.includes('k8s:org=alliance'));
  t.ok(verdict?.destination?.labels?.includes('k8s:org=empire'));
});

t.test('against the L7 policy: the exhaust port is newly denied, exit 1', { timeout: 60_000 }, async (t) => {
  const r = await replay('-f', candidate(deathstarPolicy(POD_PORT, L7)));
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr, '');
  t.match(r.stdout, /^Replayed 4 recorded decisions from .*: 2 newly denied, 0 newly allowed, 0 undecidable, 2 unchanged\nRecorded under policy revision 1\n/);
  t.match(r.stdout, /\nNewly denied \(2\):\nSOURCE +DESTINATION +PORT +METHOD +PATH +FLOWS +RECORDED +CANDIDATE\ndefault\/tiefighter +default\/deathstar +18080 +PUT +\/v1\/exhaust-port +2 +FORWARDED +denied at L7 \(403, INGRESS\): matches no HTTP rule of CiliumNetworkPolicy default\/rule1 rule 0 \(spec\.ingress\[0\]\)\n/);
  t.match(r.stdout, /\nNewly allowed: none\n\nUndecidable: none\n/);
  t.match(r.stdout, /\nSkipped flows: 3 responses, 1 drop notifications \(their policy-verdict flows are replayed\)\n$/);
});

t.test('against the policy it was recorded under: no change, exit 0', { timeout: 60_000 }, async (t) => {
  const r = await replay('-f', candidate(deathstarPolicy(POD_PORT)));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /: 0 newly denied, 0 newly allowed, 0 undecidable, 4 unchanged\n/);
});

t.test('-o json', async (t) => {
  const r = await replayed('-f', candidate(deathstarPolicy(POD_PORT, L7)), '-o', 'json');
  t.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout) as ReplayReport;
  t.same({ ...j, groups: undefined }, {
    decisions: 4, unchanged: 2, newlyDenied: 2, newlyAllowed: 0, undecidable: 0,
    skipped: { responses: 3, staged: 0, dropNotifications: 1, other: 0 }, recordedRevisions: [1], groups: undefined,
  });
  t.same(j.groups, [{
    change: 'newly-denied', source: 'default/tiefighter', destination: 'default/deathstar', port: POD_PORT, method: 'PUT', path: '/v1/exhaust-port',
    flows: 2, recorded: 'FORWARDED',
    candidate: {
      verdict: 'DENIED', layer: 'L7', reason: 'L7_DENIED', direction: 'INGRESS',
      by: [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', ruleIndex: 0, direction: 'INGRESS', field: 'spec.ingress[0]' }],
    },
  }]);
});

t.test('a candidate without the pods: the ends are judged by their recorded labels', async (t) => {
  const r = await replayed('-f', candidate(deathstarPolicy(POD_PORT, L7), true), '-o', 'json');
  t.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout) as ReplayReport;
  t.same([j.newlyDenied, j.unchanged, j.groups.map((g) => [g.change, g.method, g.path, g.flows])], [2, 2, [['newly-denied', 'PUT', '/v1/exhaust-port', 2]]]);
});

t.test('no policy at all: the xwing is newly allowed', async (t) => {
  const r = await replayed('-f', clusterDir(cluster));
  t.equal(r.code, 1, r.stderr);
  t.match(r.stdout, /\nNewly allowed \(1\):\nSOURCE.*\ndefault\/xwing +default\/deathstar +18080 +- +- +1 +DROPPED +allowed \(no policy enforces either direction\)\n/);
});

t.test('a header rule: undecidable, never guessed', async (t) => {
  const policy = stringify({
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'rule1', namespace: 'default' },
    spec: {
      endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } },
      ingress: [{
        fromEndpoints: [{ matchLabels: { org: 'empire' } }],
        toPorts: [{ ports: [{ port: String(POD_PORT), protocol: 'TCP' }], rules: { http: [
          { method: 'POST', path: '/v1/request-landing' },
          { method: 'PUT', path: '/v1/exhaust-port(\\?.*)?', headers: ['X-Has-Force: True'] },
        ] } }],
      }],
    },
  });
  const dir = candidate(policy);
  const r = await replayed('-f', dir);
  t.equal(r.code, 0, `undecidable is not a change: ${r.stderr}`);
  t.match(r.stdout, /: 0 newly denied, 0 newly allowed, 2 undecidable, 2 unchanged\n/);
  t.match(r.stdout, /\nUndecidable \(2\):\nSOURCE.*\ndefault\/tiefighter +default\/deathstar +18080 +PUT +\/v1\/exhaust-port +2 +FORWARDED +the decision depends on header fields a flow does not record: x-has-force\n/);
  const strict = await replayed('-f', dir, '--strict');
  t.equal(strict.code, 1, '--strict: undecidable counts as a change');
});

t.test('errors: exit 2 with a clear message', { timeout: 120_000 }, async (t) => {
  const missing = await runCli(['policy', 'replay', '--flows', join(work, 'nope.ndjson'), '-f', candidate(deathstarPolicy(POD_PORT))]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^l7guard policy: cannot read the flow log .*nope\.ndjson: ENOENT\n$/);

  const invalid = await replayed('-f', candidate(deathstarPolicy(POD_PORT).replace('fromEndpoints', 'fromEndpointz')));
  t.equal(invalid.code, 2);
  t.match(invalid.stderr, /^l7guard policy: the candidate does not load:\n.*fromEndpointz/);
  t.notMatch(invalid.stderr, /\n\s+at /, 'no stack trace');

  const garbled = join(work, 'garbled.ndjson');
  writeFileSync(garbled, readFileSync(flowsFile, 'utf8') + 'not json\n{"flow": {}}\n');
  const bad = await replayHere(['--flows', garbled, '-f', candidate(deathstarPolicy(POD_PORT))]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /is not a flow log .*:\n {2}line 9: /);

  const empty = join(work, 'empty.ndjson');
  writeFileSync(empty, '');
  const none = await replayHere(['--flows', empty, '-f', candidate(deathstarPolicy(POD_PORT))]);
  t.equal(none.code, 0, 'an empty log changes nothing');
  t.match(none.stderr, /^warning: .*empty\.ndjson holds no recorded policy decision/, 'but says so');

  const usage = await runCli(['policy', 'replay', '-f', candidate(deathstarPolicy(POD_PORT))]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /needs --flows FILE/);
});
