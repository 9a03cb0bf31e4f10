// The response parser's own decisions, beyond what the differential test against llhttp checks:
// when a connection may be reused, the pod's Keep-Alive hint, interim responses, and the errors.
import t from 'tap';
import { HttpParseError } from '../../../proxy/errors.js';
import { ResponseParser, type ResponseHead } from '../../../proxy/http1/response-parser.js';

interface Outcome {
  head?: ResponseHead;
  body: string;
  ended?: { reusable: boolean };
  error?: string;
}

/** Feeds `text` `step` bytes at a time (0: at once), then the EOF when `eof`. */
function parse(text: string, { head = false, step = 0, eof = false, limits }: { head?: boolean; step?: number; eof?: boolean; limits?: { maxHeaderBytes: number; maxHeaderCount: number; maxChunkExtBytes: number } } = {}): Outcome {
  const out: Outcome = { body: '' };
  const p = new ResponseParser({
    onResponseHead: (h) => (out.head = h),
    onResponseData: (c) => (out.body += c.toString('latin1')),
    onResponseEnd: (reusable) => (out.ended = { reusable }),
  }, limits);
  p.expect(head);
  const bytes = Buffer.from(text, 'latin1');
  try {
    const n = step > 0 ? step : bytes.length;
    for (let i = 0; i < bytes.length; i += n) p.execute(bytes.subarray(i, i + n));
    if (eof) p.finish();
  } catch (err) {
    out.error = err instanceof HttpParseError ? err.code : String(err);
  }
  return out;
}

t.test('framing decides reuse', (t) => {
  for (const [text, reusable, what] of [
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', true, 'HTTP/1.1 with a length'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', true, 'chunked'],
    ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', false, 'Connection: close'],
    ['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', false, 'HTTP/1.0 without keep-alive'],
    ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok', true, 'HTTP/1.0 with keep-alive'],
  ] as const) {
    for (const step of [0, 1, 3]) t.same(parse(text, { step }).ended, { reusable }, `${what} (step ${step})`);
  }
  // Stray bytes in the same read: not reusable; in a later read (the connection is not yet back in
  // the pool, http1-client.ts): an error that drops it.
  t.same(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA').ended, { reusable: false }, 'bytes after the response, same read');
  t.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', { step: 8 }).error, 'L7G_ERR_UNEXPECTED_RESPONSE', 'bytes after the response, a later read');
  t.end();
});

t.test('no body for HEAD, 204 and 304, whatever the fields say; a body to the close otherwise', (t) => {
  const head = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', { head: true });
  t.same({ body: head.body, ended: head.ended, cl: head.head?.contentLength, framing: head.head?.framing }, { body: '', ended: { reusable: true }, cl: 10, framing: 'none' }, 'HEAD: the length describes no body');
  t.same(parse('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n').ended, { reusable: true }, '304');
  t.same(parse('HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n').ended, { reusable: true }, '204');
  const close = parse('HTTP/1.1 200 OK\r\n\r\nuntil the end', { eof: true });
  t.same({ body: close.body, ended: close.ended, framing: close.head?.framing }, { body: 'until the end', ended: { reusable: false }, framing: 'close' }, 'no length: ends at the close, not reused');
  t.end();
});

t.test('interim 1xx are dropped; 101 to a request without Upgrade is an error', (t) => {
  const r = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', { step: 5 });
  t.equal(r.head?.status, 201);
  t.same(r.ended, { reusable: true });
  t.equal(parse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n').error, 'L7G_ERR_UNEXPECTED_UPGRADE');
  t.end();
});

t.test("the pod's Keep-Alive hint", (t) => {
  t.equal(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').head?.keepAliveTimeoutMs, 5000);
  t.equal(parse('HTTP/1.1 200 OK\r\nkeep-alive: max=3\r\nContent-Length: 0\r\n\r\n').head?.keepAliveTimeoutMs, undefined, 'no timeout parameter');
  t.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').head?.keepAliveTimeoutMs, undefined, 'no hint');
  t.end();
});

t.test('errors: typed, and the parser stays dead', (t) => {
  for (const [text, code] of [
    ['HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'L7G_ERR_BARE_LF'],
    ['HTTP/1.1 200 OK\r\n folded: x\r\n\r\n', 'L7G_ERR_OBS_FOLD'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'L7G_ERR_TE_AND_CL'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', 'L7G_ERR_CONFLICTING_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'L7G_ERR_UNSUPPORTED_TE'],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'L7G_ERR_TE_IN_HTTP10'],
    ['HTTP/2.0 200 OK\r\n\r\n', 'L7G_ERR_BAD_STATUS_LINE'],
    ['HTTP/1.1 99 Too Low\r\n\r\n', 'L7G_ERR_BAD_STATUS_LINE'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX', 'L7G_ERR_BAD_CHUNK_END'],
  ] as const) {
    t.equal(parse(text).error, code, JSON.stringify(text));
  }
  t.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab', { eof: true }).error, 'L7G_ERR_INCOMPLETE_RESPONSE', 'a FIN inside a length-framed body');
  const limits = { maxHeaderBytes: 64, maxHeaderCount: 2, maxChunkExtBytes: 16 };
  t.equal(parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(80)}\r\n\r\n`, { limits }).error, 'L7G_ERR_HEADERS_TOO_LARGE');
  t.equal(parse('HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', { limits }).error, 'L7G_ERR_TOO_MANY_HEADERS');
  t.end();
});

t.test('bytes with no request waiting are an error', (t) => {
  const p = new ResponseParser({ onResponseHead: () => undefined, onResponseData: () => undefined, onResponseEnd: () => undefined });
  t.throws(() => p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), { code: 'L7G_ERR_UNEXPECTED_RESPONSE' });
  t.end();
});
