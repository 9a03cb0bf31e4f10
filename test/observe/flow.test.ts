/**
 * toFlow/toFlows against committed golden JSON (test/observe/golden/*.json) and against the
 * flow.proto field names (test/observe/flow-proto.ts). Regenerate goldens deliberately with
 * `UPDATE_GOLDEN=1 npx tap dist/test/observe/flow.test.js` and review the diff.
 *
 * Sources for the expected values:
 *   cilium/cilium:pkg/hubble/parser/seven/parser.go @ 3ee8bc47  (L7 fields, is_reply, event_type 129)
 *   cilium/cilium:pkg/hubble/parser/seven/http.go @ 5898ae21    (headers, code on responses, summaries)
 *   cilium/cilium:pkg/hubble/parser/threefour/parser.go @ 11a1f688 (drop_reason, is_reply absent)
 *   cilium/cilium:pkg/monitor/api/types.go (MessageTypeDrop 1, PolicyVerdict 5, AccessLog 129)
 */
import t from 'tap';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rfc3339, toFlow, toFlows, canonicalHeaderKey, redactUrlPassword, DROP_REASONS, type HubbleFlowResponse } from '../../observe/flow.js';
import type { FlowEvent } from '../../observe/flow-event.js';
import { serializeFlow } from '../../observe/flow-sink.js';
import { ENUMS, PROTO_DROP_REASONS, unknownKeys } from './flow-proto.js';
import { scenarios, uuidSeq, podPeer, XWING, DEATHSTAR, WORLD_ID, DEATHSTAR_SVC, jul, type ScenarioName } from './recorded-scenarios.js';

// dist/test/observe/ -> repo root
const GOLDEN_DIR = fileURLToPath(new URL('../../../test/observe/golden/', import.meta.url));
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

