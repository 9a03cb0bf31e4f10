import t from 'tap';
import { stripRequestHopByHop, stripResponseHopByHop } from '../../../proxy/http1/hop-by-hop.js';

t.test('request: fixed set, Connection-named fields, Expect', async (t) => {
  const input = [
    'Host', 'h',
    'Connection', 'keep-alive, X-Secret-Hop',
    'connection', 'Upgrade',
    'Keep-Alive', 'timeout=5',
    'Proxy-Connection', 'keep-alive',
    'TE', 'trailers',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'websocket',
    'Trailer', 'X-T',
    'Expect', '100-continue',
    'x-secret-hop', '1',
    'X-Keep', 'yes',
    'Proxy-Authorization', 'Basic Zm9v',
    'Accept', '*/*',
  ];
  const out = stripRequestHopByHop(input);
  t.same(out, ['Host', 'h', 'X-Keep', 'yes', 'Proxy-Authorization', 'Basic Zm9v', 'Accept', '*/*']);
  t.not(out, input, 'a new array');
  t.equal(input.length, 28, 'input untouched');
});

t.test('Connection: host does not strip Host', async (t) => {
  t.same(stripRequestHopByHop(['Host', 'h', 'Connection', 'host, close']), ['Host', 'h']);
});

t.test('response: keeps Expect-like end-to-end fields and Proxy-Authenticate', async (t) => {
  const out = stripResponseHopByHop([
    'content-type', 'text/plain',
    'connection', 'close, x-hop',
    'x-hop', '1',
    'transfer-encoding', 'chunked',
    'keep-alive', 'timeout=5',
    'expect', 'odd-but-end-to-end',
    'proxy-authenticate', 'Basic',
    'content-length', '5',
  ]);
  t.same(out, ['content-type', 'text/plain', 'expect', 'odd-but-end-to-end', 'proxy-authenticate', 'Basic', 'content-length', '5']);
});

t.test('nothing to strip still returns a mutable copy', async (t) => {
  const input = ['a', '1'] as const;
  const out = stripResponseHopByHop(input);
  out.push('b', '2');
  t.same(input, ['a', '1']);
});

t.test('HTTP2-Settings is stripped from requests even when Connection does not name it', async (t) => {
  t.same(stripRequestHopByHop(['host', 'h', 'HTTP2-Settings', 'AAMA', 'content-length', '0']), ['host', 'h', 'content-length', '0']);
  t.same(stripResponseHopByHop(['http2-settings', 'x']), ['http2-settings', 'x'], 'responses: not a known field, left alone');
});
