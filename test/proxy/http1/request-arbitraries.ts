// Generated HTTP/1.1 requests for the seeded property tests: well-formed requests in every framing
// and spelling RFC 9112 allows (the forms two parsers are most likely to read differently), and
// byte-level mutations of them. Runs are reproducible: a fixed seed by default, L7GUARD_FUZZ_SEED
// and L7GUARD_FUZZ_RUNS for a longer run (docs/hardening.md#fuzzing-the-parsers).
import fc from 'fast-check';

export interface GeneratedRequest {
  readonly method: string;
  /** As sent (origin-form or absolute-form). */
  readonly target: string;
  /** The path a backend should see (the target's path and query). */
  readonly path: string;
  readonly versionMinor: 0 | 1;
  /** The header lines after Host, as sent (framing fields included), without CRLF. */
  readonly lines: readonly string[];
  /** End-to-end fields the backend must receive, values as the parser trims them. */
  readonly fields: readonly (readonly [string, string])[];
  readonly body: Buffer;
  readonly framing: Framing;
  readonly bytes: Buffer;
}

export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly spelling: 'plain' | 'zeros' | 'twice' | 'list' | 'list-empty' | 'three' }
  | { readonly kind: 'chunked'; readonly te: string; readonly sizes: readonly number[]; readonly ext: boolean; readonly trailers: readonly (readonly [string, string])[] };

export const HOST = 'deathstar.default.svc.cluster.local';

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = (min = 1, max = 12): fc.Arbitrary<string> => fc.stringOf(fc.constantFrom(...TCHAR), { minLength: min, maxLength: max });

/** field-vchar, SP, HTAB and obs-text, with no whitespace at either end (OWS is trimmed by every parser). */
const fieldValue: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.constantFrom(0x20, 0x09), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 24 })
  .map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''));

/** OWS around a value: the parser must trim exactly SP and HTAB. */
const ows = fc.constantFrom('', ' ', '  ', '\t', ' \t');

/** Names a proxy treats specially are left to the framing generator and the fixed Host. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'te', 'trailer', 'keep-alive', 'proxy-connection', 'http2-settings', 'x-forwarded-for', 'x-forwarded-proto']);
const fieldName = token(1, 16).filter((n) => !RESERVED.has(n.toLowerCase()));

/** RFC 9110 method tokens: the registered ones and some extension methods. */
const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
  fc.constantFrom('PROPFIND', 'MKCOL', 'PURGE', 'REPORT', 'SEARCH', 'LINK'),
);

/** A clean path (normalisation leaves it alone) with an optional query. */
const pathArb = fc
  .tuple(fc.array(fc.stringOf(fc.constantFrom(...'abcxyz0189-._~!$&\'()*+,;=:@'), { minLength: 1, maxLength: 8 }).filter((s) => !/^\.\.?(;|$)/.test(s)), { maxLength: 4 }), fc.option(fc.stringOf(fc.constantFrom(...'abc=&019%2F?/'), { maxLength: 10 }).filter((q) => !/%(?![0-9A-F]{2})/i.test(q)), { nil: undefined }))
  .map(([segs, q]) => '/' + segs.join('/') + (q === undefined ? '' : '?' + q));

const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  fc.constant<Framing>({ kind: 'none' }),
  fc.constantFrom('plain', 'zeros', 'twice', 'list', 'list-empty', 'three').map((spelling) => ({ kind: 'length', spelling }) as Framing),
  fc
    .record({
      te: fc.constantFrom('chunked', 'Chunked', 'CHUNKED'),
      sizes: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 4 }),
      ext: fc.boolean(),
      trailers: fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 2 }),
    })
    .map((c) => ({ kind: 'chunked', ...c }) as Framing),
);

function contentLengthLines(n: number, spelling: Extract<Framing, { kind: 'length' }>['spelling']): string[] {
  switch (spelling) {
    case 'plain':
      return [`Content-Length: ${n}`];
    case 'zeros':
      return [`Content-Length: 00${n}`];
    case 'twice':
      return [`Content-Length: ${n}`, `content-length: ${n}`];
    case 'list':
      return [`Content-Length: ${n}, ${n}`];
    case 'list-empty':
      return [`Content-Length: ${n},`];
    case 'three':
      return [`Content-Length: ${n}`, `Content-Length: ${n},${n}`, `CONTENT-LENGTH:${n}`];
  }
}

