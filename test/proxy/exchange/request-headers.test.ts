// The request-header passes (proxy/exchange/request-headers.ts), each alone and all in order: what
// a backend gets is decided here, so every rule is pinned by a table row.
import t, { type Test } from 'tap';
import type { HeaderEdit } from '../../../policy/model.js';
import {
  REQUEST_HEADER_PASSES,
  appendForwardedFor,
  applyPolicyEdits,
  removeHopByHop,
  setForwardedProto,
  setRoutedHost,
  singleContentLength,
  upstreamHeaders,
  type ForwardedRequest,
  type RequestHeaderPass,
} from '../../../proxy/exchange/request-headers.js';
import { applyEdits } from '../../../proxy/exchange/request-handler.js';

const CLIENT = '10.0.0.7';

function forwarded(over: {
  headers?: string[];
  host?: string | undefined;
  authority?: string;
  tls?: boolean;
  edits?: readonly HeaderEdit[];
  contentLength?: number;
}): ForwardedRequest {
  const headers = over.headers ?? ['Host', 'deathstar'];
  const host = 'host' in over ? over.host : 'deathstar';
  return {
    req: { headers, host, remoteAddress: CLIENT, contentLength: over.contentLength },
    authority: over.authority ?? host ?? 'deathstar',
    tls: over.tls ?? false,
    edits: over.edits,
  };
}

interface Row {
  readonly name: string;
  readonly x: ForwardedRequest;
  readonly in: string[];
  readonly out: string[];
}

function table(t: Test, pass: RequestHeaderPass, rows: readonly Row[]): void {
  for (const row of rows) {
    const headers = [...row.in];
    pass(headers, row.x);
    t.same(headers, row.out, row.name);
  }
}

