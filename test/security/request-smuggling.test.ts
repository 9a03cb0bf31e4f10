// Request smuggling: every message whose framing two HTTP implementations could read differently
// gets a 4xx/501 and a closed connection, and not one byte of it (nor of what follows) reaches a
// backend. The outer request is always one the policy ALLOWS, so only the framing can stop it, and
// the smuggled inner request is always a forbidden one.
import t from 'tap';
import { guarded, responses, settle, HOST } from './harness.js';

const SMUGGLED = `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`;
const land = (headers: string, body: string): string => `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\n${headers}\r\n${body}`;
const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;

interface Case {
  readonly name: string;
  readonly bytes: string;
  /** 400 unless said otherwise; 501 only for a transfer coding we do not implement (RFC 9112 §6.1 SHOULD). */
  readonly status?: number;
}

const cases: Case[] = [
  // CL.TE / TE.CL: both framings present, in either order and spelling.
  { name: 'CL.TE', bytes: land(`Content-Length: 6\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE.CL', bytes: land(`Transfer-Encoding: chunked\r\nContent-Length: 4\r\n`, `${chunk(SMUGGLED)}0\r\n\r\n`) },
  { name: 'CL.TE with TE in upper case', bytes: land(`Content-Length: 6\r\nTRANSFER-ENCODING: CHUNKED\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'CL.TE with TE in a list', bytes: land(`Content-Length: 6\r\nTransfer-Encoding: gzip, chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  // TE.TE obfuscations: a coding some parser would treat as chunked and another would not.
  { name: 'TE: xchunked', bytes: land(`Transfer-Encoding: xchunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE: chunked-false', bytes: land(`Transfer-Encoding: chunked-false\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE: chunked, identity', bytes: land(`Transfer-Encoding: chunked, identity\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE: identity', bytes: land(`Transfer-Encoding: identity\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE: identity, chunked', bytes: land(`Transfer-Encoding: identity, chunked\r\n`, `0\r\n\r\n${SMUGGLED}`), status: 501 },
  { name: 'TE: chunked twice (two fields)', bytes: land(`Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE: chunked twice (one list)', bytes: land(`Transfer-Encoding: chunked, chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE with space before the colon', bytes: land(`Transfer-Encoding : chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE with a vertical tab before the value', bytes: land(`Transfer-Encoding:\x0bchunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE with a NBSP (obs-text) after chunked', bytes: land(`Transfer-Encoding: chunked\xa0\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE header name with a trailing tab', bytes: land(`Transfer-Encoding\t: chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE folded onto the next line (obs-fold)', bytes: land(`Transfer-Encoding:\r\n chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE in an HTTP/1.0 request', bytes: land(`Transfer-Encoding: chunked\r\n`, `0\r\n\r\n${SMUGGLED}`).replace('HTTP/1.1', 'HTTP/1.0') },
  // Content-Length: duplicates and invalid values.
  { name: 'two differing Content-Length fields', bytes: land(`Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n`, SMUGGLED) },
  { name: 'Content-Length list with differing members', bytes: land(`Content-Length: 0, ${SMUGGLED.length}\r\n`, SMUGGLED) },
  { name: 'Content-Length with a sign', bytes: land(`Content-Length: +0\r\n`, SMUGGLED) },
  { name: 'negative Content-Length', bytes: land(`Content-Length: -1\r\n`, SMUGGLED) },
  { name: 'hexadecimal Content-Length', bytes: land(`Content-Length: 0x0\r\n`, SMUGGLED) },
  { name: 'Content-Length with trailing garbage', bytes: land(`Content-Length: 0abc\r\n`, SMUGGLED) },
  { name: 'empty Content-Length', bytes: land(`Content-Length: \r\n`, SMUGGLED) },
  { name: 'Content-Length beyond 2^53', bytes: land(`Content-Length: 99999999999999999999\r\n`, SMUGGLED), status: 413 },
  // Chunk framing.
  { name: 'chunk size with 0x prefix', bytes: land(`Transfer-Encoding: chunked\r\n`, `0x5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'negative chunk size', bytes: land(`Transfer-Encoding: chunked\r\n`, `-5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk size with leading space', bytes: land(`Transfer-Encoding: chunked\r\n`, ` 5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk size with whitespace before the extension', bytes: land(`Transfer-Encoding: chunked\r\n`, `5 ;x=y\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk size overflowing 64 bits', bytes: land(`Transfer-Encoding: chunked\r\n`, `10000000000000005\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk data longer than its size', bytes: land(`Transfer-Encoding: chunked\r\n`, `3\r\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk size line ended by a bare LF', bytes: land(`Transfer-Encoding: chunked\r\n`, `5\nhello\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk data ended by a bare LF', bytes: land(`Transfer-Encoding: chunked\r\n`, `5\r\nhello\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'last chunk ended by a bare LF', bytes: land(`Transfer-Encoding: chunked\r\n`, `5\r\nhello\r\n0\n\n${SMUGGLED}`) },
  // Line terminators and control characters in the head.
  { name: 'request line ended by a bare LF', bytes: `POST /v1/request-landing HTTP/1.1\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'header line ended by a bare LF', bytes: land(`Content-Length: 0\nX-Pad: 1\r\n`, SMUGGLED) },
  { name: 'header line ended by a bare CR', bytes: land(`Content-Length: 0\rX-Pad: 1\r\n`, SMUGGLED) },
  { name: 'bare CR inside a header value', bytes: land(`X-Pad: a\rb\r\nContent-Length: 0\r\n`, SMUGGLED) },
  { name: 'obs-fold continuation of an ordinary header', bytes: land(`X-Pad: a\r\n b\r\nContent-Length: 0\r\n`, SMUGGLED) },
  { name: 'obs-fold with a tab', bytes: land(`X-Pad: a\r\n\tContent-Length: 5\r\n`, SMUGGLED) },
  { name: 'NUL in a header value', bytes: land(`X-Pad: a\x00b\r\nContent-Length: 0\r\n`, SMUGGLED) },
  { name: 'NUL in a header name', bytes: land(`X-P\x00ad: a\r\nContent-Length: 0\r\n`, SMUGGLED) },
  { name: 'NUL in the request-target', bytes: `POST /v1/request-landing\x00 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'space inside the request-target', bytes: `POST /v1/request-landing HTTP/1.1 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'two spaces after the method', bytes: `POST  /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'header before the request line starts (leading whitespace)', bytes: ` POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'first header line starts with whitespace', bytes: `POST /v1/request-landing HTTP/1.1\r\n Host: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'lower-case HTTP version', bytes: `POST /v1/request-landing http/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
  { name: 'trailer smuggling a Content-Length', bytes: land(`Transfer-Encoding: chunked\r\n`, `0\r\nContent-Length: 5\r\nX: a\x00\r\n\r\n${SMUGGLED}`) },
];

t.test('ambiguous framing: refused, connection closed, nothing forwarded', async (t) => {
  const g = await guarded(t, { port: 18101 });

  // Control: the same allowed request, well framed (content-length and chunked), does reach deathstar.
  const ok = await g.send(land(`Content-Length: 5\r\n`, 'hello'));
  t.equal(responses(ok.text)[0]?.status, 200, 'control (content-length) is forwarded');
  const okChunked = await g.send(land(`Transfer-Encoding: chunked\r\n`, `${chunk('hel')}${chunk('lo')}0\r\n\r\n`));
  t.equal(responses(okChunked.text)[0]?.status, 200, 'control (chunked) is forwarded');
  await settle();
  t.same(g.journal.map((r) => [r.method, r.url, r.body.toString()]), [
    ['POST', '/v1/request-landing', 'hello'],
    ['POST', '/v1/request-landing', 'hello'],
  ]);
  g.journal.length = 0;

  for (const c of cases) {
    const r = await g.send(c.bytes, { idleMs: 1500 });
    const got = responses(r.text);
    t.equal(got.length, 1, `${c.name}: exactly one response`);
    t.equal(got[0]?.status, c.status ?? 400, `${c.name}: ${c.status ?? 400}`);
    t.equal(r.closed, true, `${c.name}: connection closed`);
  }
  await settle();
  t.same(g.journal.map((r) => `${r.method} ${r.url}`), [], 'not one of them reached a backend');
  t.equal(g.s.proc.exitCode, null, 'the proxy is still running');
});
