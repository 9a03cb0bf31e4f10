/**
 * The ring buffer behind `/flows`: the last N flows, stored so that keeping them costs the data
 * path (almost) nothing.
 *
 * Measured (bench `denied`, 25k req/s): converting every decision to Hubble JSON objects on the
 * way in cost ~10% of the proxy's CPU directly and most of a 32% GC share, because each request's
 * ~15 objects lived long enough (4096 slots ≈ 80 ms) to be promoted and then died in old space.
 * So a slot is a row across columns: numbers in typed arrays, everything else a reference to a
 * string or object the request already had (method, path, peer address, endpoint, identity, the
 * decision's shared provenance array). Recording allocates nothing; a slot becomes a FlowEvent
 * and then a Hubble flow only when read, and the converted flow is cached in the slot so two
 * reads of the same flow agree (same uuid).
 *
 * A policy drop is two flows (policy-verdict + drop, see toFlows): two slots of the same row data,
 * told apart by `part`. Slots may instead hold a ready FlowEvent (`push`, for callers that have
 * one) or an already converted flow (`pushFlow`, when a file writer or follower converted it).
 */
import type { FlowEvent, FlowRecord } from './flow-event.js';
import { toFlowEvent } from './flow-event.js';
import { flowCount, toFlowAt, type FlowOptions, type HubbleFlowResponse } from './flow.js';

const KIND = ['http-request', 'http-response', 'drop'] as const;
const KIND_CODE = { 'http-request': 0, 'http-response': 1, drop: 2 } as const;
const VERDICT = ['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT'] as const;
const VERDICT_CODE = { FORWARDED: 0, DROPPED: 1, ERROR: 2, AUDIT: 3 } as const;
const STAGED = [undefined, 'deny', 'allow'] as const;
const STAGED_CODE = { deny: 64, allow: 128 } as const;

/** Slot sources (0: never written). */
const ROW = 1;
const EVENT = 2;
const FLOW = 3;

