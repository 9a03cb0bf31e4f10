// Our response parser against llhttp (Node's own parser, the one undici and node:http use), on
// seeded random responses built from RFC 9112's grammar with hostile variations (bare LF, bare CR,
// obs-fold, NUL and obs-text, CL/TE combinations, chunk extensions, trailers, interim 1xx, HEAD).
// The property: whenever ours accepts a response, llhttp accepts it too, with the same status,
// reason, header list, body bytes and keep-alive verdict — or ours rejects. Ours may be stricter,
// never laxer: a response two parsers frame differently is a desync between pod and client.
import t from 'tap';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import { createRequire } from 'node:module';
import { ResponseParser, type ResponseHead } from '../../../proxy/http1/response-parser.js';

const require = createRequire(import.meta.url);
interface LlhttpParser {
  initialize(type: number, resource: object): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  [k: number]: unknown;
}
const { HTTPParser } = require('_http_common') as {
  HTTPParser: (new () => LlhttpParser) & Record<'RESPONSE' | 'kOnHeadersComplete' | 'kOnBody' | 'kOnMessageComplete' | 'kOnHeaders', number>;
};

interface Parsed {
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly string[];
  readonly body: string;
  readonly keepAlive: boolean;
}

/** The first final (non-1xx) response, or undefined when the parser rejected or never completed it. */
function ours(bytes: Buffer, splits: readonly number[], head: boolean): Parsed | undefined {
  let got: { h: ResponseHead; body: Buffer[] } | undefined;
  let done: Parsed | undefined;
  const p = new ResponseParser({
    onResponseHead: (h) => (got = { h, body: [] }),
    onResponseData: (c) => got!.body.push(Buffer.from(c)),
    onResponseEnd: () => {
      const { h, body } = got!;
      done ??= { status: h.status, reason: h.reason, headers: h.headers, body: Buffer.concat(body).toString('latin1'), keepAlive: h.keepAlive };
    },
  });
  p.expect(head);
  try {
    let at = 0;
    for (const s of [...splits.filter((x) => x > 0 && x < bytes.length).sort((a, b) => a - b), bytes.length]) {
      if (s <= at) continue;
      p.execute(bytes.subarray(at, s));
      at = s;
      if (done !== undefined) return done;
    }
    p.finish();
  } catch {
    return undefined;
  }
  return done;
}

function llhttp(bytes: Buffer, head: boolean): Parsed | undefined {
  const p = new HTTPParser();
  p.initialize(HTTPParser.RESPONSE, {});
  let cur: { status: number; reason: string; headers: string[]; body: Buffer[]; keepAlive: boolean } | undefined;
  let done: Parsed | undefined;
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[], _m: unknown, _u: unknown, status: number, reason: string, _upgrade: boolean, keepAlive: boolean) => {
    cur = { status, reason, headers, body: [], keepAlive };
    // As node:http's client does: a HEAD response has no body whatever its fields say.
    return head ? 1 : 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => cur!.body.push(Buffer.from(b));
  p[HTTPParser.kOnMessageComplete] = () => {
    if (cur !== undefined && cur.status >= 200 && done === undefined) {
      done = { status: cur.status, reason: cur.reason, headers: cur.headers, body: Buffer.concat(cur.body).toString('latin1'), keepAlive: cur.keepAlive };
    }
  };
  const r = p.execute(bytes);
  if (done !== undefined) return done;
  if (r instanceof Error) return undefined;
  const f = p.finish();
  if (f instanceof Error) return undefined;
  return done;
}

// --- the generator: RFC 9112's grammar, with hostile variations mixed in ---

const eol = fc.oneof({ weight: 12, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r', '\r\r\n', ' \r\n') });
const token = fc.stringOf(fc.constantFrom(...'abcxyzABC-_!#0189'.split('')), { minLength: 1, maxLength: 8 });
const valueChar = fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...'abc 123=,;/'.split('')) }, { weight: 1, arbitrary: fc.constantFrom('\t', '\0', '\x7f', '\xe9', '\x01', '\r', '\n', '"') });
const value = fc.stringOf(valueChar, { maxLength: 12 });
const version = fc.oneof({ weight: 10, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'http/1.1', 'HTTP/1.2', 'HTTP/1.', 'HTTP/11') });
const status = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('200', '204', '304', '404', '500', '301') },
  { weight: 2, arbitrary: fc.constantFrom('100', '103', '101', '199') },
  { weight: 1, arbitrary: fc.constantFrom('99', '2000', '20a', '600', '000', ' 200') },
);
const reason = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(' OK', ' Not Found', ' ', '') }, { weight: 1, arbitrary: value.map((v) => ' ' + v) });

