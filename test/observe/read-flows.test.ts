import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlows, parseFlowLine, readFlows, streamFlows, type FlowLineError } from '../../observe/read-flows.js';
import { toFlows } from '../../observe/flow.js';
import { serializeFlow } from '../../observe/flow-sink.js';
import { scenarios, uuidSeq } from './recorded-scenarios.js';

const lines = [...toFlows(scenarios.exhaustRequest, { uuid: uuidSeq() }), ...toFlows(scenarios.xwingDrop, { uuid: uuidSeq() })]
  .map((r) => serializeFlow(r));
const complete = lines.join('\n') + '\n';

t.test('complete file', async (t) => {
  const r = parseFlows(complete);
  t.equal(r.flows.length, 3);
  t.same(r.errors, []);
  t.equal(r.partial, undefined);
  t.equal(r.flows[0]?.flow.Summary, 'HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port');
});

t.test('partially written last line is not an error', async (t) => {
  const cut = complete + lines[0]!.slice(0, 40);
  const r = parseFlows(cut);
  t.equal(r.flows.length, 3);
  t.same(r.errors, []);
  t.equal(r.partial, lines[0]!.slice(0, 40));
});

t.test('unterminated but complete last line is accepted', async (t) => {
  const r = parseFlows(lines.join('\n'));
  t.equal(r.flows.length, 3);
  t.equal(r.partial, undefined);
});

t.test('malformed middle lines are skipped and reported; blank and CRLF lines tolerated', async (t) => {
  const text = [lines[0], '{not json', '', '[1,2]', '{"node_name":"x"}', lines[1]].join('\r\n') + '\r\n';
  const r = parseFlows(text);
  t.equal(r.flows.length, 2);
  t.same(r.errors.map((e) => e.line), [2, 4, 5]);
  t.match(r.errors[1]?.message, /not a JSON object/);
  t.match(r.errors[2]?.message, /no "flow" object/);
  t.throws(() => parseFlowLine('null'));
});

t.test('readFlows and streamFlows on disk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-read-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'flows.ndjson');
  writeFileSync(file, lines[0] + '\nbroken\n' + lines[1] + '\n' + lines[2]!.slice(0, 10));
  const r = await readFlows(file);
  t.equal(r.flows.length, 2);
  t.same(r.errors.map((e) => e.line), [2]);
  t.equal(r.partial, lines[2]!.slice(0, 10));

  const errs: FlowLineError[] = [];
  const streamed = [];
  for await (const f of streamFlows(file, (e) => errs.push(e))) streamed.push(f);
  t.same(streamed, r.flows);
  t.same(errs.map((e) => e.line), [2], 'the partial last line is not reported');
});
