// /metrics, /stats/prometheus and /flows on the admin port of a real `l7guard serve`, after known
// traffic: 2 landings (200), 1 exhaust-port (L7 403), 1 xwing (L3/L4 drop).
import t from 'tap';
import { get, request } from 'node:http';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../../helpers/net.js';
import { recordingBackend } from '../../helpers/backend.js';
import { serve } from '../../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../../helpers/cluster.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const POD_PORT = 18080; // no root needed for the backends
const HOST = 'deathstar.default.svc.cluster.local';
const L7_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
  namespace: default
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "${POD_PORT}", protocol: TCP}]
      rules: {http: [{method: POST, path: /v1/request-landing}]}
`;

const req = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: curl/8.5.0\r\n\r\n`;

function fetchText(admin: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(`http://${admin}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/** The value of one sample line ("name{labels} value"), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('metrics and flows after known traffic', async (t) => {
  const backends = [
    await recordingBackend('deathstar-b9qmw', ips.deathstar[0], POD_PORT),
    await recordingBackend('deathstar-vhj8x', ips.deathstar[1], POD_PORT),
  ];
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, POD_PORT), { '10-policy.yaml': L7_POLICY });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--node-name', 'k8s-w1']);
  t.teardown(() => s.stop());

  for (const [from, method, path] of [[ips.tiefighter, 'POST', '/v1/request-landing'], [ips.tiefighter, 'POST', '/v1/request-landing'], [ips.tiefighter, 'PUT', '/v1/exhaust-port']] as const) {
    const r = await rawExchange({ from, to: s.host, port: s.port, data: req(method, path), until: hasCompleteResponse });
    t.match(r.text, method === 'PUT' ? /^HTTP\/1\.1 403 / : /^HTTP\/1\.1 200 /);
  }
  const dropped = await rawExchange({ from: ips.xwing, to: s.host, port: s.port, data: req('POST', '/v1/request-landing') });
  t.equal(dropped.bytes.length, 0, 'xwing dropped');
  t.equal(dropped.closed, true, 'xwing connection closed');

  await t.test('/metrics: Hubble, Cilium and l7guard names with the counted values', async (t) => {
    const m = await fetchText(s.admin, '/metrics');
    t.equal(m.status, 200);
    t.match(m.type, /^text\/plain; version=0\.0\.4/);
    const want: Record<string, number> = {
      'hubble_flows_processed_total{type="L7",subtype="HTTP",verdict="FORWARDED"}': 2 + 3, // 2 forwarded requests + 3 responses
      'hubble_flows_processed_total{type="L7",subtype="HTTP",verdict="DROPPED"}': 1,
      'hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="DROPPED"}': 1,
      'hubble_flows_processed_total{type="Drop",subtype="",verdict="DROPPED"}': 1,
      'hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"}': 2,
      'hubble_drop_total{reason="DROP_REASON_UNKNOWN",protocol="HTTP"}': 1,
      'hubble_http_requests_total{method="POST",protocol="HTTP/1.1",status="200",reporter="server"}': 2,
      'hubble_http_requests_total{method="PUT",protocol="HTTP/1.1",status="403",reporter="server"}': 1,
      'hubble_http_request_duration_seconds_count{method="POST",reporter="server"}': 2,
      'hubble_http_request_duration_seconds_bucket{le="+Inf",method="POST",reporter="server"}': 2,
      'cilium_policy_l7_total{rule="received",proxy_type="http"}': 3,
      'cilium_policy_l7_total{rule="forwarded",proxy_type="http"}': 2,
      'cilium_policy_l7_total{rule="denied",proxy_type="http"}': 1,
      'cilium_policy_l7_total{rule="parse_errors",proxy_type="http"}': 0,
      'l7guard_policy_revision': 1,
      'l7guard_policy_reloads_total{result="success"}': 0,
      'l7guard_policy_reloads_total{result="error"}': 0,
    };
    for (const [series, v] of Object.entries(want)) t.equal(sample(m.body, series), v, series);
    t.notMatch(m.body, /request-landing|exhaust-port/, 'never labelled by path');
    t.equal(sample(m.body, 'l7guard_connections_active'), 0, 'raw exchanges are closed');
    const alias = await fetchText(s.admin, '/stats/prometheus');
    t.equal(sample(alias.body, 'cilium_policy_l7_total{rule="received",proxy_type="http"}'), 3, '/stats/prometheus is the same registry');
  });

  await t.test('/flows: ring buffer as NDJSON with provenance; ?last; ?follow streams', async (t) => {
    const all = await fetchText(s.admin, '/flows');
    t.equal(all.type, 'application/x-ndjson');
    const flows = all.body.trim().split('\n').map((l) => JSON.parse(l) as { flow: Record<string, unknown>; node_name: string });
    t.equal(flows.length, 3 * 2 + 2, 'request+response per HTTP exchange, policy-verdict+drop for xwing');
    t.equal(flows[0]!.node_name, 'k8s-w1');
    const landing = flows[0]!.flow;
    t.same((landing['ingress_allowed_by'] as { name: string; revision: string }[]).map((p) => `${p.name}@${p.revision}`), ['rule1@1'], 'forwarded request names rule1');
    const denied = flows.find((f) => f.flow['verdict'] === 'DROPPED' && f.flow['Type'] === 'L7')!;
    t.same((denied.flow['ingress_denied_by'] as { name: string }[]).map((p) => p.name), ['rule1'], 'L7 deny names rule1');
    const verdict = flows.find((f) => (f.flow['event_type'] as { type: number }).type === 5)!;
    t.notOk('ingress_denied_by' in verdict.flow, 'xwing: no rule selected this peer');
    const last2 = await fetchText(s.admin, '/flows?last=2');
    t.same(last2.body.trim().split('\n').map((l) => (JSON.parse(l) as { flow: { Summary: string } }).flow.Summary), ['TCP Flags: SYN', 'TCP Flags: SYN']);
    t.equal((await fetchText(s.admin, '/flows?last=x')).status, 400);

    // follow: nothing old (no ?last), then the next exchange arrives as it happens.
    const lines: string[] = [];
    const followed = new Promise<void>((resolve, reject) => {
      const r = request(`http://${s.admin}/flows?follow=1`, (res) => {
        let buf = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          buf += c;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            lines.push(buf.slice(0, nl));
            buf = buf.slice(nl + 1);
            if (lines.length === 2) {
              r.destroy();
              resolve();
            }
          }
        });
      });
      r.on('error', (e) => (lines.length >= 2 ? resolve() : reject(e)));
      r.end();
    });
    await new Promise((r) => setTimeout(r, 200));
    await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing'), until: hasCompleteResponse });
    await followed;
    t.same(lines.map((l) => (JSON.parse(l) as { flow: { l7: { type: string } } }).flow.l7.type), ['REQUEST', 'RESPONSE'], 'followed flows');
  });
});

