// What the front end accepts, the pod receives in a form it accepts. Generated well-formed requests
// (every framing and spelling RFC 9112 allows: Content-Length repeated or as a list, leading zeros,
// chunked in any case with extensions and trailers, HTTP/1.0, OWS, obs-text) go through a real
// `l7guard serve` to a real node:http backend (llhttp, the parser undici uses), and each must reach it
// with the same method, path, fields and body, framed by exactly one Content-Length or by chunked —
// never a 502 because the upstream client refused what the front end let in.
import t from 'tap';
import fc from 'fast-check';
import { deathstarPolicy } from '../../../fixtures/star-wars.js';
import { hasCompleteResponse } from '../../helpers/net.js';
import net from 'node:net';
import { METHODS } from 'node:http';
import { guarded, HOST, responses, request } from '../../security/harness.js';
import { RequestParser } from '../../../proxy/http1/request-parser.js';
import { requestArb, streamArb, type GeneratedRequest } from '../http1/request-arbitraries.js';
import { fuzzParameters } from '../../helpers/fuzz.js';

const PORT = 18124;

/** The fields of `rawHeaders` named `name` (any case), in order. */
function valuesOf(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]!);
  return out;
}

t.test('duplicate Content-Length: one field reaches the pod, the body intact, no 502', async (t) => {
  const g = await guarded(t, { port: PORT, policy: deathstarPolicy(PORT) });
  const cases: [string, string][] = [
    ['two identical fields', 'Content-Length: 5\r\nContent-Length: 5\r\n'],
    ['a list of the same value', 'Content-Length: 5, 5\r\n'],
    ['a list and a field', 'Content-Length: 5,5\r\ncontent-length: 05\r\n'],
    // RFC 9110 §7.6.1: an end-to-end field named as a connection option is the sender's error; it stays.
    ['Connection naming Content-Length', 'Connection: content-length\r\nContent-Length: 5\r\n'],
    ['Connection naming Host', 'Connection: host, Content-Length\r\nContent-Length: 5\r\n'],
  ];
  for (const [name, lines] of cases) {
    const before = g.journal.length;
    const r = await g.send(request('POST', '/v1/request-landing', lines) + 'hello', { until: hasCompleteResponse });
    t.equal(responses(r.text)[0]?.status, 200, `${name}: answered by the pod`);
    const seen = g.journal.slice(before);
    t.equal(seen.length, 1, `${name}: one request reached the pod`);
    t.same(valuesOf(seen[0]?.rawHeaders ?? [], 'content-length'), ['5'], `${name}: one Content-Length`);
    t.equal(seen[0]?.body.toString(), 'hello', `${name}: the body`);
    t.same(valuesOf(seen[0]?.rawHeaders ?? [], 'host'), [HOST], `${name}: the routed Host`);
  }
  const r = await g.send(request('POST', '/v1/request-landing', 'Content-Length: 5\r\nContent-Length: 6\r\n') + 'hello!', { until: hasCompleteResponse });
  t.equal(responses(r.text)[0]?.status, 400, 'differing values: 400');
});

t.test('generated requests the front end accepts reach the pod as sent (seeded)', async (t) => {
  const g = await guarded(t, { port: PORT + 1, policy: deathstarPolicy(PORT + 1) });
  let lastProblem = '';
  const check = async (req: GeneratedRequest): Promise<boolean> => {
    const before = g.journal.length;
    const r = await g.send(req.bytes, { until: hasCompleteResponse, idleMs: 2000 });
    const status = responses(r.text)[0]?.status;
    const seen = g.journal.slice(before);
    const problem = ((): string | undefined => {
      if (status !== 200) return `answered ${String(status)}: ${r.text.slice(0, 120)}`;
      if (seen.length !== 1) return `${seen.length} requests reached the pod`;
      const got = seen[0]!;
      if (got.method !== req.method) return `method ${got.method}`;
      if (got.url !== req.path) return `path ${got.url}`;
      if (!got.body.equals(req.body)) return `body ${JSON.stringify(got.body.toString('latin1'))}`;
      const lengths = valuesOf(got.rawHeaders, 'content-length');
      const te = valuesOf(got.rawHeaders, 'transfer-encoding');
      if (lengths.length > 1 || (lengths.length === 1 && te.length > 0)) return `framing ${JSON.stringify({ lengths, te })}`;
      if (lengths.length === 1 && lengths[0] !== String(req.body.length)) return `content-length ${lengths[0]}`;
      for (const [name, value] of req.fields) {
        if (!valuesOf(got.rawHeaders, name).includes(value)) return `field ${name}: ${JSON.stringify(value)} missing`;
      }
      return undefined;
    })();
    if (problem !== undefined) lastProblem = problem;
    return problem === undefined;
  };
  const params = fuzzParameters(60);
  const run = await fc.check(fc.asyncProperty(requestArb, check), params);
  t.notOk(run.failed, run.failed ? `${lastProblem}\n${fc.defaultReportMessage(run) ?? ''}` : `${run.numRuns} requests forwarded as sent (seed ${params.seed})`);
});

