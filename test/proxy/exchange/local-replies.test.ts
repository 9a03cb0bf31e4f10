// Every reply the proxy writes itself obeys the request (RFC 9110 §9.3.2): a HEAD gets the head the
// GET gets, `content-length` included, and not one byte of body. Each case pipelines a HEAD and then
// a GET on one kept-alive connection and compares the exact bytes: a body after the HEAD's head would
// sit between the two answers, where a client reads it as the start of the next response. Replies
// that close the connection must end after the HEAD's head (the GET is never answered).
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deathstarPolicy } from '../../../fixtures/star-wars.js';
import { guarded, request, HOST, type Guarded } from '../../security/harness.js';

const PORT = 18121;
const DATE = /\r\ndate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\r\n/g;
/** The date is the only byte that changes between runs. */
const undated = (s: string): string => s.replace(DATE, '\r\ndate: D\r\n');

/** tiefighter may GET and HEAD /public, and HEAD the backend's failure routes; the rest is an L7 deny. */
const POLICY = deathstarPolicy(
  PORT,
  [
    { method: 'GET|HEAD', path: '/public(/.*)?' },
    { method: 'HEAD|GET', path: '/(reset|slow)' },
  ],
  'deathstar-l7',
);

/** A Service whose selector matches no pod: "no healthy upstream". Resolved by name, so any clusterIP will do. */
function emptyService(): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-local-replies-'));
  writeFileSync(
    join(dir, 'empty.yaml'),
    `apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
spec:
  clusterIP: 10.96.0.77
  selector:
    app: nothing
  ports:
  - port: 80
    targetPort: ${PORT}
    protocol: TCP
`,
  );
  return dir;
}

const heads = {
  denied: 'HTTP/1.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text/plain\r\ndate: D\r\nserver: l7guard\r\n\r\n',
  misdirected: 'HTTP/1.1 421 Misdirected Request\r\ncontent-length: 21\r\ncontent-type: text/plain\r\ndate: D\r\n\r\n',
  noHealthy: 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 21\r\ncontent-type: text/plain\r\ndate: D\r\n\r\n',
  redirect: 'HTTP/1.1 307 Temporary Redirect\r\nlocation: /public/a/b\r\ncontent-length: 0\r\ndate: D\r\n\r\n',
  badTarget: 'HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\ncontent-type: text/plain\r\ndate: D\r\nconnection: close\r\n\r\n',
  badGateway: 'HTTP/1.1 502 Bad Gateway\r\ncontent-length: 16\r\ncontent-type: text/plain\r\ndate: D\r\nconnection: close\r\n\r\n',
  gatewayTimeout: 'HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 26\r\ncontent-type: text/plain\r\ndate: D\r\nconnection: close\r\n\r\n',
  connectError: 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 24\r\ncontent-type: text/plain\r\ndate: D\r\nconnection: close\r\n\r\n',
};
const codecHead = (status: string, reason: string): string =>
  `HTTP/1.1 ${status} ${reason}\r\ncontent-length: ${reason.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n`;
const BODIES = {
  denied: 'Access denied\r\n',
  misdirected: 'Misdirected Request\r\n',
  noHealthy: 'no healthy upstream\r\n',
  redirect: '',
};

/** HEAD then GET of the same request on one connection; what came back, dates masked, and whether it closed. */
async function headThenGet(g: Guarded, target: string, extra = '', host: string = HOST, idleMs = 600): Promise<{ text: string; closed: boolean }> {
  const r = await g.send(request('HEAD', target, extra, host) + request('GET', target, extra, host), { idleMs });
  return { text: undated(r.text), closed: r.closed };
}

const EMPTY = 'empty.default.svc.cluster.local';

t.test('replies that keep the connection: the HEAD gets the head alone, the GET after it the whole reply', async (t) => {
  const g = await guarded(t, { port: PORT, policy: POLICY, args: ['-f', emptyService()] });
  const cases: [string, string, string, keyof typeof BODIES][] = [
    ['403 L7 deny', '/private', HOST, 'denied'],
    ['421 unknown authority', '/public', 'nowhere.example', 'misdirected'],
    ['503 Service without pods', '/public', EMPTY, 'noHealthy'],
    ['307 escaped slash', '/public/a%2Fb', HOST, 'redirect'],
  ];
  for (const [name, target, host, kind] of cases) {
    const r = await headThenGet(g, target, '', host);
    t.equal(r.text, heads[kind] + heads[kind] + BODIES[kind], name);
    t.equal(r.closed, false, `${name}: connection kept`);
  }
  t.equal(g.journal.length, 0, 'no request reached a pod');
});

t.test("replies that close: the HEAD's head and nothing after it", async (t) => {
  const g = await guarded(t, {
    port: PORT + 1,
    policy: deathstarPolicy(PORT + 1, [{ method: 'GET|HEAD', path: '/public(/.*)?' }, { method: 'HEAD|GET', path: '/(reset|slow)' }], 'deathstar-l7'),
    args: ['--header-timeout', '300ms', '--response-timeout', '300ms', '--client-body-timeout', '300ms', '--max-headers', '8'],
    respond: (r, res) => {
      if (r.url === '/reset') res.socket?.destroy();
      else if (r.url !== '/slow') res.end('ok');
    },
  });
  const cases: [name: string, head: string, want: string, alone?: boolean][] = [
    ['400 target the front end refuses', request('HEAD', '/a%zz'), heads.badTarget],
    ['400 malformed header (codec)', request('HEAD', '/public', 'Bad Header\r\n'), codecHead('400', 'Bad Request')],
    ['414 target past the limit (codec)', request('HEAD', '/public/' + 'a'.repeat(9000)), codecHead('414', 'URI Too Long')],
    ['413 Content-Length past 2^53 (codec)', request('HEAD', '/public', 'Content-Length: 99999999999999999999\r\n'), codecHead('413', 'Content Too Large')],
    ['431 too many header fields (codec)', request('HEAD', '/public', 'X-A: 1\r\n'.repeat(9)), codecHead('431', 'Request Header Fields Too Large')],
    ['408 head not finished in time (codec)', `HEAD /public HTTP/1.1\r\nHost: ${HOST}\r\n`, codecHead('408', 'Request Timeout')],
    // Alone: a request pipelined behind it would be read as the body it declares.
    ['408 declared body never sent', request('HEAD', '/public', 'Content-Length: 5\r\n'), codecHead('408', 'Request Timeout'), true],
    ['502 pod reset the connection', request('HEAD', '/reset'), heads.badGateway],
    ['504 pod never answered', request('HEAD', '/slow'), heads.gatewayTimeout],
  ];
  for (const [name, head, want, alone] of cases) {
    // The GET pipelined behind it must never be answered: the connection closes after the HEAD's reply.
    const r = await g.send(alone === true || !head.endsWith('\r\n\r\n') ? head : head + request('GET', '/public'), { idleMs: 1500 });
    t.equal(undated(r.text), want, name);
    t.equal(r.closed, true, `${name}: connection closed`);
  }
});

t.test("503 no connection to the pod: the HEAD's head and the close", async (t) => {
  const g = await guarded(t, { port: PORT + 2, policy: deathstarPolicy(PORT + 2, [{ method: 'GET|HEAD', path: '/public(/.*)?' }], 'deathstar-l7'), noBackends: true });
  const r = await g.send(request('HEAD', '/public') + request('GET', '/public'), { idleMs: 1500 });
  t.equal(undated(r.text), heads.connectError);
  t.equal(r.closed, true);
});
