// Retries and outlier ejection (proxy/upstream/retry.ts, proxy/upstream/outlier.ts): a request is re-sent only when
// it never reached a pod (connect refused), to another pod, judged again by that pod's policy;
// never after a 5xx or a reset once written. Pods that keep refusing are ejected, and when every
// pod is out the answer is an immediate 503. Asserts what clients got and what pods saw.
import t from 'tap';
import { deathstarPodNames } from '../../fixtures/star-wars.js';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { recordingBackend } from '../helpers/backend.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const HOST = 'deathstar.default.svc.cluster.local';
const post = (path: string, body = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

function setup(port: number, policy?: string) {
  const ip = loopbackBlock();
  const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
  // The second replica carries one extra label, so a policy can select it alone.
  const cluster = starWarsCluster(ips, port, { [deathstarPodNames()[1]!]: { replica: 'b' } });
  const dir = clusterDir(cluster, policy === undefined ? {} : { '10-policy.yaml': policy });
  const start = () => serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  return { ips, start };
}

t.test('connect refused on one pod: retried on the other, body intact, never duplicated', async (t) => {
  const { ips, start } = setup(18201);
  const live = await recordingBackend('b', ips.deathstar[1], 18201);
  t.teardown(() => live.close());
  const s = await start();
  t.teardown(() => s.stop());
  for (let i = 0; i < 6; i++) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: post('/v1/request-landing', `landing-${i}`), until: hasCompleteResponse });
    t.equal(status(r.text), 200, `request ${i} served by the live pod`);
  }
  t.same(live.seen.map((r) => r.body.toString()), [0, 1, 2, 3, 4, 5].map((i) => `landing-${i}`), 'each body exactly once, in order');
});

t.test('a retry is judged again, against the new pod’s policy', async (t) => {
  // Replica b allows the empire only GET /public; replica a (down) has no policy (allows all).
  const policy = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: only-b
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      replica: b
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "18202"
      rules:
        http:
        - method: GET
          path: /public
`;
  const { ips, start } = setup(18202, policy);
  const b = await recordingBackend('b', ips.deathstar[1], 18202);
  t.teardown(() => b.close());
  const s = await start();
  t.teardown(() => s.stop());
  for (let i = 0; i < 4; i++) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: post('/v1/request-landing', 'x'), until: hasCompleteResponse });
    t.equal(status(r.text), 403, `POST ${i}: denied by replica b's policy whichever pod was tried first`);
  }
  t.equal(b.seen.length, 0, 'replica b never saw a POST');
  const ok = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/public'), until: hasCompleteResponse });
  t.equal(status(ok.text), 200);
  t.same(b.seen.map((r) => r.url), ['/public']);
});

t.test('never retried after a 5xx, nor after a reset once the request was written', async (t) => {
  const { ips, start } = setup(18203);
  let exhaust = 0;
  const backends = await Promise.all(
    ips.deathstar.map((host, i) =>
      recordingBackend(`d${i}`, host, 18203, (r, res) => {
        if (r.url === '/v1/exhaust-port') {
          exhaust++;
          res.writeHead(503, { 'content-length': '5' }).end('boom\n');
          return;
        }
        res.socket?.destroy(); // reset after reading the whole request
      }),
    ),
  );
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const s = await start();
  t.teardown(() => s.stop());
  for (let i = 0; i < 3; i++) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`, until: hasCompleteResponse });
    t.equal(status(r.text), 503, 'the 503 is passed on');
  }
  t.equal(exhaust, 3, 'each PUT reached deathstar exactly once');
  const before = backends[0]!.seen.length + backends[1]!.seen.length;
  const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: post('/v1/request-landing', 'once'), until: hasCompleteResponse });
  t.equal(status(r.text), 502, 'a reset after the request was written is a 502');
  t.equal(backends[0]!.seen.length + backends[1]!.seen.length - before, 1, 'and the request was not re-sent');
});

t.test('every pod refusing: 503 at once, then the pods are ejected (no connect attempted)', async (t) => {
  const { ips, start } = setup(18204);
  const s = await start();
  t.teardown(() => s.stop());
  const bodies: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/x'), until: hasCompleteResponse });
    t.equal(status(r.text), 503, `request ${i}: 503`);
    bodies.push(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
  }
  t.equal(bodies[0], 'upstream connect error\r\n', 'first: the connect failures themselves');
  t.equal(bodies.at(-1), 'no healthy upstream\r\n', 'after 5 consecutive failures per pod: ejected, no connect tried');
  // A pod that comes back while ejected is not used before its ejection time is over.
  const late = await recordingBackend('late', ips.deathstar[0], 18204);
  t.teardown(() => late.close());
  const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: get('/y'), until: hasCompleteResponse });
  t.equal(status(r.text), 503);
  t.equal(late.seen.length, 0);
  t.equal(s.proc.exitCode, null);
});