/** Writes `bytes`, half-closes (the front end serves what is complete, then closes), and collects the answer. */
function sendAndFinish(from: string, to: string, port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host: to, port, localAddress: from }, () => sock.end(bytes));
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** What the front end answers itself when it refuses a request; anything else must come from the pod. */
const REFUSALS = new Set([400, 408, 413, 414, 421, 431, 501, 505]);

/**
 * A method node:http (llhttp) does not know: the front end forwards any RFC 9110 token (§9.1), so
 * such a pod answers 400 itself (docs/hardening.md#fuzzing-the-parsers).
 */
function unknownMethod(bytes: Buffer): boolean {
  const p = new RequestParser();
  p.push(bytes);
  try {
    for (let ev = p.next(); ev !== null; ev = p.next()) if (ev.kind === 'head' && !METHODS.includes(ev.head.method)) return true;
  } catch {
    // the heads before the error are the ones forwarded
  }
  return false;
}

t.test('mutated pipelined streams: a request is refused by the front end or answered by the pod, never a 5xx (seeded)', async (t) => {
  const g = await guarded(t, { port: PORT + 2, policy: deathstarPolicy(PORT + 2) });
  let lastProblem = '';
  const check = async (bytes: Buffer): Promise<boolean> => {
    const before = g.journal.length;
    const text = await sendAndFinish(g.ips.tiefighter, g.s.host, g.s.port, bytes);
    const interim = responses(text).filter((r) => r.status === 100);
    const answered = responses(text).filter((r) => r.status !== 100);
    const reached = g.journal.length - before;
    const fromPod = answered.filter((r) => r.status === 200).length;
    const problem = ((): string | undefined => {
      for (const r of answered) {
        // A 400 the pod wrote (llhttp refusing what l7guard forwarded) has none of the front end's bodies.
        const ours = /\r\ncontent-type: text\/plain/i.test(r.head) && /^[A-Z][A-Za-z ]+(\r\n)?$/.test(r.body);
        if (r.status === 400 && !ours && unknownMethod(bytes)) continue;
        if (r.status !== 200 && !(REFUSALS.has(r.status) && ours)) return `answered ${r.status}: ${JSON.stringify(r.head + '\r\n\r\n' + r.body)}`;
      }
      if (interim.length > 0 && !/content-length: *[1-9]|transfer-encoding/i.test(bytes.toString('latin1'))) return 'a 100 Continue for a request without content';
      if (fromPod !== reached) return `${reached} requests reached the pod, ${fromPod} answers came from it`;
      return undefined;
    })();
    if (problem !== undefined) lastProblem = `${problem}\n  stream: ${JSON.stringify(bytes.toString('latin1'))}`;
    return problem === undefined;
  };
  const params = fuzzParameters(60);
  const run = await fc.check(fc.asyncProperty(streamArb, check), params);
  t.notOk(run.failed, run.failed ? `${lastProblem}\n${fc.defaultReportMessage(run) ?? ''}` : `${run.numRuns} streams (seed ${params.seed}): ${g.journal.length} requests reached the pod`);
});
