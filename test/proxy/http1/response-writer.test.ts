import t from 'tap';
import { FrontEndError } from '../../../proxy/errors.js';
import {
  chunkHeader,
  deniedResponse,
  errorResponse,
  headOnly,
  imfDate,
  serializeResponseHead,
} from '../../../proxy/http1/response-writer.js';

const IMF = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

t.test('imfDate is an IMF-fixdate for the current second', async (t) => {
  const d = imfDate();
  t.match(d, IMF);
  t.ok(Math.abs(Date.parse(d) - Date.now()) < 2000);
});

t.test('denial bytes are exactly cilium-envoy shaped', async (t) => {
  const buf = deniedResponse();
  const text = buf.toString('latin1');
  const m = /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: ([^\r]+)\r\nserver: l7guard\r\n\r\nAccess denied\r\n$/.exec(text);
  t.ok(m, text);
  t.match(m?.[1] ?? '', IMF);
  t.equal(deniedResponse(), buf, 'same Buffer within the second (not rebuilt)');
  t.notMatch(text, /connection/i);
});

t.test('with a server name (serve --server-name): the same bytes, its name', async (t) => {
  const text = deniedResponse('envoy').toString('latin1');
  t.match(text, /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text\/plain\r\ndate: [^\r]+\r\nserver: envoy\r\n\r\nAccess denied\r\n$/);
  t.equal(deniedResponse('envoy'), deniedResponse('envoy'), 'cached per name');
  t.match(deniedResponse().toString('latin1'), /\r\nserver: l7guard\r\n/, 'the default unchanged beside it');
  t.match(
    errorResponse(400, 'envoy').toString('latin1'),
    /^HTTP\/1\.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text\/plain\r\ndate: [^\r]+\r\nserver: envoy\r\nconnection: close\r\n\r\nBad Request$/,
  );
});

t.test('headOnly: a pre-serialised reply up to its empty line', async (t) => {
  t.equal(headOnly(deniedResponse()).toString('latin1'), deniedResponse().toString('latin1').slice(0, -15));
  t.equal(headOnly(errorResponse(431)).toString('latin1').endsWith('connection: close\r\n\r\n'), true);
});

t.test('error responses close the connection', async (t) => {
  t.equal(
    errorResponse(400).toString('latin1'),
    'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request',
  );
  t.match(errorResponse(431).toString('latin1'), /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
});

t.test('serializeResponseHead', async (t) => {
  t.equal(
    serializeResponseHead(200, 'OK', ['Content-Type', 'text/plain', 'X-A', ''], 'content-length: 2\r\n'),
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: \r\ncontent-length: 2\r\n\r\n',
  );
  for (const bad of [['X-A', 'a\r\nInjected: 1'], ['X A', '1'], ['', '1'], ['X-A', 'nul\x00']]) {
    t.throws(() => serializeResponseHead(200, 'OK', bad), FrontEndError, JSON.stringify(bad));
  }
  t.throws(() => serializeResponseHead(200, 'OK\r\nX: 1', []), { code: 'L7G_ERR_INVALID_RESPONSE_HEADER' });
  t.throws(() => serializeResponseHead(99, 'x', []), { code: 'L7G_ERR_INVALID_RESPONSE_HEADER' });
  t.throws(() => serializeResponseHead(200, 'OK', ['odd']), { code: 'L7G_ERR_INVALID_RESPONSE_HEADER' });
});

t.test('chunk header', async (t) => {
  t.equal(chunkHeader(255), 'ff\r\n');
  t.equal(chunkHeader(1), '1\r\n');
});
