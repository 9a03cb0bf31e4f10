/**
 * renderCompact against the `hubble observe` lines of a run of the Star Wars demo on a Cilium 1.17.6 cluster, verbatim
 * (identities, pod and ports set to that run's), and against the response/request layout of
 * docs/semantics.md#flows.
 *
 * Layout source: cilium/cilium:hubble/pkg/printer/printer.go @ 21d690e1 (WriteProtoFlow
 * CompactOutput, Hostname, fmtIdentity, GetFlowType, getVerdict); drop texts from
 * pkg/monitor/api/drop.go; PolicyMatchType names from pkg/monitor/api/types.go; reserved identity
 * names from pkg/identity/numericidentity.go.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { renderCompact, stampMilli, flowType } from '../../observe/compact.js';
import { toFlow, toFlows } from '../../observe/flow.js';
import { scenarios, podPeer, DEATHSTAR, WORLD_ID, HOST_ID, DEATHSTAR_SVC, jul } from './recorded-scenarios.js';

const DS = 'default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476)';
const EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';
const LANDING = 'http://deathstar.default.svc.cluster.local/v1/request-landing';

const compact = (ev: Parameters<typeof toFlows>[0]): string[] => toFlows(ev).map((r) => renderCompact(r));

t.test('hubble observe lines of a real cluster, verbatim', async (t) => {
  // tiefighter's PUT /v1/exhaust-port, L7 DROPPED
  t.same(compact(scenarios.exhaustRequest), [
    'Jul 26 06:57:12.949: default/tiefighter:33338 (ID:22234) -> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)',
  ]);
  // xwing's SYN: policy-verdict first, then the drop, same timestamp
  t.same(compact(scenarios.xwingDrop), [
    'Jul 26 06:57:34.526: default/xwing:56934 (ID:42250) <> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)',
    'Jul 26 06:57:34.526: default/xwing:56934 (ID:42250) <> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) Policy denied DROPPED (TCP Flags: SYN)',
  ]);
  // the drop flow alone
  t.equal(
    renderCompact(toFlow({ ...scenarios.xwingDrop, timeMs: jul(26, 6, 57, 33, 511) })),
    'Jul 26 06:57:33.511: default/xwing:56934 (ID:42250) <> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) Policy denied DROPPED (TCP Flags: SYN)',
  );
});

t.test('request/response pairs (Hubble compact layout)', async (t) => {
  t.same(compact(scenarios.landingRequest), [`Jul 26 06:57:05.120: default/tiefighter:33330 (ID:22234) -> ${DS} http-request FORWARDED (HTTP/1.1 POST ${LANDING})`]);
  t.same(compact(scenarios.landingResponse), [`Jul 26 06:57:05.122: default/tiefighter:33330 (ID:22234) <- ${DS} http-response FORWARDED (HTTP/1.1 200 1ms (POST ${LANDING}))`]);
  t.same(compact(scenarios.exhaustResponse), [`Jul 26 06:57:12.949: default/tiefighter:33338 (ID:22234) <- ${DS} http-response FORWARDED (HTTP/1.1 403 0ms (PUT ${EXHAUST}))`]);
});

t.test('reserved peers print by name, without a pod', async (t) => {
  const world = renderCompact(toFlow({ ...scenarios.landingRequest, source: { ip: '1.2.3.4', port: 5678, identity: WORLD_ID, endpoint: undefined } }));
  t.equal(world, `Jul 26 06:57:05.120: 1.2.3.4:5678 (world) -> ${DS} http-request FORWARDED (HTTP/1.1 POST ${LANDING})`);
  const host = renderCompact(toFlow({ ...scenarios.xwingDrop, source: { ip: '169.254.25.10', port: 53, identity: HOST_ID, endpoint: undefined } }));
  t.match(host, /^Jul 26 06:57:34\.526: 169\.254\.25\.10:53 \(host\) <> default\/deathstar/);
  const v6 = renderCompact(toFlow({ ...scenarios.xwingDrop, source: { ip: 'fd00::1', port: 40000, identity: WORLD_ID, endpoint: undefined } }));
  t.match(v6, /: \[fd00::1\]:40000 \(world\) <> /, 'JoinHostPort brackets IPv6');
});

t.test('pod beats service; service name without a pod', async (t) => {
  const svcOnly = renderCompact(toFlow({
    ...scenarios.landingRequest,
    destination: { ip: '10.233.25.94', port: 80, identity: WORLD_ID, endpoint: undefined, service: DEATHSTAR_SVC },
  }));
  t.match(svcOnly, / -> default\/deathstar:80 \(world\) http-request /);
  const both = renderCompact(toFlow({ ...scenarios.landingRequest, destination: podPeer(DEATHSTAR, 80, DEATHSTAR_SVC) }));
  t.match(both, / -> default\/deathstar-8c4c77fb7-vhj8x:80 \(ID:27476\) /);
});

t.test('time format: StampMilli, UTC by default, TZ with localTime', async (t) => {
  t.equal(stampMilli('2025-07-05T01:02:03.004Z'), 'Jul  5 01:02:03.004', '_2 pads the day with a space');
  t.equal(stampMilli('2025-12-31T23:59:59Z'), 'Dec 31 23:59:59.000');
  t.equal(stampMilli(undefined), 'N/A');
  t.equal(stampMilli('garbage'), 'N/A');
  const modUrl = new URL('../../observe/compact.js', import.meta.url).href;
  const run = (tz: string, local: boolean): string =>
    execFileSync(process.execPath, ['--input-type=module', '-e',
      `import { stampMilli } from ${JSON.stringify(modUrl)}; process.stdout.write(stampMilli('2025-07-26T06:57:12.949Z', ${local}))`],
    { env: { ...process.env, TZ: tz }, encoding: 'utf8' });
  t.equal(run('UTC', true), 'Jul 26 06:57:12.949', 'TZ=UTC');
  t.equal(run('Asia/Seoul', true), 'Jul 26 15:57:12.949', 'TZ=Asia/Seoul follows TZ');
  t.equal(run('Asia/Seoul', false), 'Jul 26 06:57:12.949', 'default ignores TZ, like Hubble');
});

t.test('options and flow types', async (t) => {
  t.equal(
    renderCompact(toFlow(scenarios.exhaustRequest), { printNodeName: true }),
    `Jul 26 06:57:12.949 [k8s-w1]: default/tiefighter:33338 (ID:22234) -> ${DS} http-request DROPPED (HTTP/1.1 PUT ${EXHAUST})`,
  );
  t.equal(flowType(toFlow({ ...scenarios.xwingDrop, dropReason: 'POLICY_DENY' }).flow), 'Policy denied by denylist');
  t.equal(flowType(toFlow({ ...scenarios.xwingDrop, dropReason: 'NO_SERVICE' }).flow), 'Service backend not found');
  t.equal(flowType({ event_type: { type: 1, sub_type: 199 } }), '199', 'unknown drop code prints the number');
  t.equal(flowType({ event_type: { type: 5 }, policy_match_type: 2, traffic_direction: 'EGRESS' }), 'policy-verdict:L3-L4 EGRESS');
  const allowed = renderCompact({ flow: { ...toFlows(scenarios.xwingDrop)[0]!.flow, verdict: 'FORWARDED' }, node_name: 'n', time: '' });
  t.match(allowed, / policy-verdict:none INGRESS ALLOWED \(TCP Flags: SYN\)$/);
});
