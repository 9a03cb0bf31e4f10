// `serve --server-name NAME` is Envoy's `server_name`: every reply l7guard writes says `server: NAME`
// in Envoy's field order, and a pod's `server` is overwritten (Envoy's default
// server_header_transformation OVERWRITE). With `envoy` the 403 is byte-identical to cilium-envoy's
// (docs/semantics.md#what-the-proxy-answers). Without the flag nothing changes: the 403 says
// `server: l7guard` and the pod's `server` passes through.
import t from 'tap';
import { deathstarPolicy } from '../../../fixtures/star-wars.js';
import { hasCompleteResponse } from '../../helpers/net.js';
import { runCli } from '../../helpers/serve.js';
import { guarded, request, responses } from '../../security/harness.js';

const PORT = 18127;
const DATE = /\r\ndate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\r\n/g;
const undated = (s: string): string => s.replace(DATE, '\r\ndate: D\r\n');

/** cilium-envoy's 403, byte for byte (cilium/proxy l7policy.cc; docs/semantics.md). */
const ENVOY_403 = 'HTTP/1.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text/plain\r\ndate: D\r\nserver: envoy\r\n\r\nAccess denied\r\n';

const policy = (port: number): string => deathstarPolicy(port, [{ method: 'GET', path: '/public' }], 'deathstar-l7');
const respond = (_r: unknown, res: import('node:http').ServerResponse): void => {
  res.writeHead(200, { server: 'deathstar/1.0', 'content-length': '3' });
  res.end('ok\n');
};

/** The `server` fields of the first response in `text`. */
function serverFields(text: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  return [...head.matchAll(/\r\nserver: ([^\r]*)/gi)].map((m) => m[1]!);
}

t.test('--server-name envoy: the 403 is cilium-envoy\'s, every local reply and every proxied response says envoy', async (t) => {
  const g = await guarded(t, { port: PORT, policy: policy(PORT), respond, args: ['--server-name', 'envoy'] });
  const denied = await g.send(request('GET', '/private') + request('GET', '/private'), { until: (b) => b.toString('latin1').split('Access denied').length === 3 });
  t.equal(undated(denied.text), ENVOY_403 + ENVOY_403, '403, twice on one connection: byte-identical to cilium-envoy\'s');

  const proxied = await g.send(request('GET', '/public'), { until: hasCompleteResponse });
  t.equal(responses(proxied.text)[0]?.status, 200);
  t.same(serverFields(proxied.text), ['envoy'], 'the pod\'s "server: deathstar/1.0" overwritten, one field');

  const misdirected = await g.send(request('GET', '/public', '', 'nowhere.example'), { until: hasCompleteResponse });
  t.equal(
    undated(misdirected.text),
    'HTTP/1.1 421 Misdirected Request\r\ncontent-length: 21\r\ncontent-type: text/plain\r\ndate: D\r\nserver: envoy\r\n\r\nMisdirected Request\r\n',
    '421 in Envoy\'s field order',
  );
  const redirect = await g.send(request('GET', '/public%2Fx'), { until: hasCompleteResponse });
  t.equal(undated(redirect.text), 'HTTP/1.1 307 Temporary Redirect\r\nlocation: /public/x\r\ncontent-length: 0\r\ndate: D\r\nserver: envoy\r\n\r\n', '307');
  const malformed = await g.send(request('GET', '/public', 'Bad Header\r\n'));
  t.equal(
    undated(malformed.text),
    'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\ndate: D\r\nserver: envoy\r\nconnection: close\r\n\r\nBad Request',
    'the codec\'s own 400',
  );
});

t.test('default: the 403 says l7guard, the pod\'s server passes through, other local replies carry none', async (t) => {
  const g = await guarded(t, { port: PORT + 1, policy: policy(PORT + 1), respond });
  const denied = await g.send(request('GET', '/private'), { until: hasCompleteResponse });
  t.same(serverFields(denied.text), ['l7guard']);
  const proxied = await g.send(request('GET', '/public'), { until: hasCompleteResponse });
  t.same(serverFields(proxied.text), ['deathstar/1.0']);
  const misdirected = await g.send(request('GET', '/public', '', 'nowhere.example'), { until: hasCompleteResponse });
  t.same(serverFields(misdirected.text), []);
});

t.test('--workers 2 --server-name envoy: the workers write the same 403', async (t) => {
  const g = await guarded(t, { port: PORT + 2, policy: policy(PORT + 2), respond, args: ['--server-name', 'envoy', '--workers', '2'] });
  for (let i = 0; i < 4; i++) {
    const denied = await g.send(request('GET', '/private'), { until: hasCompleteResponse });
    t.equal(undated(denied.text), ENVOY_403, `connection ${i}`);
  }
});

t.test('--server-name that could not be a field value is a usage error', async (t) => {
  for (const bad of ['', 'caf\u00e9']) {
    const r = await runCli(['serve', '-f', '/nonexistent', '--server-name', bad]);
    t.equal(r.code, 2, JSON.stringify(bad));
    t.match(r.stderr, /--server-name must be 1 to 128 visible ASCII characters/);
  }
});