t.test('--flow-buffer 0: no ring buffer, metrics still counted, a follower still gets flows', async (t) => {
  const backends = [
    await recordingBackend('deathstar-b9qmw', ips.deathstar[0], POD_PORT),
    await recordingBackend('deathstar-vhj8x', ips.deathstar[1], POD_PORT),
  ];
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, POD_PORT), { '10-policy.yaml': L7_POLICY });
  const s = await serve(['-f', dir, '--listen', `${ip(2)}:0`, '--admin', `${ip(2)}:0`, '--flow-buffer', '0']);
  t.teardown(() => s.stop());
  const land = () => rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req('POST', '/v1/request-landing'), until: hasCompleteResponse });
  t.match((await land()).text, /^HTTP\/1\.1 200 /);
  t.equal((await fetchText(s.admin, '/flows')).body, '', 'nothing kept');
  const m = await fetchText(s.admin, '/metrics');
  t.equal(sample(m.body, 'cilium_policy_l7_total{rule="forwarded",proxy_type="http"}'), 1, 'counted without flows');
  t.equal(sample(m.body, 'hubble_http_requests_total{method="POST",protocol="HTTP/1.1",status="200",reporter="server"}'), 1);

  const got: string[] = [];
  const followed = new Promise<void>((resolve, reject) => {
    const r = request(`http://${s.admin}/flows?follow=1`, (res) => {
      let buf = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          got.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
        if (got.length >= 2) {
          r.destroy();
          resolve();
        }
      });
    });
    r.on('error', (e) => (got.length >= 2 ? resolve() : reject(e)));
    r.end();
  });
  await new Promise((r) => setTimeout(r, 200));
  await land();
  await followed;
  t.same(got.map((l) => (JSON.parse(l) as { flow: { l7: { type: string } } }).flow.l7.type), ['REQUEST', 'RESPONSE'], 'followed flows');
  t.equal((await fetchText(s.admin, '/flows')).body, '', 'still nothing kept');
});
