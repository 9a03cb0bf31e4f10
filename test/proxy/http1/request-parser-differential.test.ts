// The request parser against llhttp (node:http's parser, the one undici and most Node backends use),
// on generated and mutated byte streams with a fixed seed: for every stream both read the same
// messages — method, target, version, fields, body and where each message ends — or l7guard rejects.
// l7guard accepting what llhttp rejects is a failure, except where an RFC lets a recipient accept it
// (ALLOWED below, each documented in docs/hardening.md#fuzzing-the-parsers). A longer run:
// L7GUARD_FUZZ_RUNS=200000 npx tap dist/test/proxy/http1/request-parser-differential.test.js
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { HttpParseError } from '../../../proxy/errors.js';
import { RequestParser } from '../../../proxy/http1/request-parser.js';
import { normalizeTarget } from '../../../proxy/http1/normalize-path.js';
import { isValidAuthority } from '../../../proxy/http1/authority.js';
import { requestArb, streamArb } from './request-arbitraries.js';
import { fuzzParameters } from '../../helpers/fuzz.js';

interface Message {
  method: string;
  target: string;
  versionMinor: number;
  headers: string[];
  body: Buffer;
  trailers: string[];
  complete: boolean;
  /** Another request may follow on the connection. */
  keepAlive: boolean;
  /** The connection leaves HTTP after this head (Upgrade). */
  upgrade: boolean;
}

interface Reading {
  readonly messages: Message[];
  /** The error code, or undefined when every byte was read (possibly ending inside a message). */
  readonly error: string | undefined;
}

interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [k: number]: unknown;
}
interface HttpCommon {
  HTTPParser: { new (): NodeHttpParser; REQUEST: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
  methods: string[];
}
const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as HttpCommon;

/** llhttp in node's strict mode (no lenient flags), with a header limit above l7guard's so only syntax can differ. */
function readWithLlhttp(bytes: Buffer): Reading {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 1 << 20, 0);
  const messages: Message[] = [];
  let pending: string[] = [];
  let url = '';
  let cur: Message | undefined;
  p[HTTPParser.kOnHeaders] = (h: string[], u: string) => {
    if (cur !== undefined) cur.trailers.push(...h);
    else {
      pending.push(...h);
      url += u;
    }
  };
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, minor: number, headers: string[] | undefined, method: number, u: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
    cur = { method: methods[method] ?? `#${method}`, target: u || url, versionMinor: minor, headers: headers ?? pending, body: Buffer.alloc(0), trailers: [], complete: false, keepAlive, upgrade };
    pending = [];
    url = '';
    messages.push(cur);
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    cur!.body = Buffer.concat([cur!.body, b]);
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    cur!.complete = true;
    cur = undefined;
  };
  const r = p.execute(bytes);
  p.close();
  const error = r instanceof Error ? String((r as Error & { code?: string }).code) : undefined;
  return { messages, error };
}

/**
 * l7guard's front end fed in the given pieces, the way the socket delivers them: the parser, then
 * the request-target and authority checks every head meets before anything else
 * (request-handler.ts), since a target they refuse is answered 400 and read no further.
 */
function readWithL7guard(bytes: Buffer, cuts: readonly number[]): Reading {
  const p = new RequestParser();
  const messages: Message[] = [];
  let cur: Message | undefined;
  let error: string | undefined;
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  try {
    for (const to of [...points, bytes.length]) {
      if (to <= from && to !== bytes.length) continue;
      p.push(bytes.subarray(from, to));
      from = to;
      for (let ev = p.next(); ev !== null; ev = p.next()) {
        if (ev.kind === 'head') {
          const h = ev.head;
          const target = normalizeTarget(h.target);
          if ('error' in target) return { messages, error: target.error };
          if ('authority' in target && target.authority !== undefined && !isValidAuthority(target.authority)) return { messages, error: 'invalid authority' };
          cur = { method: h.method, target: h.target, versionMinor: h.versionMinor, headers: [...h.headers], body: Buffer.alloc(0), trailers: [], complete: false, keepAlive: h.keepAlive, upgrade: h.upgrade !== undefined };
          messages.push(cur);
        } else if (ev.kind === 'body') {
          cur!.body = Buffer.concat([cur!.body, ev.chunk]);
        } else {
          cur!.trailers = [...ev.trailers];
          cur!.complete = true;
          cur = undefined;
        }
      }
    }
  } catch (err) {
    if (!(err instanceof HttpParseError)) throw err;
    error = err.code;
  }
  return { messages, error };
}

