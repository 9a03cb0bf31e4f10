import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowSink, serializeFlow, DEFAULT_CAPACITY } from '../../observe/flow-sink.js';
import { toFlows, type HubbleFlowResponse } from '../../observe/flow.js';
import { readFlows } from '../../observe/read-flows.js';
import { renderCompact } from '../../observe/compact.js';
import { newFlowRecord, type FlowEvent, type FlowRecord } from '../../observe/flow-event.js';
import type { RuleRef } from '../../policy/model.js';
import { scenarios, uuidSeq, podPeer, DEATHSTAR, DEATHSTAR_SVC, WORLD_ID } from './recorded-scenarios.js';

function tmp(tt: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-flows-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const all: FlowEvent[] = Object.values(scenarios);
const RULE: RuleRef = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', ruleIndex: 0, direction: 'INGRESS', field: 'spec.ingress[0]' };
/** Shapes beyond the Star Wars demo's: every optional key the schema must carry. */
const extra: FlowEvent[] = [
  { ...scenarios.landingRequest, source: { ip: '1.2.3.4', port: 5, identity: WORLD_ID, endpoint: undefined }, destination: podPeer(DEATHSTAR, 80, DEATHSTAR_SVC) },
  { ...scenarios.landingResponse, destination: podPeer(DEATHSTAR, 80, DEATHSTAR_SVC) },
  { ...scenarios.xwingDrop, dropReason: 'NO_SERVICE' },
  { ...scenarios.xwingDrop, dropReason: 'POLICY_DENY', direction: 'EGRESS' },
  { ...scenarios.exhaustResponse, verdict: 'ERROR', http: { ...scenarios.exhaustResponse.http, code: 503 } },
  // Audit mode and staged policies (docs/audit.md).
  { ...scenarios.xwingDrop, verdict: 'AUDIT' },
  { ...scenarios.exhaustRequest, verdict: 'AUDIT', by: [RULE] },
  { ...scenarios.landingRequest, verdict: 'AUDIT', staged: 'deny', by: [RULE] },
];

t.test('fast-json-stringify output equals JSON.stringify for every shape (schema is complete)', async (t) => {
  let n = 0;
  for (const ev of [...all, ...extra]) {
    for (const res of toFlows(ev, { clusterName: 'default', uuid: uuidSeq() })) {
      t.same(JSON.parse(serializeFlow(res)), JSON.parse(JSON.stringify(res)), res.flow.Summary ?? '');
      n++;
    }
  }
  t.ok(n >= 12);
  // The comparison can fail: a key the schema does not know is dropped by fast-json-stringify.
  const bogus = { ...toFlows(scenarios.landingRequest)[0], bogus: 1 } as unknown as HubbleFlowResponse;
  t.notSame(JSON.parse(serializeFlow(bogus)), JSON.parse(JSON.stringify(bogus)));
});

t.test('file output round-trips through read-flows', async (t) => {
  const file = join(tmp(t), 'flows.ndjson');
  const sink = new FlowSink({ file, uuid: uuidSeq() });
  for (const ev of all) sink.emit(ev);
  t.equal(existsSync(file) ? readFileSync(file, 'utf8') : '', '', 'nothing written synchronously by emit()');
  await sink.close();
  const text = readFileSync(file, 'utf8');
  const lines = text.trimEnd().split('\n');
  t.equal(lines.length, 6, '5 events, the drop yields 2 flows');
  t.ok(text.endsWith('\n'));
  const back = await readFlows(file);
  t.same(back.errors, []);
  t.equal(back.partial, undefined);
  t.same(back.flows, JSON.parse(JSON.stringify(sink.recent())), 'file == ring');
  t.match(renderCompact(back.flows[2]!), /http-request DROPPED \(HTTP\/1\.1 PUT /);
  t.same(sink.stats, { seen: 6, written: 6, dropped: 0 });

  await sink.close(); // idempotent
  sink.emit(scenarios.landingRequest);
  t.equal(sink.size, 7, 'ring still fed after close');
  await sink.flush();
  t.equal(readFileSync(file, 'utf8'), text, 'nothing appended after close');
});

t.test('appends to an existing file; flush() makes lines visible', async (t) => {
  const file = join(tmp(t), 'flows.ndjson');
  writeFileSync(file, '{"flow":{"Type":"L7"},"node_name":"old","time":"2025-01-01T00:00:00Z"}\n');
  const sink = new FlowSink({ file });
  t.teardown(() => sink.close());
  sink.emit(scenarios.exhaustRequest);
  await sink.flush();
  const back = await readFlows(file);
  t.equal(back.flows.length, 2);
  t.equal(back.flows[0]?.node_name, 'old');
  t.equal(back.flows[1]?.flow.verdict, 'DROPPED');
});

t.test('ring buffer bound', async (t) => {
  const sink = new FlowSink({ capacity: 3, uuid: uuidSeq() });
  t.equal(sink.capacity, 3);
  t.equal(new FlowSink().capacity, DEFAULT_CAPACITY);
  t.equal(DEFAULT_CAPACITY, 4096);
  t.same(sink.recent(), []);
  for (let i = 0; i < 5; i++) sink.emit({ ...scenarios.landingRequest, source: podPeer(scenarios.landingRequest.source.endpoint!, 40000 + i) });
  t.equal(sink.size, 3);
  t.same(sink.recent().map((r) => r.flow.l4?.TCP?.source_port), [40002, 40003, 40004], 'oldest first, oldest evicted');
  t.same(sink.recent(2).map((r) => r.flow.l4?.TCP?.source_port), [40003, 40004]);
  t.same(sink.recent(10).length, 3);
  t.equal(sink.stats.seen, 5);
  t.throws(() => new FlowSink({ capacity: -1 }), RangeError);
  t.throws(() => new FlowSink({ capacity: 1.5 }), RangeError);
  const none = new FlowSink({ capacity: 0 });
  t.equal(none.enabled, false, '--flow-buffer 0 and no file: nobody needs flows');
  none.emit(scenarios.landingRequest);
  t.same(none.recent(), []);
  const off = none.subscribe(() => undefined);
  t.equal(none.enabled, true, 'a follower turns flows on');
  off();
  t.equal(none.enabled, false);
});

/** The flat record the proxy fills for an event (the inverse of toFlowEvent). */
function asRecord(ev: FlowEvent): FlowRecord {
  const url = ev.http?.url ?? '';
  const slash = url.indexOf('/', 'http://'.length);
  return {
    timeMs: ev.timeMs, kind: ev.kind, verdict: ev.verdict, dropReason: ev.dropReason, direction: ev.direction,
    srcIp: ev.source.ip, srcPort: ev.source.port, srcIdentity: ev.source.identity, srcEndpoint: ev.source.endpoint,
    dstIp: ev.destination.ip, dstPort: ev.destination.port, dstIdentity: ev.destination.identity, dstEndpoint: ev.destination.endpoint,
    method: ev.http?.method ?? '', authority: url.slice('http://'.length, slash), path: url.slice(slash),
    http10: ev.http?.protocol === 'HTTP/1.0', code: ev.http?.code ?? 0,
    latencyNs: ev.http?.latencyNs === undefined ? -1 : Number(ev.http.latencyNs),
    revision: ev.revision, by: ev.by, nodeName: ev.nodeName, staged: ev.staged,
  };
}

t.test('record(): stored raw, converted on read to exactly what emit() converts eagerly', async (t) => {
  const recordedEvents = all.filter((ev) => ev.source.service === undefined && ev.destination.service === undefined && ev.http?.headers === undefined);
  t.ok(recordedEvents.length >= 4, 'recorded events without fields a record cannot carry');
  const eager = new FlowSink({ uuid: uuidSeq() });
  eager.subscribe(() => undefined); // a follower: emit converts at once
  const lazy = new FlowSink({ uuid: uuidSeq() });
  const scratch = newFlowRecord();
  for (const ev of recordedEvents) {
    eager.emit(ev);
    Object.assign(scratch, asRecord(ev));
    lazy.record(scratch);
  }
  Object.assign(scratch, newFlowRecord()); // the sink kept nothing of the scratch object
  t.equal(lazy.size, eager.size);
  t.equal(lazy.stats.seen, eager.stats.seen);
  const read = lazy.recent();
  t.same(read, eager.recent(), 'same flows, same order, same uuids');
  t.equal(lazy.recent()[0], read[0], 'a slot converts once: a second read is the same object');
  const small = new FlowSink({ capacity: 2 });
  for (const ev of recordedEvents) {
    Object.assign(scratch, asRecord(ev));
    small.record(scratch);
  }
  t.same(small.recent().map((r) => r.flow.Summary), eager.recent().slice(-2).map((r) => r.flow.Summary), 'a wrapped ring keeps the newest');
});

t.test('subscribers get every flow; a throwing subscriber is isolated', async (t) => {
  const errors: Error[] = [];
  const sink = new FlowSink({ onError: (e) => errors.push(e) });
  const got: string[] = [];
  sink.subscribe(() => { throw new Error('boom'); });
  const off = sink.subscribe((r) => got.push(renderCompact(r)));
  sink.emit(scenarios.xwingDrop);
  t.equal(got.length, 2);
  t.match(got[0], /policy-verdict:none INGRESS DENIED/);
  t.match(got[1], /Policy denied DROPPED/);
  t.equal(errors.length, 2);
  off();
  sink.emit(scenarios.landingRequest);
  t.equal(got.length, 2, 'unsubscribed');
  t.equal(sink.enabled, true);
});

t.test('unwritable file: errors reported, proxy unaffected, lines counted as dropped', async (t) => {
  const errors: Error[] = [];
  const sink = new FlowSink({ file: join(tmp(t), 'missing-dir', 'flows.ndjson'), onError: (e) => errors.push(e) });
  await new Promise((r) => setTimeout(r, 20)); // let the open fail
  sink.emit(scenarios.landingRequest);
  await sink.close();
  t.equal(errors.length, 1);
  t.match(errors[0]?.message ?? '', /ENOENT/);
  t.equal(sink.stats.dropped, 1, 'line for the failed file counted as dropped');
  t.equal(sink.size, 1);
});

t.test('backpressure bound drops instead of buffering forever', async (t) => {
  const file = join(tmp(t), 'flows.ndjson');
  const sink = new FlowSink({ file, maxBufferedBytes: -1 });
  sink.emit(scenarios.landingRequest);
  await sink.close();
  t.same(sink.stats, { seen: 1, written: 0, dropped: 1 });
});

t.test('sonic-boom bound: a batch that would exceed maxBufferedBytes is dropped and counted, later ones still written', async (t) => {
  const file = join(tmp(t), 'flows.ndjson');
  const sink = new FlowSink({ file, maxBufferedBytes: 3000 });
  t.teardown(() => sink.close());
  for (let i = 0; i < 10; i++) sink.emit(scenarios.landingRequest); // ~10 KiB in one event-loop turn
  await sink.flush();
  t.same(sink.stats, { seen: 10, written: 0, dropped: 10 }, 'the whole oversized batch dropped, nothing half-written');
  sink.emit(scenarios.exhaustRequest);
  await sink.flush();
  t.same(sink.stats, { seen: 11, written: 1, dropped: 10 });
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  t.equal(lines.length, 1);
  t.same(Object.keys(JSON.parse(lines[0]!) as object), ['flow', 'node_name', 'time'], 'pre-serialised line only: no pino level/time/pid/hostname');
});

t.test('a line reaches the file within ~100 ms without flush() (no 4 KiB minLength lag)', async (t) => {
  const file = join(tmp(t), 'flows.ndjson');
  const sink = new FlowSink({ file });
  t.teardown(() => sink.close());
  sink.emit(scenarios.exhaustRequest);
  // Polls (a loaded machine runs the 100 ms flush timer late, never early); a sink that waited for
  // 4 KiB or for flush() would never write this single line.
  const lines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  for (let i = 0; i < 300 && lines() === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(lines(), 1);
});