const framingField = fc.oneof(
  fc.nat({ max: 40 }).map((n) => `Content-Length: ${n}`),
  fc.constantFrom('Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: chunked, gzip', 'transfer-encoding:  Chunked ', 'Content-Length: 5, 5', 'Content-Length: 3, 4', 'Content-Length: -1', 'Content-Length: +3', 'Content-Length: 0x10'),
  fc.constantFrom('Connection: close', 'Connection: keep-alive', 'Connection: Upgrade', 'Keep-Alive: timeout=5', 'Connection: x, close'),
);
const field = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(token, value).map(([n, v]) => `${n}: ${v}`) },
  { weight: 3, arbitrary: framingField },
  { weight: 1, arbitrary: fc.constantFrom(' folded', '\tfolded', 'Name : v', 'Na me: v', ': v', 'NoColon', 'X:no-space', 'X:  padded  ') },
);
const chunk = fc.tuple(fc.string({ maxLength: 12 }), fc.constantFrom('', ';ext', ';a=b', ' ;x', ';\x01'), fc.constantFrom('', '0', 'g')).map(
  ([data, ext, pad]) => `${pad}${data.length.toString(16)}${ext}\r\n${data}\r\n`,
);
const body = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.tuple(fc.array(chunk, { maxLength: 3 }), fc.constantFrom('0\r\n\r\n', '0\r\nTrailer-X: t\r\n\r\n', '0\r\n', '0;e\r\n\r\n', '0\r\n\r\nEXTRA')).map(([cs, last]) => cs.join('') + last),
);
const interim = fc.constantFrom('', '', '', 'HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n');

const response = fc
  .record({ interim, version, status, reason, eol, fields: fc.array(fc.tuple(field, eol), { maxLength: 6 }), end: eol, body })
  .map(({ interim, version, status, reason, eol, fields, end, body }) =>
    `${interim}${version} ${status}${reason}${eol}${fields.map(([f, e]) => f + e).join('')}${end}${body}`);

t.test('every response ours accepts, llhttp frames the same way', (t) => {
  let accepted = 0;
  let rejectedByOurs = 0;
  fc.assert(
    fc.property(response, fc.array(fc.nat({ max: 120 }), { maxLength: 4 }), fc.boolean(), (text, splits, head) => {
      const bytes = Buffer.from(text, 'latin1');
      const a = ours(bytes, splits, head);
      if (a === undefined) {
        rejectedByOurs++;
        return true;
      }
      accepted++;
      const b = llhttp(bytes, head);
      if (b === undefined) throw new Error(`ours accepted what llhttp rejects: ${JSON.stringify(text)} (head: ${head})`);
      // llhttp computes keep-alive before it is told the request was HEAD (it would wait for a close
      // that a HEAD response never needs): for HEAD only the framing is compared.
      if (head) deepStrictEqual({ ...a, keepAlive: undefined }, { ...b, keepAlive: undefined }, JSON.stringify(text));
      else deepStrictEqual(a, b, JSON.stringify(text));
      return true;
    }),
    { seed: 0x17_9a4d, numRuns: 4000 },
  );
  t.pass('4000 seeded responses: no disagreement');
  t.ok(accepted > 500, `a meaningful share was accepted (${accepted} accepted, ${rejectedByOurs} rejected)`);
  t.end();
});

t.test('responses both parsers must accept: ours agrees with llhttp', (t) => {
  const fixed = [
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n',
    'HTTP/1.0 200 OK\r\n\r\nuntil the close',
    'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx',
  ];
  for (const text of fixed) {
    const bytes = Buffer.from(text, 'latin1');
    const a = ours(bytes, [1, 7, 20], false);
    t.ok(a, `ours accepts ${JSON.stringify(text)}`);
    t.strictSame(a, llhttp(bytes, false), JSON.stringify(text));
  }
  t.end();
});
