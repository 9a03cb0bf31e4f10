import t from 'tap';
import { HttpParseError, type HttpParseErrorCode } from '../../../proxy/errors.js';
import { RequestParser, type ParserLimits, type RequestHead } from '../../../proxy/http1/request-parser.js';

interface Message {
  head: RequestHead;
  body: string;
  trailers: readonly string[];
}

/** Feeds `input` in pieces of `step` bytes (0 = all at once) and pulls every event. */
function parse(input: string | Buffer, step = 0, limits?: Partial<ParserLimits>): Message[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const p = new RequestParser(limits);
  const out: Message[] = [];
  let cur: { head: RequestHead; body: Buffer[] } | undefined;
  const drain = (): void => {
    for (let ev = p.next(); ev !== null; ev = p.next()) {
      if (ev.kind === 'head') cur = { head: ev.head, body: [] };
      else if (ev.kind === 'body') cur!.body.push(Buffer.from(ev.chunk));
      else {
        out.push({ head: cur!.head, body: Buffer.concat(cur!.body).toString('latin1'), trailers: ev.trailers });
        cur = undefined;
      }
    }
  };
  if (step <= 0) {
    p.push(bytes);
    drain();
  } else {
    for (let i = 0; i < bytes.length; i += step) {
      p.push(bytes.subarray(i, i + step));
      drain();
    }
  }
  return out;
}

function errorCode(input: string | Buffer, step = 0, limits?: Partial<ParserLimits>): { code: string; status: number } | undefined {
  try {
    parse(input, step, limits);
    return undefined;
  } catch (err) {
    if (err instanceof HttpParseError) return { code: err.code, status: err.status };
    throw err;
  }
}

const STEPS = [0, 1, 3, 7];

t.test('valid requests parse identically whatever the feed size', async (t) => {
  const cases: { name: string; input: string; check: (m: Message[]) => void }[] = [
    {
      name: 'simple GET',
      input: 'GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-Foo:  bar \t\r\n\r\n',
      check: (m) => {
        t.equal(m.length, 1);
        const h = m[0]!.head;
        t.equal(h.method, 'GET');
        t.equal(h.target, '/a?b=1');
        t.equal(h.versionMinor, 1);
        t.same(h.headers, ['Host', 'example', 'X-Foo', 'bar']);
        t.equal(h.host, 'example');
        t.equal(h.keepAlive, true);
        t.equal(h.chunked, false);
        t.equal(h.contentLength, undefined);
        t.equal(h.expectContinue, false);
        t.equal(m[0]!.body, '');
      },
    },
    {
      name: 'method case preserved',
      input: 'post / HTTP/1.1\r\nhost: h\r\n\r\n',
      check: (m) => t.equal(m[0]!.head.method, 'post'),
    },
    {
      name: 'content-length body',
      input: 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world',
      check: (m) => {
        t.equal(m[0]!.head.contentLength, 11);
        t.equal(m[0]!.body, 'hello world');
      },
    },
    {
      name: 'identical content-length list accepted',
      input: 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabc',
      check: (m) => t.equal(m[0]!.body, 'abc'),
    },
    {
      name: 'chunked body with extensions and trailers',
      input:
        'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;ext=1\r\nhello\r\nA;a;b="q \\" s";c=d\r\n 0123456\r\n\r\n0\r\nX-Trailer: yes\r\n\r\n',
      check: (m) => {
        t.equal(m[0]!.head.chunked, true);
        t.equal(m[0]!.body, 'hello 0123456\r\n');
        t.same(m[0]!.trailers, ['X-Trailer', 'yes']);
      },
    },
    {
      name: 'TE list split across lines, chunked final',
      input: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n',
      check: (m) => t.equal(m[0]!.head.chunked, true),
    },
    {
      name: 'HTTP/1.0 without Host, not keep-alive by default',
      input: 'GET / HTTP/1.0\r\n\r\n',
      check: (m) => {
        t.equal(m[0]!.head.versionMinor, 0);
        t.equal(m[0]!.head.host, undefined);
        t.equal(m[0]!.head.keepAlive, false);
      },
    },
    {
      name: 'HTTP/1.0 keep-alive',
      input: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n',
      check: (m) => t.equal(m[0]!.head.keepAlive, true),
    },
    {
      name: 'HTTP/1.1 Connection: close, upgrade and expect',
      input: 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\n\r\n',
      check: (m) => {
        const h = m[0]!.head;
        t.equal(h.keepAlive, false);
        t.same(h.connectionTokens, ['close', 'upgrade']);
        t.equal(h.upgrade, 'websocket');
        t.equal(h.expectContinue, true);
      },
    },
    {
      name: 'Upgrade without Connection: upgrade is ignored',
      input: 'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n',
      check: (m) => t.equal(m[0]!.head.upgrade, undefined),
    },
    {
      name: 'leading empty line tolerated, then two pipelined requests',
      input: '\r\nGET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok',
      check: (m) => {
        t.equal(m.length, 2);
        t.equal(m[0]!.head.target, '/1');
        t.equal(m[1]!.head.target, '/2');
        t.equal(m[1]!.body, 'ok');
      },
    },
    {
      name: 'obs-text in values and empty values',
      input: 'GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9\r\nX-B:\r\n\r\n',
      check: (m) => t.same(m[0]!.head.headers, ['Host', 'h', 'X-A', 'caf\xe9', 'X-B', '']),
    },
    {
      name: 'absolute-form target and IPv6 host',
      input: 'GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n',
      check: (m) => {
        t.equal(m[0]!.head.target, 'http://[::1]:8080/x');
        t.equal(m[0]!.head.host, '[::1]:8080');
      },
    },
  ];
  for (const c of cases) {
    for (const step of STEPS) {
      t.test(`${c.name} (step ${step})`, async () => c.check(parse(c.input, step)));
    }
  }
});

