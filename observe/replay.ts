/**
 * `policy replay` over a flow log: which flows are recorded decisions, what each recorded, what the
 * candidate (policy/replay.ts) decides instead, and the differences grouped by source, destination,
 * method and path. Which flows count, and how a recorded verdict reads: docs/cli.md#policy-replay.
 */
import { type RecordedPeer, type RecordedRequest, type Replayed, Replayer } from '../policy/replay.js';
import type { TraceEnd } from '../policy/trace.js';
import { MESSAGE_TYPE_POLICY_VERDICT, type HubbleEndpoint, type HubbleFlow, type HubbleFlowResponse } from './flow.js';

export type Change = 'newly-denied' | 'newly-allowed' | 'undecidable';

/** Flows of one (change, source, destination, port, method, path). */
export interface ReplayGroup {
  readonly change: Change;
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  /** '' for an L3/L4 flow. */
  readonly method: string;
  /** Without the query ('' for an L3/L4 flow). */
  readonly path: string;
  flows: number;
  /** What the first flow of the group recorded: FORWARDED, DROPPED, AUDIT (or REDIRECTED, an L3/L4 allow). */
  readonly recorded: string;
  /** The candidate's verdict for the first flow of the group. */
  readonly candidate: Replayed;
}

export interface ReplaySkipped {
  /** L7 responses: the request flow carries the decision. */
  responses: number;
  /** Flows of staged (audit-annotated) policies: they changed nothing in force. */
  staged: number;
  /** Drop notifications of a policy drop: its policy-verdict flow is replayed. */
  dropNotifications: number;
  /** Anything else: drops that are not policy (no backend, unknown address), errors, other kinds. */
  other: number;
}

export interface ReplayReport {
  /** Recorded decisions judged again. */
  decisions: number;
  unchanged: number;
  newlyDenied: number;
  newlyAllowed: number;
  undecidable: number;
  readonly skipped: ReplaySkipped;
  /** The policy revisions the flows name (in *_allowed_by / *_denied_by), ascending. */
  readonly recordedRevisions: number[];
  /** Differences and undecidable flows, in the order their first flow appeared. */
  readonly groups: ReplayGroup[];
}

/** What a flow records of one decision. */
interface Recorded {
  readonly flow: HubbleFlow;
  readonly denied: boolean;
  /** The recorded verdict as reports show it: AUDIT for a request whose L3/L4 verdict was audited. */
  readonly verdict: string;
  /** undefined: an L3/L4 flow. */
  readonly request: RecordedRequest | undefined;
  /** undefined: the flow cannot be judged, and why. */
  readonly problem: string | undefined;
}

const connection = (f: HubbleFlow) => `${f.IP?.source}|${f.l4?.TCP?.source_port}|${f.IP?.destination}|${f.l4?.TCP?.destination_port}`;

/** "http://host:port/path?query" -> host and path (query kept: rules match it); the URL as the proxy wrote it, not normalised again. */
export function splitUrl(url: string): { host: string; path: string } | undefined {
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (m === null) return undefined;
  const rest = m[2] as string;
  return { host: m[1] as string, path: rest === '' ? '/' : rest };
}

// A flow log is input: a hand-edited or foreign line may hold anything where a field should be.
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function requestOf(f: HubbleFlow): { request?: RecordedRequest; problem?: string } {
  const http = f.l7?.http;
  if (typeof http?.method !== 'string' || typeof http.url !== 'string') return { problem: 'the flow records no method or URL' };
  const u = splitUrl(http.url);
  if (u === undefined) return { problem: `the flow's URL ${JSON.stringify(http.url)} is not http://host/path` };
  return { request: { method: http.method, path: u.path, host: u.host === '' ? undefined : u.host, hostKnown: http.protocol !== 'HTTP/1.0' } };
}

/** The policy revisions a flow names (Hubble's Policy.revision, a uint64 as a string). */
function addRevisions(f: HubbleFlow, into: Set<number>): void {
  for (const list of [f.egress_allowed_by, f.ingress_allowed_by, f.egress_denied_by, f.ingress_denied_by] as unknown[]) {
    if (!Array.isArray(list)) continue;
    for (const p of list as { revision?: unknown }[]) if (typeof p?.revision === 'string') into.add(Number(p.revision));
  }
}

/** A flow's end as policy/replay.ts takes it. */
function peerOf(e: HubbleEndpoint | undefined, ip: unknown): RecordedPeer {
  const labels: unknown = e?.labels;
  return {
    namespace: text(e?.namespace),
    podName: text(e?.pod_name),
    labels: Array.isArray(labels) ? labels.filter((l): l is string => typeof l === 'string') : undefined,
    ip: text(ip),
  };
}

/** How a report names an end: `namespace/workload` (or the pod), else its labels, else its address. */
export function endName(e: HubbleEndpoint | undefined, p: RecordedPeer): string {
  if (p.podName !== undefined) return `${p.namespace ?? 'default'}/${text(e?.workloads?.[0]?.name) ?? p.podName}`;
  if (p.labels !== undefined && p.labels.length > 0) return p.labels.join(',');
  return p.ip ?? '?';
}

/**
 * Replays flows against the candidate. Feed every flow in file order to `add`, then call `finish`.
 * A policy-verdict AUDIT flow followed by an L7 request flow of the same connection is one
 * decision: the request's, which the policy in force would have denied at L3/L4.
 */