/**
 * Where l7guard may accept what llhttp refuses, because an RFC lets a recipient accept it. Each
 * returns true when the llhttp error on `bytes` is of that kind.
 */
const ALLOWED: readonly { readonly name: string; readonly applies: (llError: string, msg: Message, bytes: Buffer) => boolean }[] = [
  {
    // RFC 9110 §8.6: a Content-Length list or repeated field with one value MAY be accepted as that
    // value; llhttp refuses both. l7guard forwards a single field (request-headers.ts singleContentLength).
    name: 'Content-Length repeated with one value',
    applies: (e, m) => (e === 'HPE_UNEXPECTED_CONTENT_LENGTH' || e === 'HPE_INVALID_CONTENT_LENGTH') && contentLengthFields(m.headers) >= 1,
  },
  {
    // RFC 9110 §9.1: method = token, and the registry is open; llhttp knows a fixed list.
    name: 'extension method',
    applies: (e, m) => e === 'HPE_INVALID_METHOD' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m.method),
  },
  {
    // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS — whitespace after the value is
    // not part of it; llhttp refuses it after `chunked`. The backend never sees the field (hop-by-hop).
    name: 'OWS after Transfer-Encoding',
    applies: (e, _m, bytes) => e === 'HPE_INVALID_TRANSFER_ENCODING' && /\r\ntransfer-encoding:[^\r]*[ \t]\r\n/i.test(bytes.toString('latin1')),
  },
];

function contentLengthFields(h: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < h.length; i += 2) if (h[i]!.toLowerCase() === 'content-length') n++;
  return n;
}

const sameHead = (a: Message, b: Message): boolean =>
  a.method === b.method && a.target === b.target && a.versionMinor === b.versionMinor && JSON.stringify(a.headers) === JSON.stringify(b.headers);

/**
 * Whether the connection continues after the head: l7guard may stop sooner than llhttp (a close
 * is never a disagreement about framing), never later — except for RFC 9110 §7.8's "a server MUST
 * ignore an Upgrade header field that is received in an HTTP/1.0 request", which llhttp honours.
 */
function continuation(a: Message, b: Message): { problem: string; allowed?: string } | undefined {
  if (a.upgrade !== b.upgrade) {
    const problem = `upgrade: l7guard ${a.upgrade}, llhttp ${b.upgrade}`;
    return !a.upgrade && a.versionMinor === 0 ? { problem, allowed: 'Upgrade in HTTP/1.0 ignored' } : { problem };
  }
  if (a.keepAlive && !b.keepAlive) return { problem: 'l7guard keeps a connection llhttp closes' };
  return undefined;
}

/** After this message the connection reads no more HTTP: it closes, or leaves HTTP for the upgraded protocol. */
const lastOnConnection = (m: Message): boolean => !m.keepAlive || m.upgrade;