t.test('rejections carry a stable code and status', async (t) => {
  const H = 'Host: h\r\n';
  const cases: [string, string, HttpParseErrorCode, number, Partial<ParserLimits>?][] = [
    ['CL + TE', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`, 'L7G_ERR_TE_AND_CL', 400],
    ['TE + CL (other order)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`, 'L7G_ERR_TE_AND_CL', 400],
    ['differing duplicate CL', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\n`, 'L7G_ERR_CONFLICTING_CONTENT_LENGTH', 400],
    ['differing CL list', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 4\r\n\r\n`, 'L7G_ERR_CONFLICTING_CONTENT_LENGTH', 400],
    ['signed CL', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\n`, 'L7G_ERR_BAD_CONTENT_LENGTH', 400],
    ['hex CL', `POST / HTTP/1.1\r\n${H}Content-Length: 0x3\r\n\r\n`, 'L7G_ERR_BAD_CONTENT_LENGTH', 400],
    ['empty CL', `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, 'L7G_ERR_BAD_CONTENT_LENGTH', 400],
    ['huge CL', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\n`, 'L7G_ERR_BODY_TOO_LARGE', 413],
    ['CL over maxBodyBytes', `POST / HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\n`, 'L7G_ERR_BODY_TOO_LARGE', 413, { maxBodyBytes: 10 }],
    ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 'L7G_ERR_TE_IN_HTTP10', 400],
    ['TE not ending in chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 'L7G_ERR_CHUNKED_NOT_FINAL', 400],
    ['TE identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 'L7G_ERR_CHUNKED_NOT_FINAL', 400],
    ['TE chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n`, 'L7G_ERR_CHUNKED_NOT_FINAL', 400],
    ['TE gzip, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n`, 'L7G_ERR_UNSUPPORTED_TE', 501],
    ['TE xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n`, 'L7G_ERR_CHUNKED_NOT_FINAL', 400],
    ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nz\r\n`, 'L7G_ERR_BAD_CHUNK_SIZE', 400],
    ['chunk size with space', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n`, 'L7G_ERR_BAD_CHUNK_SIZE', 400],
    ['negative chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\n`, 'L7G_ERR_BAD_CHUNK_SIZE', 400],
    ['chunk size overflow', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n`, 'L7G_ERR_BAD_CHUNK_SIZE', 400],
    ['chunk data longer than size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n`, 'L7G_ERR_BAD_CHUNK_END', 400],
    ['chunk data with bare LF end', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n`, 'L7G_ERR_BAD_CHUNK_END', 400],
    ['chunk ext too large', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(100)}\r\na\r\n0\r\n\r\n`, 'L7G_ERR_CHUNK_EXT_TOO_LARGE', 413, { maxChunkExtBytes: 64 }],
    ['chunk ext with NUL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;a\x00\r\na\r\n0\r\n\r\n`, 'L7G_ERR_BAD_CHUNK_EXT', 400],
    // RFC 9112 §7.1.1 chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ); llhttp refuses each of these too.
    ...['1;', '1;=v', '1;a=', '1;a=b;', '1;a b', '1;a="x', '1;a="x\\', '1;a=b"c"', '1;a=@'].map(
      (ext): [string, string, HttpParseErrorCode, number] => [`chunk ext ${JSON.stringify(ext.slice(1))}`, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${ext}\r\na\r\n0\r\n\r\n`, 'L7G_ERR_BAD_CHUNK_EXT', 400],
    ),
    ['trailers too large', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX: ${'y'.repeat(200)}\r\n\r\n`, 'L7G_ERR_TRAILERS_TOO_LARGE', 431, { maxHeaderBytes: 100 }],
    ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: 1\r\n  continued\r\n\r\n`, 'L7G_ERR_OBS_FOLD', 400],
    ['obs-fold with tab', `GET / HTTP/1.1\r\n${H}X-A: 1\r\n\tcontinued\r\n\r\n`, 'L7G_ERR_OBS_FOLD', 400],
    ['bare LF in header section', `GET / HTTP/1.1\r\n${H}X-A: 1\n\r\n`, 'L7G_ERR_BARE_LF', 400],
    ['bare LF ending request-line', `GET / HTTP/1.1\n${H}\r\n`, 'L7G_ERR_BARE_LF', 400],
    ['bare LF blank line', `GET / HTTP/1.1\r\n${H}\n`, 'L7G_ERR_BARE_LF', 400],
    ['bare CR in value', `GET / HTTP/1.1\r\n${H}X-A: 1\r2\r\n\r\n`, 'L7G_ERR_BARE_CR', 400],
    ['NUL in value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 'L7G_ERR_BAD_HEADER_VALUE', 400],
    ['DEL in value', `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, 'L7G_ERR_BAD_HEADER_VALUE', 400],
    ['space before colon', `GET / HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`, 'L7G_ERR_SPACE_BEFORE_COLON', 400],
    ['invalid name char', `GET / HTTP/1.1\r\n${H}X(A): 1\r\n\r\n`, 'L7G_ERR_BAD_HEADER_NAME', 400],
    ['empty name', `GET / HTTP/1.1\r\n${H}: 1\r\n\r\n`, 'L7G_ERR_BAD_HEADER_NAME', 400],
    ['no colon', `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 'L7G_ERR_BAD_HEADER_NAME', 400],
    ['missing Host in 1.1', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 'L7G_ERR_MISSING_HOST', 400],
    ['duplicate Host in 1.1', 'GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 'L7G_ERR_DUPLICATE_HOST', 400],
    ['duplicate Host in 1.0', 'GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n', 'L7G_ERR_DUPLICATE_HOST', 400],
    ['Host with space', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'L7G_ERR_BAD_HOST', 400],
    ['Host with slash', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 'L7G_ERR_BAD_HOST', 400],
    ['oversize header section', `GET / HTTP/1.1\r\n${H}X-A: ${'a'.repeat(300)}\r\n\r\n`, 'L7G_ERR_HEADERS_TOO_LARGE', 431, { maxHeaderBytes: 256 }],
    ['oversize header section, never terminated', `GET / HTTP/1.1\r\n${H}X-A: ${'a'.repeat(300)}`, 'L7G_ERR_HEADERS_TOO_LARGE', 431, { maxHeaderBytes: 256 }],
    ['too many headers', `GET / HTTP/1.1\r\n${H}${'X: 1\r\n'.repeat(5)}\r\n`, 'L7G_ERR_TOO_MANY_HEADERS', 431, { maxHeaderCount: 5 }],
    ['long target', `GET /${'a'.repeat(100)} HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_URI_TOO_LONG', 414, { maxTargetLength: 64 }],
    ['long target, line never ends', `GET /${'a'.repeat(100)}`, 'L7G_ERR_URI_TOO_LONG', 414, { maxTargetLength: 64 }],
    ['request-line over head budget', `GET /${'a'.repeat(300)} HTTP/1.1\r\n`, 'L7G_ERR_URI_TOO_LONG', 414, { maxHeaderBytes: 128 }],
    ['garbage without SP over budget', 'x'.repeat(300), 'L7G_ERR_BAD_REQUEST_LINE', 400, { maxHeaderBytes: 128 }],
    ['double SP in request-line', `GET  / HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_BAD_REQUEST_LINE', 400],
    ['target with control char', `GET /a\x01 HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_BAD_TARGET', 400],
    ['target with non-ASCII', `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_BAD_TARGET', 400],
    ['method with invalid char', `GE(T / HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_BAD_METHOD', 400],
    ['lower-case version', `GET / http/1.1\r\n${H}\r\n`, 'L7G_ERR_BAD_VERSION', 400],
    ['version with trailing space', `GET / HTTP/1.1 \r\n${H}\r\n`, 'L7G_ERR_BAD_VERSION', 400],
    ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 'L7G_ERR_VERSION_NOT_SUPPORTED', 505],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'L7G_ERR_HTTP2_PREFACE', 505],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'L7G_ERR_CONNECT_UNSUPPORTED', 501],
    ['bare CR in request-line', `GET /\r HTTP/1.1\r\n${H}\r\n`, 'L7G_ERR_BARE_CR', 400],
  ];
  for (const [name, input, code, status, limits] of cases) {
    for (const step of [0, 1]) {
      t.same(errorCode(input, step, limits), { code, status }, `${name} (step ${step})`);
    }
  }
});

t.test('the parser stays dead after an error', async (t) => {
  const p = new RequestParser();
  p.push(Buffer.from('GET / HTTP/1.1\r\nX-A : 1\r\n\r\n'));
  t.throws(() => p.next(), { code: 'L7G_ERR_SPACE_BEFORE_COLON' });
  p.push(Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n'));
  t.throws(() => p.next(), { code: 'L7G_ERR_SPACE_BEFORE_COLON' });
});

t.test('does not run ahead into the next pipelined request', async (t) => {
  const p = new RequestParser();
  p.push(Buffer.from('GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n'));
  const head = p.next();
  t.equal(head?.kind, 'head');
  t.equal(p.next()?.kind, 'end');
  t.equal(p.atMessageBoundary, true);
  t.equal(p.buffered, 'GET /2 HTTP/1.1\r\nHost: h\r\n\r\n'.length, 'the second request is held, not consumed');
  const second = p.next();
  t.equal(second?.kind === 'head' ? second.head.target : undefined, '/2');
});

t.test('body chunks are zero-copy views and stream incrementally', async (t) => {
  const p = new RequestParser();
  p.push(Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc'));
  t.equal(p.next()?.kind, 'head');
  const c1 = p.next();
  t.equal(c1?.kind === 'body' ? c1.chunk.toString() : undefined, 'abc');
  t.equal(p.next(), null, 'waits for more');
  p.push(Buffer.from('defghijGET'));
  const c2 = p.next();
  t.equal(c2?.kind === 'body' ? c2.chunk.toString() : undefined, 'defghij');
  t.equal(p.next()?.kind, 'end');
  t.equal(p.buffered, 3);
});

t.test('a 1 MiB chunked body split at every awkward boundary', async (t) => {
  const data = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const parts: Buffer[] = [Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n')];
  for (let off = 0; off < data.length; off += 4099) {
    const piece = data.subarray(off, off + 4099);
    parts.push(Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  const wire = Buffer.concat(parts);
  for (const step of [1000, 4096, 65536]) {
    const p = new RequestParser();
    const got: Buffer[] = [];
    let ended = false;
    for (let i = 0; i < wire.length; i += step) {
      p.push(wire.subarray(i, i + step));
      for (let ev = p.next(); ev !== null; ev = p.next()) {
        if (ev.kind === 'body') got.push(ev.chunk);
        if (ev.kind === 'end') ended = true;
      }
    }
    t.ok(ended, `ended (step ${step})`);
    t.ok(Buffer.concat(got).equals(data), `body intact (step ${step})`);
  }
});

t.test("a 414 knows the method, so a HEAD's answer can leave out the body", async (t) => {
  const cases: [string, Partial<ParserLimits>][] = [
    [`HEAD /${'a'.repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`, { maxTargetLength: 64 }],
    [`HEAD /${'a'.repeat(100)}`, { maxTargetLength: 64 }],
    [`HEAD /${'a'.repeat(300)} HTTP/1.1\r\n`, { maxHeaderBytes: 128 }],
  ];
  for (const [input, limits] of cases) {
    for (const step of [0, 1]) {
      const p = new RequestParser(limits);
      const bytes = Buffer.from(input, 'latin1');
      let code: string | undefined;
      try {
        for (let i = 0; i < bytes.length; i += step || bytes.length) {
          p.push(bytes.subarray(i, step === 0 ? bytes.length : i + step));
          while (p.next() !== null);
        }
      } catch (err) {
        code = (err as HttpParseError).code;
      }
      t.same([code, p.method], ['L7G_ERR_URI_TOO_LONG', 'HEAD'], `${input.slice(0, 12)}… ${JSON.stringify(limits)} (step ${step})`);
    }
  }
});