export class FlowReplay {
  readonly #replayer: Replayer;
  readonly #groups = new Map<string, ReplayGroup>();
  readonly #revisions = new Set<number>();
  /** Audited L3/L4 verdicts waiting for the request flow of their connection. */
  readonly #audited = new Map<string, HubbleFlow>();
  readonly report: ReplayReport = {
    decisions: 0, unchanged: 0, newlyDenied: 0, newlyAllowed: 0, undecidable: 0,
    skipped: { responses: 0, staged: 0, dropNotifications: 0, other: 0 },
    recordedRevisions: [],
    groups: [],
  };

  constructor(replayer: Replayer) {
    this.#replayer = replayer;
  }

  add(res: HubbleFlowResponse): void {
    const f = res.flow;
    const skipped = this.report.skipped;
    addRevisions(f, this.#revisions);
    if ((f as { staged?: unknown }).staged === true) {
      skipped.staged++;
      return;
    }
    if (f.Type === 'L7') {
      if (f.l7?.type !== 'REQUEST' || f.is_reply === true) {
        skipped.responses += f.l7?.type === 'RESPONSE' ? 1 : 0;
        skipped.other += f.l7?.type === 'RESPONSE' ? 0 : 1;
        return;
      }
      if (f.verdict !== 'FORWARDED' && f.verdict !== 'DROPPED' && f.verdict !== 'AUDIT') {
        skipped.other++;
        return;
      }
      const audited = this.#audited.get(connection(f));
      if (audited !== undefined) this.#audited.delete(connection(f));
      const { request, problem } = requestOf(f);
      this.#judge({ flow: f, denied: audited !== undefined || f.verdict !== 'FORWARDED', verdict: audited !== undefined ? 'AUDIT' : f.verdict, request, problem });
      return;
    }
    if (f.Type === 'L3_L4' && f.event_type?.type === MESSAGE_TYPE_POLICY_VERDICT) {
      if (f.verdict === 'AUDIT') this.#audited.set(connection(f), f);
      else if (f.verdict === 'DROPPED' || f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED') this.#judge({ flow: f, denied: f.verdict === 'DROPPED', verdict: f.verdict, request: undefined, problem: undefined });
      else skipped.other++;
      return;
    }
    const policyDrop = f.drop_reason_desc === 'POLICY_DENIED' || f.drop_reason_desc === 'POLICY_DENY';
    if (f.Type === 'L3_L4' && policyDrop) skipped.dropNotifications++;
    else skipped.other++;
  }

  finish(): ReplayReport {
    for (const f of this.#audited.values()) this.#judge({ flow: f, denied: true, verdict: 'AUDIT', request: undefined, problem: undefined });
    this.#audited.clear();
    this.report.recordedRevisions.push(...[...this.#revisions].sort((a, b) => a - b));
    return this.report;
  }

  #judge(r: Recorded): void {
    const f = r.flow;
    this.report.decisions++;
    const srcPeer = peerOf(f.source, f.IP?.source);
    const src = this.#replayer.end(srcPeer);
    const dstPeer = peerOf(f.destination, f.IP?.destination);
    const dst = dstPeer.podName === undefined ? undefined : this.#replayer.end(dstPeer);
    const port: unknown = f.l4?.TCP?.destination_port;
    const problem = r.problem ?? unjudgeable(src, dst, port);
    const now: Replayed = problem !== undefined
      ? { verdict: 'UNDECIDABLE', why: problem, headers: [], by: [] }
      : this.#replayer.judge(src as TraceEnd, dst as TraceEnd, port as number, r.request);
    let change: Change;
    // An L3/L4 verdict let through, and the candidate lets it through at L3/L4 too (its undecidable
    // verdicts all do): the request flows of that connection carry the HTTP rules' verdicts.
    const passedL3L4 = problem === undefined && r.request === undefined && !r.denied && now.verdict === 'UNDECIDABLE';
    if (passedL3L4 || (now.verdict !== 'UNDECIDABLE' && (now.verdict === 'DENIED') === r.denied)) {
      this.report.unchanged++;
      return;
    }
    if (now.verdict === 'UNDECIDABLE') {
      change = 'undecidable';
      this.report.undecidable++;
    } else if (now.verdict === 'DENIED') {
      change = 'newly-denied';
      this.report.newlyDenied++;
    } else {
      change = 'newly-allowed';
      this.report.newlyAllowed++;
    }
    const source = endName(f.source, srcPeer);
    const destination = endName(f.destination, dstPeer);
    const method = r.request?.method ?? '';
    const path = r.request === undefined ? '' : r.request.path.split('?')[0] as string;
    const tcpPort = typeof port === 'number' ? port : 0;
    const key = JSON.stringify([change, source, destination, tcpPort, method, path]);
    const g = this.#groups.get(key);
    if (g !== undefined) {
      g.flows++;
      return;
    }
    const group: ReplayGroup = { change, source, destination, port: tcpPort, method, path, flows: 1, recorded: r.verdict, candidate: now };
    this.#groups.set(key, group);
    this.report.groups.push(group);
  }
}

function unjudgeable(src: TraceEnd | undefined, dst: TraceEnd | undefined, port: unknown): string | undefined {
  if (src === undefined) return 'the flow names no source labels or address';
  if (dst === undefined) return 'the flow names no destination pod';
  if (port === undefined) return 'the flow records no destination port';
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return `the flow's destination port ${JSON.stringify(port)} is not a TCP port`;
  return undefined;
}

