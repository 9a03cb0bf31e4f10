// Replies the front end writes itself on a timeout are observable (docs/hardening.md#timeouts-and-limits): a request that was
// forwarded and then ended by the whole-request timeout (504) or the client-body timeout (408) gets
// its HTTP response flow — verdict ERROR with that code, as an upstream failure's 502 does — and
// counts in the Hubble metrics; every timeout also counts in
// l7guard_downstream_timeouts_total{timeout}. A header timeout has no request to describe (no
// method, no path: Cilium's Envoy logs nothing to Hubble either), so it is that counter alone.
import t from 'tap';
import http from 'node:http';
import { loopbackBlock, rawExchange } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { adminText } from '../helpers/admin.js';
import { until } from '../helpers/poll.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const HOST = 'deathstar.default.svc.cluster.local';
const PORT = 18901;
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

interface HubbleFlow {
  flow: {
    verdict: string;
    IP: { source: string; destination: string };
    l7?: { type: string; http?: { code?: number; method: string; url: string } };
  };
}

async function flows(admin: string): Promise<HubbleFlow[]> {
  const text = (await adminText(admin, '/flows')).trim();
  return text === '' ? [] : text.split('\n').map((l) => JSON.parse(l) as HubbleFlow);
}

/** The value of one sample line ("name{labels} value"), 0 when absent. */
async function sample(admin: string, series: string): Promise<number> {
  const line = (await adminText(admin, '/metrics')).split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

t.test('timeout replies get a flow and count', async (t) => {
  // Pods that read the request and never answer.
  const servers = await Promise.all(ips.deathstar.map(async (host) => {
    const srv = http.createServer((req) => req.resume());
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    return srv;
  }));
  t.teardown(() => Promise.all(servers.map((s) => { s.closeAllConnections(); return new Promise((r) => s.close(r)); })));
  const s = await serve([
    '-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`,
    '--request-timeout', '400ms', '--client-body-timeout', '300ms', '--header-timeout', '300ms',
    '--response-timeout', '60s',
  ]);
  t.teardown(() => s.stop());
  const err = (code: number): string => `hubble_http_requests_total{method="${code === 504 ? 'GET' : 'POST'}",protocol="HTTP/1.1",status="${code}",reporter="server"}`;
  const timeouts = (kind: string): string => `l7guard_downstream_timeouts_total{timeout="${kind}"}`;
  const errorFlows = 'hubble_flows_processed_total{type="L7",subtype="HTTP",verdict="ERROR"}';

  await t.test('whole-request timeout: 504, an ERROR response flow, counted', async (t) => {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /stall HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, idleMs: 5000 });
    t.equal(status(r.text), 504);
    const all = await until(() => flows(s.admin), (fs) => fs.some((f) => f.flow.l7?.type === 'RESPONSE'), 'a response flow');
    const resp = all.filter((f) => f.flow.l7?.type === 'RESPONSE');
    t.equal(resp.length, 1, 'one response flow for the one request');
    t.equal(resp[0]?.flow.verdict, 'ERROR');
    t.equal(resp[0]?.flow.l7?.http?.code, 504);
    t.equal(resp[0]?.flow.l7?.http?.url, `http://${HOST}/stall`);
    t.ok(ips.deathstar.includes(resp[0]?.flow.IP.source as never), 'a response flow runs pod → client, as for an upstream failure');
    t.equal(resp[0]?.flow.IP.destination, ips.tiefighter);
    t.equal(await sample(s.admin, err(504)), 1, 'hubble_http_requests_total status 504');
    t.equal(await sample(s.admin, errorFlows), 1, 'hubble_flows_processed_total verdict ERROR');
    t.equal(await sample(s.admin, timeouts('request')), 1, 'l7guard_downstream_timeouts_total{timeout="request"}');
  });

  await t.test('client-body timeout: 408, an ERROR response flow, counted', async (t) => {
    const r = await rawExchange({
      from: ips.tiefighter, to: s.host, port: s.port, idleMs: 5000,
      data: `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`,
    });
    t.equal(status(r.text), 408);
    const all = await until(() => flows(s.admin), (fs) => fs.some((f) => f.flow.l7?.http?.code === 408), 'a 408 flow');
    const resp = all.filter((f) => f.flow.l7?.type === 'RESPONSE' && f.flow.l7.http?.url.endsWith('/upload'));
    t.same(resp.map((f) => [f.flow.verdict, f.flow.l7?.http?.code, f.flow.l7?.http?.method]), [['ERROR', 408, 'POST']]);
    t.equal(await sample(s.admin, err(408)), 1, 'hubble_http_requests_total status 408');
    t.equal(await sample(s.admin, errorFlows), 2);
    t.equal(await sample(s.admin, timeouts('client_body')), 1, 'l7guard_downstream_timeouts_total{timeout="client_body"}');
  });

  await t.test('header timeout: 408 and the counter, no flow (there is no request)', async (t) => {
    const before = (await flows(s.admin)).length;
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /half-a-head HTTP/1.1\r\nHost: ${HOST}\r\n`, idleMs: 5000 });
    t.equal(status(r.text), 408);
    t.equal(await until(() => sample(s.admin, timeouts('header')), (n) => n === 1, 'the header timeout count'), 1, 'l7guard_downstream_timeouts_total{timeout="header"}');
    t.equal((await flows(s.admin)).length, before, 'no flow');
    t.equal(await sample(s.admin, errorFlows), 2, 'nor a flow count');
  });
});