t.test('removeHopByHop: RFC 9110 §7.6.1, Connection-listed names included, on a copy', async (t) => {
  const rows: { name: string; in: string[]; out: string[] }[] = [
    { name: 'end-to-end fields only: unchanged', in: ['Host', 'h', 'Accept', '*/*'], out: ['Host', 'h', 'Accept', '*/*'] },
    {
      name: 'the fixed set goes',
      in: ['Host', 'h', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive', 'Trailer', 'X-T', 'Expect', '100-continue', 'HTTP2-Settings', 'AAMAAABkAAQAAP__', 'Accept', '*/*'],
      out: ['Host', 'h', 'Accept', '*/*'],
    },
    {
      name: 'names listed in Connection go too, in any case and from any Connection field',
      in: ['Host', 'h', 'Connection', 'close, X-Trace', 'connection', 'x-session', 'x-trace', '1', 'X-Session', 's', 'X-Keep', 'k'],
      out: ['Host', 'h', 'X-Keep', 'k'],
    },
    { name: 'Connection naming Host does not strip Host', in: ['Host', 'h', 'Connection', 'host'], out: ['Host', 'h'] },
  ];
  for (const row of rows) {
    const received = [...row.in];
    const out = removeHopByHop(received);
    t.same(out, row.out, row.name);
    t.not(out, received, `${row.name}: a new array`);
    t.same(received, row.in, `${row.name}: the received list is untouched`);
  }
});

t.test('singleContentLength: RFC 9110 §8.6, one field with the decimal value the front end read', async (t) => {
  const x = (contentLength: number | undefined): ForwardedRequest => forwarded({ contentLength });
  table(t, singleContentLength, [
    { name: 'one canonical field: untouched', x: x(5), in: ['Host', 'h', 'Content-Length', '5', 'A', '1'], out: ['Host', 'h', 'Content-Length', '5', 'A', '1'] },
    { name: 'two identical fields: one, where the first was', x: x(5), in: ['Content-Length', '5', 'A', '1', 'content-length', '5'], out: ['Content-Length', '5', 'A', '1'] },
    { name: 'a list of one value: its value', x: x(5), in: ['A', '1', 'Content-Length', '5, 5', 'B', '2'], out: ['A', '1', 'Content-Length', '5', 'B', '2'] },
    { name: 'a list with an empty member', x: x(5), in: ['Content-Length', '5,'], out: ['Content-Length', '5'] },
    { name: 'leading zeros: the decimal value', x: x(5), in: ['Content-Length', '005'], out: ['Content-Length', '5'] },
    { name: 'three fields, one a list', x: x(0), in: ['CONTENT-LENGTH', '0', 'Content-Length', '0, 0', 'content-length', '00'], out: ['CONTENT-LENGTH', '0'] },
    { name: 'no body field (chunked or none): untouched', x: x(undefined), in: ['Host', 'h'], out: ['Host', 'h'] },
  ]);
});

t.test('setRoutedHost: RFC 9112 §3.2.2, the routed authority replaces a disagreeing Host', async (t) => {
  table(t, setRoutedHost, [
    {
      name: 'origin-form (authority is the Host): left as sent, case and position kept',
      x: forwarded({ host: 'deathstar' }),
      in: ['Accept', '*/*', 'Host', 'deathstar'],
      out: ['Accept', '*/*', 'Host', 'deathstar'],
    },
    {
      name: 'absolute-form: every received Host goes, the target authority comes first',
      x: forwarded({ host: 'evil.example', authority: 'deathstar.default.svc.cluster.local' }),
      in: ['Accept', '*/*', 'HOST', 'evil.example', 'host', 'other'],
      out: ['host', 'deathstar.default.svc.cluster.local', 'Accept', '*/*'],
    },
    {
      name: 'no Host (HTTP/1.0, routed by the original destination): one is added',
      x: forwarded({ host: undefined, authority: '10.96.0.10:80' }),
      in: ['Accept', '*/*'],
      out: ['host', '10.96.0.10:80', 'Accept', '*/*'],
    },
    {
      name: 'a field merely ending in "host" is not Host',
      x: forwarded({ host: 'a', authority: 'b' }),
      in: ['X-Host', 'x', 'Host', 'a'],
      out: ['host', 'b', 'X-Host', 'x'],
    },
  ]);
});

t.test('appendForwardedFor: the client address ends the chain', async (t) => {
  const x = forwarded({});
  table(t, appendForwardedFor, [
    { name: 'no chain: the client address alone', x, in: ['Host', 'h'], out: ['Host', 'h', 'x-forwarded-for', CLIENT] },
    {
      name: 'an existing chain is appended to',
      x,
      in: ['Host', 'h', 'X-Forwarded-For', '6.6.6.6, 7.7.7.7', 'Accept', '*/*'],
      out: ['Host', 'h', 'Accept', '*/*', 'x-forwarded-for', `6.6.6.6, 7.7.7.7, ${CLIENT}`],
    },
    {
      name: 'several fields (any case) fold into one, in the order received',
      x,
      in: ['x-forwarded-for', '1.1.1.1', 'Host', 'h', 'X-FORWARDED-FOR', '2.2.2.2'],
      out: ['Host', 'h', 'x-forwarded-for', `1.1.1.1, 2.2.2.2, ${CLIENT}`],
    },
  ]);
});

t.test('setForwardedProto: our listener says the scheme, never the client', async (t) => {
  table(t, setForwardedProto, [
    { name: 'plain listener', x: forwarded({}), in: ['Host', 'h'], out: ['Host', 'h', 'x-forwarded-proto', 'http'] },
    { name: 'TLS listener', x: forwarded({ tls: true }), in: ['Host', 'h'], out: ['Host', 'h', 'x-forwarded-proto', 'https'] },
    {
      name: "the client's claim is overwritten, every copy of it",
      x: forwarded({}),
      in: ['X-Forwarded-Proto', 'https', 'Host', 'h', 'x-forwarded-proto', 'https'],
      out: ['Host', 'h', 'x-forwarded-proto', 'http'],
    },
  ]);
});

t.test('applyPolicyEdits: headerMatches mismatch actions ADD / DELETE / REPLACE', async (t) => {
  const e = (op: HeaderEdit['op'], name: string, value = ''): HeaderEdit => ({ op, name, value });
  const base = ['Host', 'h', 'X-Token', 'a', 'x-token', 'b', 'Accept', '*/*'];
  table(t, applyPolicyEdits, [
    { name: 'no edits: unchanged', x: forwarded({}), in: base, out: base },
    { name: 'ADD appends, existing fields kept', x: forwarded({ edits: [e('add', 'x-token', 'c')] }), in: base, out: [...base, 'x-token', 'c'] },
    { name: 'DELETE removes every field of the name, any case', x: forwarded({ edits: [e('delete', 'x-token')] }), in: base, out: ['Host', 'h', 'Accept', '*/*'] },
    { name: 'REPLACE removes them and sets one', x: forwarded({ edits: [e('replace', 'x-token', 'z')] }), in: base, out: ['Host', 'h', 'Accept', '*/*', 'x-token', 'z'] },
    { name: 'REPLACE of an absent field adds it', x: forwarded({ edits: [e('replace', 'x-new', 'n')] }), in: ['Host', 'h'], out: ['Host', 'h', 'x-new', 'n'] },
    {
      name: 'edits apply in the rule order',
      x: forwarded({ edits: [e('add', 'x-a', '1'), e('delete', 'x-a'), e('add', 'x-a', '2')] }),
      in: ['Host', 'h'],
      out: ['Host', 'h', 'x-a', '2'],
    },
  ]);
  const headers = [...base];
  applyEdits(headers, [e('delete', 'accept')]);
  t.same(headers, ['Host', 'h', 'X-Token', 'a', 'x-token', 'b'], 'applyEdits is still exported by request-handler.ts');
});

t.test('REQUEST_HEADER_PASSES: the order', async (t) => {
  t.same(
    REQUEST_HEADER_PASSES.map((p) => p.name),
    ['removeHopByHop', 'singleContentLength', 'setRoutedHost', 'appendForwardedFor', 'setForwardedProto', 'applyPolicyEdits'],
    'hop-by-hop first (it copies), forwarding fields next, the policy edits last',
  );
  t.ok(Object.isFrozen(REQUEST_HEADER_PASSES), 'nobody can add a pass at run time');
});

t.test('upstreamHeaders: every pass, in order, over one new array', async (t) => {
  const rows: { name: string; x: ForwardedRequest; out: string[] }[] = [
    {
      name: 'a plain request',
      x: forwarded({ headers: ['Host', 'deathstar', 'Accept', '*/*'] }),
      out: ['Host', 'deathstar', 'Accept', '*/*', 'x-forwarded-for', CLIENT, 'x-forwarded-proto', 'http'],
    },
    {
      name: 'everything at once',
      x: forwarded({
        headers: ['Host', 'evil', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'Accept', '*/*'],
        host: 'evil',
        authority: 'deathstar.default.svc.cluster.local',
        edits: [{ op: 'add', name: 'x-added', value: 'y' }],
      }),
      out: [
        'host', 'deathstar.default.svc.cluster.local', 'Accept', '*/*',
        'x-forwarded-for', `6.6.6.6, ${CLIENT}`, 'x-forwarded-proto', 'http', 'x-added', 'y',
      ],
    },
    {
      name: 'hop-by-hop runs before the forwarding fields: a Connection-listed X-Forwarded-For is dropped, not chained',
      x: forwarded({ headers: ['Host', 'deathstar', 'Connection', 'X-Forwarded-For', 'X-Forwarded-For', '6.6.6.6'] }),
      out: ['Host', 'deathstar', 'x-forwarded-for', CLIENT, 'x-forwarded-proto', 'http'],
    },
    {
      name: 'the policy edits run last: a REPLACE of X-Forwarded-Proto wins over ours',
      x: forwarded({ edits: [{ op: 'replace', name: 'x-forwarded-proto', value: 'https' }] }),
      out: ['Host', 'deathstar', 'x-forwarded-for', CLIENT, 'x-forwarded-proto', 'https'],
    },
    {
      name: 'the policy edits run last: a DELETE of X-Forwarded-For removes ours too',
      x: forwarded({ edits: [{ op: 'delete', name: 'x-forwarded-for', value: '' }] }),
      out: ['Host', 'deathstar', 'x-forwarded-proto', 'http'],
    },
  ];
  for (const row of rows) {
    const received = [...row.x.req.headers];
    const out = upstreamHeaders(row.x);
    t.same(out, row.out, row.name);
    t.not(out, row.x.req.headers, `${row.name}: a new array`);
    t.same(row.x.req.headers, received, `${row.name}: the received list is untouched (a retry reads it again)`);
    t.same(upstreamHeaders(row.x), row.out, `${row.name}: the same again (as for a retry)`);
  }
});

t.test('fields that pass unchanged: the raw lines plus the forwarding fields are what the passes build (generated)', async (t) => {
  const fc = (await import('fast-check')).default;
  const { requestArb } = await import('../http1/request-arbitraries.js');
  const { RequestParser } = await import('../../../proxy/http1/request-parser.js');
  const { fuzzParameters } = await import('../../helpers/fuzz.js');
  const { fieldsPassUnchanged, forwardingFields } = await import('../../../proxy/exchange/request-headers.js');
  let passed = 0;
  let edited = 0;
  let problem = '';
  const params = fuzzParameters(400);
  const run = fc.check(
    fc.property(requestArb, fc.boolean(), (g, tls) => {
      const p = new RequestParser();
      p.push(g.bytes);
      const ev = p.next();
      if (ev?.kind !== 'head') return true;
      const head = ev.head;
      if (head.host === undefined) return true;
      const x: ForwardedRequest = { req: { headers: head.headers, host: head.host, remoteAddress: CLIENT, contentLength: head.contentLength }, authority: head.host, tls, edits: undefined };
      if (!fieldsPassUnchanged(x)) {
        edited++;
        return true;
      }
      passed++;
      if (head.rawFields === undefined) {
        problem = 'a head read in one piece has no rawFields';
        return false;
      }
      // What the pod reads from the raw lines (names as sent, values without OWS), then ours.
      const fromRaw: string[] = [];
      for (const line of head.rawFields.split('\r\n').slice(0, -1)) {
        const colon = line.indexOf(':');
        fromRaw.push(line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
      }
      const got = [...fromRaw, ...forwardingFields(x)];
      const want = upstreamHeaders(x);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        problem = `${JSON.stringify(got)} != ${JSON.stringify(want)}`;
        return false;
      }
      return true;
    }),
    params,
  );
  t.notOk(run.failed, run.failed ? `${problem}\n${fc.defaultReportMessage(run) ?? ''}` : `${passed} heads passed through, ${edited} edited (seed ${params.seed})`);
  t.ok(passed > 0 && edited > 0, `both kinds generated (${passed} passed, ${edited} edited)`);
});

t.test('fields that need an edit never pass unchanged', async (t) => {
  const { fieldsPassUnchanged } = await import('../../../proxy/exchange/request-headers.js');
  const base = ['Host', 'deathstar', 'Content-Length', '5'];
  const cases: [string, string[], Partial<{ authority: string; edits: readonly HeaderEdit[]; contentLength: number }>][] = [
    ['a Connection field', [...base, 'Connection', 'keep-alive'], {}],
    ['a field Connection could name', [...base, 'Keep-Alive', 'timeout=5'], {}],
    ['TE', [...base, 'TE', 'trailers'], {}],
    ['Expect', [...base, 'Expect', '100-continue'], {}],
    ['the client\'s X-Forwarded-For', [...base, 'X-Forwarded-For', '1.2.3.4'], {}],
    ['the client\'s X-Forwarded-Proto', [...base, 'x-forwarded-proto', 'https'], {}],
    ['two Content-Lengths', [...base, 'content-length', '5'], {}],
    ['a Content-Length with leading zeros', ['Host', 'deathstar', 'Content-Length', '05'], {}],
    ['a Host other than the routed authority', base, { authority: 'other' }],
    ['a policy edit', base, { edits: [{ op: 'add', name: 'x-a', value: '1' }] }],
  ];
  for (const [name, headers, over] of cases) {
    const x: ForwardedRequest = {
      req: { headers, host: 'deathstar', remoteAddress: CLIENT, contentLength: over.contentLength ?? 5 },
      authority: over.authority ?? 'deathstar',
      tls: false,
      edits: over.edits,
    };
    t.notOk(fieldsPassUnchanged(x), name);
  }
  t.ok(fieldsPassUnchanged({ req: { headers: base, host: 'deathstar', remoteAddress: CLIENT, contentLength: 5 }, authority: 'deathstar', tls: false, edits: undefined }), 'and plain fields do');
});