/** The contract, checked on one stream: undefined when it holds, else what broke it. */
function compare(bytes: Buffer, cuts: readonly number[]): { problem: string; allowed?: string } | undefined {
  const l7 = readWithL7guard(bytes, cuts);
  const ll = readWithLlhttp(bytes);
  const end = l7.messages.findIndex(lastOnConnection);
  const last = end < 0 ? Number.POSITIVE_INFINITY : end;
  for (let i = 0; i < l7.messages.length && i <= last; i++) {
    const a = l7.messages[i]!;
    const b = ll.messages[i];
    if (b === undefined) {
      // l7guard read a head llhttp never reached: llhttp refused something before it, or framed the
      // previous message differently.
      if (ll.error !== undefined) {
        const allowed = ALLOWED.find((x) => x.applies(ll.error!, a, bytes) || (i > 0 && x.applies(ll.error!, l7.messages[i - 1]!, bytes)));
        const problem = `message ${i}: l7guard read ${a.method} ${a.target}, llhttp refused with ${ll.error}`;
        return allowed === undefined ? { problem } : { problem, allowed: allowed.name };
      }
      return { problem: `message ${i}: l7guard read a head llhttp did not reach (framing differs)` };
    }
    if (!sameHead(a, b)) return { problem: `message ${i}: heads differ\n  l7guard: ${JSON.stringify({ ...a, body: undefined })}\n  llhttp:  ${JSON.stringify({ ...b, body: undefined })}` };
    const c = continuation(a, b);
    if (c !== undefined) return { ...c, problem: `message ${i}: ${c.problem}` };
    // The rest of the stream is not read as HTTP any more (a close or an upgrade, and the heads agree on it).
    if (i === last && (a.upgrade || !a.complete || b.complete)) return undefined;
    if (a.complete) {
      if (!b.complete) {
        if (ll.error !== undefined) {
          const allowed = ALLOWED.find((x) => x.applies(ll.error!, a, bytes));
          const problem = `message ${i}: l7guard read it whole, llhttp refused with ${ll.error}`;
          return allowed === undefined ? { problem } : { problem, allowed: allowed.name };
        }
        return { problem: `message ${i}: l7guard read it whole, llhttp wants more bytes (framing differs)` };
      }
      if (!a.body.equals(b.body)) return { problem: `message ${i}: bodies differ: ${JSON.stringify(a.body.toString('latin1'))} vs ${JSON.stringify(b.body.toString('latin1'))}` };
      if (JSON.stringify(a.trailers) !== JSON.stringify(b.trailers)) return { problem: `message ${i}: trailers differ: ${JSON.stringify(a.trailers)} vs ${JSON.stringify(b.trailers)}` };
    } else if (l7.error === undefined && b.complete) {
      return { problem: `message ${i}: llhttp read it whole, l7guard wants more bytes (framing differs)` };
    }
  }
  if (l7.error === undefined && ll.messages.length > l7.messages.length && l7.messages.length <= last) {
    return { problem: `llhttp read ${ll.messages.length} messages, l7guard ${l7.messages.length} and wants more bytes (framing differs)` };
  }
  return undefined;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 4 });

function run(t: Test, name: string, stream: fc.Arbitrary<Buffer>, runs: number): void {
  const params = fuzzParameters(runs);
  const allowedSeen = new Map<string, number>();
  let lastProblem = '';
  const result = fc.check(
    fc.property(stream, cutsArb, (bytes, cuts) => {
      const r = compare(bytes, cuts);
      if (r === undefined) return true;
      if (r.allowed !== undefined) {
        allowedSeen.set(r.allowed, (allowedSeen.get(r.allowed) ?? 0) + 1);
        return true;
      }
      lastProblem = `${r.problem}\n  stream: ${JSON.stringify(bytes.toString('latin1'))}`;
      return false;
    }),
    params,
  );
  t.notOk(result.failed, result.failed ? `${lastProblem}\n${fc.defaultReportMessage(result) ?? ''}` : `${name}: ${result.numRuns} streams agree (seed ${params.seed})`);
  if (allowedSeen.size > 0) t.comment(`${name}: RFC-allowed divergences seen: ${JSON.stringify(Object.fromEntries(allowedSeen))}`);
}

t.test('well-formed requests: l7guard and llhttp read the same messages', async (t) => {
  run(t, 'well-formed', fc.array(requestArb, { minLength: 1, maxLength: 3 }).map((rs) => Buffer.concat(rs.map((r) => r.bytes))), 300);
});

t.test('mutated streams: the same messages, or l7guard rejects', async (t) => {
  run(t, 'mutated', streamArb, 2000);
});

t.test('known disagreements stay settled', async (t) => {
  // Each of these is a stream where the two parsers could differ; the contract must hold on all.
  const streams = [
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n',
    'GET /a"b HTTP/1.1\r\nHost: a\r\n\r\n',
    '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t \r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n',
    'GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.0\r\n\r\n',
    'PURGE / HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET http://a"b/ HTTP/1.1\r\nHost: a\r\n\r\n',
  ];
  for (const s of streams) {
    const r = compare(Buffer.from(s, 'latin1'), []);
    t.ok(r === undefined || r.allowed !== undefined, `${JSON.stringify(s)}${r === undefined ? '' : ` (${r.allowed ?? r.problem})`}`);
  }
});
