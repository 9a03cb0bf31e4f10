/**
 * `policy replay`'s judge: the verdict a candidate state gives a recorded decision, from what a flow
 * records of it (both ends, the destination port and, for an L7 request, method, path and host),
 * or why that cannot be known. It runs trace()'s procedure (policy/trace.ts), so it can judge ends
 * the candidate does not know: an identity is its label set.
 */
import { httpRulesOf } from './compile.js';
import { judgeRecorded, type RecordedRequest } from './http-rule.js';
import type { DropReason, Endpoint, Identity, PolicyState, PortDecision, RuleRef } from './model.js';
import { isPodLabels, type Sides, traceSides, type TraceEnd } from './trace.js';

export type { RecordedRequest } from './http-rule.js';

export type Replayed =
  | { readonly verdict: 'ALLOWED'; readonly by: readonly RuleRef[] }
  | {
      readonly verdict: 'DENIED';
      readonly layer: 'L3/L4' | 'L7';
      readonly reason: DropReason | 'L7_DENIED';
      readonly direction: 'INGRESS' | 'EGRESS';
      /** The deny rules, or the rules whose HTTP rules the request matches none of; empty = no rule selected this peer. */
      readonly by: readonly RuleRef[];
    }
  /** Always allowed at L3/L4 by both directions: only HTTP rules are left undecided. */
  | {
      readonly verdict: 'UNDECIDABLE';
      readonly why: string;
      /** Lower-case header names the decision depends on ("host" for an HTTP/1.0 request's Host field). */
      readonly headers: readonly string[];
      readonly by: readonly RuleRef[];
    };

/** One end of a recorded flow, as the flow names it. */
export interface RecordedPeer {
  readonly namespace?: string | undefined;
  readonly podName?: string | undefined;
  readonly labels?: readonly string[] | undefined;
  readonly ip?: string | undefined;
}

const NOT_RECORDED = 'an L3/L4 flow records no HTTP request, and HTTP rules would judge it';
const HEADERS = 'the decision depends on header fields a flow does not record';

/**
 * Judges recorded decisions against one candidate state. Both directions' decisions are kept per
 * (source labels, destination labels, port): a flow log repeats the same few pairs.
 */
export class Replayer {
  readonly #state: PolicyState;
  readonly #pods = new Map<string, Endpoint>();
  readonly #byLabels = new Map<string, Identity>();
  readonly #sides = new Map<string, Sides>();

  constructor(state: PolicyState) {
    this.#state = state;
    for (const e of state.endpoints) this.#pods.set(`${e.namespace}/${e.name}`, e);
    for (const i of state.identities.values()) this.#byLabels.set(i.labels.join(','), i);
  }

  /**
   * A recorded end as the candidate sees it (docs/cli.md#policy-replay):
   * - a pod the candidate has (same namespace and name): the candidate's labels for it;
   * - a pod it lacks: the labels the flow recorded;
   * - no pod, and the flow says world (or a CIDR): the candidate's identity for the address, so its
   *   own CIDR rules apply; any other non-pod labels (host, remote-node…): those labels.
   * undefined when the flow names neither labels nor an address.
   */
  end(p: RecordedPeer): TraceEnd | undefined {
    if (p.podName !== undefined && p.namespace !== undefined) {
      const ep = this.#pods.get(`${p.namespace}/${p.podName}`);
      if (ep !== undefined) return { labels: ep.identity.labels, identity: ep.identity.id, pod: `${ep.namespace}/${ep.name}`, isPod: true };
    }
    const labels = p.labels ?? [];
    const outside = p.podName === undefined && (labels.length === 0 || labels.some((l) => l === 'reserved:world' || l.startsWith('cidr:')));
    if (outside && p.ip !== undefined) {
      const id = this.#state.identify(p.ip).identity;
      return this.#fromLabels(id.labels, undefined);
    }
    if (labels.length === 0) return undefined;
    return this.#fromLabels([...labels].sort(), p.podName === undefined ? undefined : `${p.namespace ?? 'default'}/${p.podName}`);
  }

  #fromLabels(labels: readonly string[], pod: string | undefined): TraceEnd {
    return { labels, identity: this.#byLabels.get(labels.join(','))?.id, pod, isPod: isPodLabels(labels) };
  }

  /** The candidate's verdict; `req` undefined for an L3/L4 flow. */
  judge(src: TraceEnd, dst: TraceEnd, port: number, req: RecordedRequest | undefined): Replayed {
    const key = `${src.labels.join(',')}|${dst.labels.join(',')}|${port}`;
    let sides = this.#sides.get(key);
    if (sides === undefined) {
      sides = traceSides(this.#state, src, dst, port);
      this.#sides.set(key, sides);
    }
    if (sides.hostAllowed) return { verdict: 'ALLOWED', by: [] };
    for (const side of [sides.egress, sides.ingress]) {
      const d = side.decision;
      if (d.kind === 'drop') return { verdict: 'DENIED', layer: 'L3/L4', reason: d.reason, direction: d.direction, by: d.by ?? [] };
    }
    const l7 = [sides.egress, sides.ingress].filter((s) => s.decision.kind === 'l7');
    const by = [...sides.egress.trace.by, ...sides.ingress.trace.by];
    if (l7.length === 0) return { verdict: 'ALLOWED', by };
    if (req === undefined) return { verdict: 'UNDECIDABLE', why: NOT_RECORDED, headers: [], by };
    const needs = new Set<string>();
    for (const side of l7) {
      const out = judgeRecorded(rulesOf(side.decision), req);
      if (out.allowed === false) return { verdict: 'DENIED', layer: 'L7', reason: 'L7_DENIED', direction: side.trace.direction, by: side.trace.by };
      for (const n of out.needs ?? []) needs.add(n);
    }
    if (needs.size > 0) return { verdict: 'UNDECIDABLE', why: HEADERS, headers: [...needs].sort(), by };
    return { verdict: 'ALLOWED', by };
  }
}

function rulesOf(d: PortDecision) {
  const rules = httpRulesOf(d);
  // Every L7 decision comes from L7DecisionCache.get, which records its rules.
  if (rules === undefined) throw new Error('an L7 decision without its HTTP rules');
  return rules;
}