export class FlowRing {
  readonly capacity: number;
  #head = 0; // next slot to write
  #count = 0;
  readonly #src: Uint8Array;
  readonly #part: Uint8Array;
  readonly #flow: (HubbleFlowResponse | undefined)[];
  readonly #event: (FlowEvent | undefined)[];
  // Row columns (src === ROW).
  readonly #num: Float64Array; // timeMs, latencyNs, srcPort, dstPort, code, revision
  readonly #kind: Uint8Array; // kind | verdict << 2 | ingress/egress << 4 | http10 << 5 | staged << 6
  readonly #ref: unknown[]; // dropReason, srcIp, srcIdentity, srcEndpoint, dstIp, dstIdentity, dstEndpoint, method, authority, path, by, nodeName

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#src = new Uint8Array(capacity);
    this.#part = new Uint8Array(capacity);
    this.#flow = new Array<HubbleFlowResponse | undefined>(capacity);
    this.#event = new Array<FlowEvent | undefined>(capacity);
    this.#num = new Float64Array(capacity * 6);
    this.#kind = new Uint8Array(capacity);
    this.#ref = new Array<unknown>(capacity * 12);
  }

  get size(): number {
    return this.#count;
  }

  /** Hot path: copies the record's fields into the next slot(s). */
  record(r: FlowRecord): void {
    const parts = flowCount(r);
    for (let part = 0; part < parts; part++) {
      const i = this.#next(ROW, part);
      const n = i * 6;
      const num = this.#num;
      num[n] = r.timeMs;
      num[n + 1] = r.latencyNs;
      num[n + 2] = r.srcPort;
      num[n + 3] = r.dstPort;
      num[n + 4] = r.code;
      num[n + 5] = r.revision;
      this.#kind[i] = KIND_CODE[r.kind] | (VERDICT_CODE[r.verdict] << 2) | (r.direction === 'EGRESS' ? 16 : 0) | (r.http10 ? 32 : 0)
        | (r.staged === undefined ? 0 : STAGED_CODE[r.staged]);
      const f = i * 12;
      const ref = this.#ref;
      ref[f] = r.dropReason;
      ref[f + 1] = r.srcIp;
      ref[f + 2] = r.srcIdentity;
      ref[f + 3] = r.srcEndpoint;
      ref[f + 4] = r.dstIp;
      ref[f + 5] = r.dstIdentity;
      ref[f + 6] = r.dstEndpoint;
      ref[f + 7] = r.method;
      ref[f + 8] = r.authority;
      ref[f + 9] = r.path;
      ref[f + 10] = r.by;
      ref[f + 11] = r.nodeName;
    }
  }

  /** A ready FlowEvent, converted on read. */
  push(ev: FlowEvent): void {
    const parts = flowCount(ev);
    for (let part = 0; part < parts; part++) this.#event[this.#next(EVENT, part)] = ev;
  }

  /** An already converted flow. */
  pushFlow(res: HubbleFlowResponse): void {
    this.#flow[this.#next(FLOW, 0)] = res;
  }

  /** The most recent flows, oldest first (at most `limit`), converted (once per slot) as needed. */
  recent(limit: number, opts: FlowOptions): HubbleFlowResponse[] {
    const n = Math.max(0, Math.min(limit, this.#count));
    const cap = this.capacity;
    const out = new Array<HubbleFlowResponse>(n);
    let idx = (this.#head - n + cap) % cap;
    for (let k = 0; k < n; k++) {
      out[k] = this.#flow[idx] ?? this.#convert(idx, opts);
      idx = idx + 1 === cap ? 0 : idx + 1;
    }
    return out;
  }

  #next(src: number, part: number): number {
    const i = this.#head;
    const cap = this.capacity;
    this.#head = i + 1 === cap ? 0 : i + 1;
    if (this.#count < cap) this.#count++;
    // Drop the previous occupant's references so they can be collected (a new row overwrites them all).
    const prev = this.#src[i];
    if (prev === EVENT && src !== EVENT) this.#event[i] = undefined;
    else if (prev === ROW && src !== ROW) this.#ref.fill(undefined, i * 12, i * 12 + 12);
    if (src !== FLOW && this.#flow[i] !== undefined) this.#flow[i] = undefined;
    this.#src[i] = src;
    this.#part[i] = part;
    return i;
  }

  #convert(i: number, opts: FlowOptions): HubbleFlowResponse {
    const src = this.#src[i];
    const ev = src === EVENT ? this.#event[i]! : src === ROW ? this.#row(i) : undefined;
    if (ev === undefined) throw new Error(`flow ring slot ${i} is empty`); // count says otherwise: a bug
    const res = toFlowAt(ev, this.#part[i]!, opts);
    this.#flow[i] = res;
    return res;
  }

  #row(i: number): FlowEvent {
    const n = i * 6;
    const num = this.#num;
    const f = i * 12;
    const ref = this.#ref;
    const bits = this.#kind[i]!;
    return toFlowEvent({
      timeMs: num[n]!,
      latencyNs: num[n + 1]!,
      srcPort: num[n + 2]!,
      dstPort: num[n + 3]!,
      code: num[n + 4]!,
      revision: num[n + 5]!,
      kind: KIND[bits & 3]!,
      verdict: VERDICT[(bits >> 2) & 3]!,
      direction: bits & 16 ? 'EGRESS' : 'INGRESS',
      http10: (bits & 32) !== 0,
      dropReason: ref[f] as FlowRecord['dropReason'],
      srcIp: ref[f + 1] as string,
      srcIdentity: ref[f + 2] as FlowRecord['srcIdentity'],
      srcEndpoint: ref[f + 3] as FlowRecord['srcEndpoint'],
      dstIp: ref[f + 4] as string,
      dstIdentity: ref[f + 5] as FlowRecord['dstIdentity'],
      dstEndpoint: ref[f + 6] as FlowRecord['dstEndpoint'],
      method: ref[f + 7] as string,
      authority: ref[f + 8] as string,
      path: ref[f + 9] as string,
      by: ref[f + 10] as FlowRecord['by'],
      nodeName: ref[f + 11] as string,
      staged: STAGED[bits >> 6],
    });
  }
}