function chunkedBody(body: Buffer, sizes: readonly number[], ext: boolean, trailers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  let i = 0;
  while (pos < body.length) {
    const n = Math.min(sizes[i % Math.max(sizes.length, 1)] ?? body.length, body.length - pos);
    parts.push(Buffer.from(`${n.toString(16)}${ext && i % 2 === 0 ? ';name=value;flag' : ''}\r\n`, 'latin1'), body.subarray(pos, pos + n), Buffer.from('\r\n'));
    pos += n;
    i++;
  }
  parts.push(Buffer.from(`0${ext ? ';last="q s"' : ''}\r\n${trailers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** One well-formed request, with what a backend should receive from it. */
export const requestArb: fc.Arbitrary<GeneratedRequest> = fc
  .record({
    method,
    path: pathArb,
    absolute: fc.boolean(),
    versionMinor: fc.constantFrom<0 | 1>(1, 1, 1, 0),
    fields: fc.array(fc.tuple(fieldName, fieldValue, ows, ows), { maxLength: 6 }),
    body: fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
    framing: framingArb,
  })
  .map((r) => {
    // HTTP/1.0 has no chunked framing (RFC 9112 §6.1: a 1.0 recipient cannot be sent it).
    const framing: Framing = r.versionMinor === 0 && r.framing.kind === 'chunked' ? { kind: 'length', spelling: 'plain' } : r.framing;
    const body = framing.kind === 'none' ? Buffer.alloc(0) : r.body;
    const framingLines =
      framing.kind === 'length' ? contentLengthLines(body.length, framing.spelling) : framing.kind === 'chunked' ? [`Transfer-Encoding: ${framing.te}`] : [];
    const fieldLines = r.fields.map(([n, v, a, b]) => `${n}:${a}${v}${b}`);
    // Framing fields in the middle as often as at an end: a parser must not care where they are.
    const at = r.fields.length === 0 ? 0 : r.fields.length >> 1;
    const lines = [...fieldLines.slice(0, at), ...framingLines, ...fieldLines.slice(at)];
    const target = r.absolute ? `http://${HOST}${r.path}` : r.path;
    const head = `${r.method} ${target} HTTP/1.${r.versionMinor}\r\nHost: ${HOST}\r\n${lines.map((l) => l + '\r\n').join('')}\r\n`;
    const encoded = framing.kind === 'chunked' ? chunkedBody(body, framing.sizes, framing.ext, framing.trailers) : body;
    return {
      method: r.method,
      target,
      path: r.path,
      versionMinor: r.versionMinor,
      lines,
      fields: r.fields.map(([n, v]) => [n, v] as const),
      body,
      framing,
      bytes: Buffer.concat([Buffer.from(head, 'latin1'), encoded]),
    };
  });

/** Bytes parsers disagree about: line ends, whitespace, separators, digits, controls, obs-text. */
const INTERESTING = [0x0d, 0x0a, 0x20, 0x09, 0x00, 0x3a, 0x2c, 0x3b, 0x3d, 0x22, 0x30, 0x31, 0x66, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x2d, 0x48];

type Mutation =
  | { readonly op: 'insert'; readonly at: number; readonly bytes: readonly number[] }
  | { readonly op: 'delete'; readonly at: number; readonly n: number }
  | { readonly op: 'replace'; readonly at: number; readonly byte: number }
  | { readonly op: 'line'; readonly at: number; readonly line: string };

/** Lines that change framing or field syntax when spliced into a head. */
const SPLICED_LINES = [
  'Content-Length: 0', 'Content-Length: 3', 'Content-Length: +3', 'Content-Length: 3 3', 'Content-Length: -1', 'Content-Length: 0x3',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, gzip', 'Transfer-Encoding:chunked',
  ' folded', '\tfolded', 'X-Sp : 1', 'X-Empty:', ':novalue', 'Host: other', 'Connection: close', 'Connection: keep-alive, Upgrade',
  'Upgrade: websocket', 'Expect: 100-continue', 'X-Nul: a\x00b', 'X-Obs: \x80\xff',
];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.constantFrom(...INTERESTING), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('line' as const), at: fc.nat(), line: fc.constantFrom(...SPLICED_LINES) }),
);

function mutate(bytes: Buffer, m: Mutation): Buffer {
  if (bytes.length === 0) return bytes;
  const at = m.at % (bytes.length + 1);
  switch (m.op) {
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.n)]);
    case 'replace': {
      const out = Buffer.from(bytes);
      out[at % out.length] = m.byte;
      return out;
    }
    case 'line': {
      // After the CRLF of some line of the head, so the spliced line is a field line (or a fold).
      const head = bytes.indexOf('\r\n\r\n');
      const ends: number[] = [];
      for (let i = bytes.indexOf('\r\n'); i >= 0 && i < head; i = bytes.indexOf('\r\n', i + 2)) ends.push(i + 2);
      if (ends.length === 0) return bytes;
      const pos = ends[m.at % ends.length]!;
      return Buffer.concat([bytes.subarray(0, pos), Buffer.from(m.line + '\r\n', 'latin1'), bytes.subarray(pos)]);
    }
  }
}

/** One to three pipelined requests, some mutated: the stream a differential parser test feeds. */
export const streamArb: fc.Arbitrary<Buffer> = fc
  .tuple(fc.array(requestArb, { minLength: 1, maxLength: 3 }), fc.array(mutationArb, { maxLength: 3 }), fc.boolean())
  .map(([reqs, mutations, leadingCrlf]) => {
    let bytes: Buffer = Buffer.concat([...(leadingCrlf ? [Buffer.from('\r\n')] : []), ...reqs.map((r) => r.bytes)]);
    for (const m of mutations) bytes = mutate(bytes, m);
    return bytes;
  });