function golden(name: string, actual: unknown): unknown {
  const file = GOLDEN_DIR + name + '.json';
  if (UPDATE) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, JSON.stringify(actual, null, 2) + '\n');
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** What protojson would print: plain JSON data (no undefined, no bigint). */
function asJson(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

const names = Object.keys(scenarios) as ScenarioName[];

t.test('golden flow JSON per Star Wars scenario', async (t) => {
  for (const name of names) {
    const out = toFlows(scenarios[name], { uuid: uuidSeq() });
    const actual = asJson(out.length === 1 ? out[0] : out);
    t.same(actual, golden(name, actual), `${name} matches test/observe/golden/${name}.json`);
    t.strictSame(actual, golden(name, actual), `${name}: no extra keys`);
  }
});

t.test('every emitted key is a flow.proto field name', async (t) => {
  const all: HubbleFlowResponse[] = names.flatMap((n) => toFlows(scenarios[n]));
  for (const res of all) t.same(unknownKeys(asJson(res)), [], `${res.flow.Summary}: no unknown keys`);
  // The check itself must be able to fail.
  t.same(unknownKeys({ flow: { Type: 'L7', source: { id: 1 } }, node_name: 'n', time: 'x' }), ['flow.source.id']);
  t.same(unknownKeys({ flow: { l4: { tcp: {} } } }), ['flow.l4.tcp']);
});

t.test('enum values are flow.proto enum names', async (t) => {
  for (const n of names) {
    for (const res of toFlows(scenarios[n])) {
      const f = res.flow;
      t.ok((ENUMS.verdict as readonly string[]).includes(f.verdict as string), 'verdict');
      t.ok((ENUMS.Type as readonly string[]).includes(f.Type as string), 'Type');
      t.ok((ENUMS.traffic_direction as readonly string[]).includes(f.traffic_direction as string), 'traffic_direction');
      t.ok((ENUMS.ipVersion as readonly string[]).includes(f.IP?.ipVersion as string), 'ipVersion');
      if (f.l7 !== undefined) t.ok((ENUMS.l7type as readonly string[]).includes(f.l7.type as string), 'l7.type');
      if (f.drop_reason_desc !== undefined) {
        t.equal(PROTO_DROP_REASONS[f.drop_reason_desc], f.drop_reason, `${f.drop_reason_desc} number`);
      }
    }
  }
  for (const [name, r] of Object.entries(DROP_REASONS)) t.equal(PROTO_DROP_REASONS[name], r.code, `DROP_REASONS.${name} is flow.proto's`);
});

t.test('L7 request / response specifics', async (t) => {
  const req = toFlow(scenarios.landingRequest).flow;
  t.equal(req.Type, 'L7');
  t.same(req.event_type, { type: 129 });
  t.equal(req.is_reply, false, 'is_reply is a BoolValue: false is printed');
  t.equal(req.reply, undefined, 'deprecated reply omitted when false');
  t.equal(req.l7?.http?.code, undefined, 'no code on requests');
  t.equal(req.l7?.latency_ns, undefined);
  t.equal(req.drop_reason_desc, undefined, 'DROP_REASON_UNKNOWN is the default: omitted');
  t.same(req.l7?.http?.headers?.map((h) => h.key), ['Accept', 'User-Agent', 'X-Request-Id'], 'canonical, sorted');
  t.equal(req.Summary, 'HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing');

  const res = toFlow(scenarios.landingResponse).flow;
  t.equal(res.is_reply, true);
  t.equal(res.reply, true);
  t.equal(res.l7?.latency_ns, '1532417', 'uint64 as string');
  t.equal(res.l7?.http?.code, 200);
  t.equal(res.source?.pod_name, 'deathstar-8c4c77fb7-vhj8x', 'responses are recorded from the responder');
  t.equal(res.l4?.TCP?.source_port, 80);
  t.equal(res.l4?.TCP?.destination_port, 33330);
  t.equal(res.Summary, 'HTTP/1.1 200 1ms (POST http://deathstar.default.svc.cluster.local/v1/request-landing)');

  const denied = toFlow(scenarios.exhaustRequest).flow;
  t.equal(denied.verdict, 'DROPPED');
  t.equal(denied.drop_reason_desc, undefined, 'L7 denials carry no drop reason');
  t.same(denied.destination?.workloads, [{ name: 'deathstar', kind: 'Deployment' }]);
  t.equal(denied.source?.workloads, undefined, 'bare Pod: no workload (GetWorkloadMetaFromPod)');
});

t.test('L3/L4 policy drop yields policy-verdict + drop', async (t) => {
  const [pv, drop] = toFlows(scenarios.xwingDrop);
  t.ok(pv && drop);
  t.same(pv?.flow.event_type, { type: 5 });
  t.same(drop?.flow.event_type, { type: 1, sub_type: 133 });
  for (const f of [pv?.flow, drop?.flow]) {
    t.equal(f?.Type, 'L3_L4');
    t.equal(f?.verdict, 'DROPPED');
    t.equal(f?.drop_reason, 133);
    t.equal(f?.drop_reason_desc, 'POLICY_DENIED');
    t.equal(f?.is_reply, undefined, 'direction unknown: printed as <>');
    t.same(f?.l4?.TCP?.flags, { SYN: true });
    t.equal(f?.Summary, 'TCP Flags: SYN');
  }
  t.same(toFlow(scenarios.xwingDrop).flow.event_type, { type: 1, sub_type: 133 }, 'toFlow is the drop itself');

  const deny = toFlows({ ...scenarios.xwingDrop, dropReason: 'POLICY_DENY' });
  t.same(deny[1]?.flow.event_type, { type: 1, sub_type: 181 });
  t.equal(deny[1]?.flow.drop_reason_desc, 'POLICY_DENY');
});

t.test('proxy-level drops', async (t) => {
  const ev: FlowEvent = { ...scenarios.xwingDrop, dropReason: 'NO_SERVICE' };
  const out = toFlows(ev);
  t.equal(out.length, 1, 'no policy-verdict for non-policy drops');
  t.equal(out[0]?.flow.drop_reason_desc, 'SERVICE_BACKEND_NOT_FOUND', 'proto name for 158');
  t.same(out[0]?.flow.event_type, { type: 1, sub_type: 158 });
  t.equal(out[0]?.flow.Summary, 'TCP Flags: ACK, PSH', 'data segment, Hubble flag order');
  t.equal(toFlow({ ...ev, dropReason: 'UNKNOWN_L3_TARGET_ADDRESS' }).flow.drop_reason, 150);
});

t.test('world peer, IPv6, mapped IPv4, service', async (t) => {
  const world = toFlow({
    ...scenarios.landingRequest,
    source: { ip: '::ffff:1.2.3.4', port: 5678, identity: WORLD_ID, endpoint: undefined },
    destination: podPeer(DEATHSTAR, 80, DEATHSTAR_SVC),
  }).flow;
  t.same(world.source, { identity: 2, labels: ['reserved:world'] }, 'no ID, no pod for world');
  t.equal(world.IP?.source, '1.2.3.4');
  t.equal(world.IP?.ipVersion, 'IPv4');
  t.same(world.destination_service, { name: 'deathstar', namespace: 'default' });
  const resp = toFlow({ ...scenarios.landingResponse, destination: podPeer(DEATHSTAR, 80, DEATHSTAR_SVC) }).flow;
  t.same(resp.source_service, { name: 'deathstar', namespace: 'default' }, 'server side is the source on responses');
  t.equal(resp.destination_service, undefined);

  const v6 = toFlow({ ...scenarios.xwingDrop, source: { ...podPeer(XWING, 40000), ip: 'fd00::10' }, destination: { ...podPeer(DEATHSTAR, 80), ip: 'fd00::20' } }).flow;
  t.equal(v6.IP?.ipVersion, 'IPv6');
  const withCluster = toFlow(scenarios.exhaustRequest, { clusterName: 'default' }).flow;
  t.equal(withCluster.source?.cluster_name, 'default');
});

t.test('rfc3339 like protojson', async (t) => {
  t.equal(rfc3339(jul(26, 6, 57, 12, 949)), '2025-07-26T06:57:12.949Z');
  t.equal(rfc3339(jul(26, 6, 57, 12, 0)), '2025-07-26T06:57:12Z', 'zero fraction omitted');
  t.equal(rfc3339(jul(26, 6, 57, 12, 90)), '2025-07-26T06:57:12.090Z');
  t.equal(rfc3339(jul(26, 6, 57, 13, 5)), '2025-07-26T06:57:13.005Z', 'per-second cache moves on');
  t.equal(rfc3339(jul(26, 6, 57, 12, 949.7)), '2025-07-26T06:57:12.949Z', 'sub-ms truncated');
});

t.test('header keys and URL redaction (seven/http.go)', async (t) => {
  t.equal(canonicalHeaderKey('x-request-id'), 'X-Request-Id');
  t.equal(canonicalHeaderKey('CONTENT-TYPE'), 'Content-Type');
  t.equal(canonicalHeaderKey(':authority'), ':authority', 'non-token key unchanged');
  t.equal(redactUrlPassword('http://u:secret@h/p'), 'http://u:HUBBLE_REDACTED@h/p');
  t.equal(redactUrlPassword('http://u@h/p'), 'http://u@h/p', 'no password, nothing to redact');
  t.equal(redactUrlPassword('http://h/p@x:y'), 'http://h/p@x:y', '@ in the path');
  const f = toFlow({ ...scenarios.landingRequest, http: { ...scenarios.landingRequest.http, url: 'http://a:b@deathstar/v1' } }).flow;
  t.equal(f.l7?.http?.url, 'http://a:HUBBLE_REDACTED@deathstar/v1');
  t.notMatch(f.Summary ?? '', /:b@/);
  const multi = toFlow({ ...scenarios.landingRequest, http: { ...scenarios.landingRequest.http, headers: [{ key: 'b', value: '2' }, { key: 'a', value: '1' }, { key: 'B', value: '3' }] } }).flow;
  t.same(multi.l7?.http?.headers, [{ key: 'A', value: '1' }, { key: 'B', value: '2' }, { key: 'B', value: '3' }], 'one entry per value, order kept within a key');
});

t.test('uuid per flow', async (t) => {
  const a = toFlow(scenarios.landingRequest).flow.uuid;
  const b = toFlow(scenarios.landingRequest).flow.uuid;
  t.match(a, /^[0-9a-f-]{36}$/);
  t.not(a, b);
});

t.test('policy provenance: *_allowed_by / *_denied_by as flow.proto Policy', async (t) => {
  const rule1 = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', ruleIndex: 0, direction: 'INGRESS', field: 'spec.ingress[0]' } as const;
  const out = { kind: 'CiliumClusterwideNetworkPolicy', namespace: undefined, name: 'ships-out', ruleIndex: 0, direction: 'EGRESS', field: 'spec.egress[0]' } as const;
  const deny = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'no-xwing', ruleIndex: 1, direction: 'INGRESS', field: 'specs[1].ingressDeny[0]' } as const;
  const RULE1 = {
    name: 'rule1', namespace: 'default',
    labels: ['k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy', 'k8s:io.cilium.k8s.policy.name=rule1', 'k8s:io.cilium.k8s.policy.namespace=default'],
    revision: '3', kind: 'CiliumNetworkPolicy',
  };
  const allowed = asJson(toFlow({ ...scenarios.landingRequest, by: [out, rule1, rule1] }, { uuid: uuidSeq() })) as { flow: Record<string, unknown> };
  t.strictSame(allowed.flow['ingress_allowed_by'], [RULE1], 'request FORWARDED: ingress_allowed_by, one entry per object');
  t.strictSame(allowed.flow['egress_allowed_by'], [{
    name: 'ships-out',
    labels: ['k8s:io.cilium.k8s.policy.derived-from=CiliumClusterwideNetworkPolicy', 'k8s:io.cilium.k8s.policy.name=ships-out'],
    revision: '3', kind: 'CiliumClusterwideNetworkPolicy',
  }], 'egress side, clusterwide: no namespace');
  t.notOk('ingress_denied_by' in allowed.flow, 'nothing denied');
  t.same(Object.keys(allowed.flow).slice(-3), ['egress_allowed_by', 'ingress_allowed_by', 'Summary'], 'declaration order: before Summary');

  const l7deny = asJson(toFlow({ ...scenarios.exhaustRequest, by: [rule1] })) as { flow: Record<string, unknown> };
  t.strictSame(l7deny.flow['ingress_denied_by'], [RULE1], 'L7 DROPPED: the policy whose HTTP rules refused it');
  const resp = asJson(toFlow({ ...scenarios.exhaustResponse, by: [rule1] })) as { flow: Record<string, unknown> };
  t.notOk('ingress_denied_by' in resp.flow || 'ingress_allowed_by' in resp.flow, 'responses carry no policies');

  const [verdict, drop] = toFlows({ ...scenarios.xwingDrop, dropReason: 'POLICY_DENY', by: [deny] }).map((r) => asJson(r) as { flow: Record<string, unknown> });
  t.same((verdict!.flow['ingress_denied_by'] as { name: string }[]).map((p) => p.name), ['no-xwing'], 'policy-verdict names the deny policy');
  t.notOk('ingress_denied_by' in drop!.flow, 'the drop notification does not (Hubble correlates policy verdicts only)');
  const [noRule] = toFlows(scenarios.xwingDrop).map((r) => asJson(r) as { flow: Record<string, unknown> });
  t.notOk('ingress_denied_by' in noRule!.flow, 'default deny: no policy to name');
  for (const f of [allowed, l7deny, verdict]) t.same(unknownKeys(f), [], 'flow.proto field names');
  const res = toFlow({ ...scenarios.landingRequest, by: [out, rule1] });
  t.strictSame(JSON.parse(serializeFlow(res)), asJson(res), 'fast-json-stringify schema keeps the policy fields');
});
