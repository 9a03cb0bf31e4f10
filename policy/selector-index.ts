/**
 * Inverted label indexes that keep compile time near-linear in the policy size.
 *
 * Without them every table is (subjects × peers × rules): 10,000 rules over 1,000 identities took
 * ~3 s to compile. A label selector with an `In` requirement can only match identities that carry
 * one of its (key, value) pairs, so candidates come from a (key=value) -> identities map and are then
 * verified with the exact matcher; selectors without an `In` (entities, CIDRs, `{}`, NotIn-only)
 * fall back to scanning every identity. The indexes narrow, the matchers decide: results are exactly
 * those of the unindexed scan.
 */
import type { CompiledRule, Contribution } from './compile.js';
import { matchRequirements, peerMatches, type PeerIdentity, type Requirement } from './selector.js';

export class IdentityIndex {
  readonly all: readonly PeerIdentity[];
  readonly #byPair = new Map<string, PeerIdentity[]>();

  constructor(identities: readonly PeerIdentity[]) {
    this.all = identities;
    for (const id of identities) {
      for (const l of id.labelSet.labels) {
        // `${key}=${value}` of parseLabel(l), without its object: "source:key=value" -> "key=value".
        const colon = l.indexOf(':');
        const rest = colon > 0 ? l.slice(colon + 1) : l;
        const k = rest.includes('=') ? rest : `${rest}=`;
        const list = this.#byPair.get(k);
        if (list === undefined) this.#byPair.set(k, [id]);
        else if (list[list.length - 1] !== id) list.push(id);
      }
    }
  }

  /** A superset of the identities the requirements can match (source-agnostic, so never too small). */
  candidates(reqs: readonly Requirement[]): readonly PeerIdentity[] {
    let best: readonly PeerIdentity[] | undefined;
    for (const r of reqs) {
      if (r.op !== 'In') continue;
      let lists: PeerIdentity[][] = [];
      let size = 0;
      for (const v of r.values) {
        const l = this.#byPair.get(`${r.key}=${v}`);
        if (l !== undefined) {
          lists.push(l);
          size += l.length;
        }
      }
      if (best !== undefined && size >= best.length) continue;
      if (lists.length === 1) best = lists[0] as PeerIdentity[];
      else {
        const seen = new Set<PeerIdentity>();
        for (const l of lists) for (const id of l) seen.add(id);
        best = [...seen];
      }
      lists = [];
    }
    return best ?? this.all;
  }
}

/**
 * Which identities each contribution's peers match, computed once per identity set: states built
 * one after the other with the same identities share one (policy/state.ts), and contributions
 * outlive a build (compiled rules are reused), so the memo is weak: a contribution no rule holds
 * any more takes its entry with it.
 */
export class PeerMatches {
  readonly #index: IdentityIndex;
  readonly #clusterName: string;
  readonly #memo = new WeakMap<Contribution, ReadonlySet<number>>();

  constructor(index: IdentityIndex, clusterName: string) {
    this.#index = index;
    this.#clusterName = clusterName;
  }

  of(c: Contribution): ReadonlySet<number> {
    let s = this.#memo.get(c);
    if (s === undefined) {
      const ids = new Set<number>();
      for (const p of c.peers) {
        const cands = p.kind === 'labels' ? this.#index.candidates(p.reqs) : this.#index.all;
        for (const id of cands) if (!ids.has(id.id) && peerMatches(p, id, this.#clusterName)) ids.add(id.id);
      }
      s = ids;
      this.#memo.set(c, s);
    }
    return s;
  }
}

/** Rules grouped by the identities their endpointSelector selects, in rule order. */
export function rulesBySubject(rules: readonly CompiledRule[], index: IdentityIndex): Map<number, CompiledRule[]> {
  const out = new Map<number, CompiledRule[]>();
  for (const r of rules) {
    for (const id of index.candidates(r.spec.subject)) {
      if (!matchRequirements(r.spec.subject, id.labelSet)) continue;
      const list = out.get(id.id);
      if (list === undefined) out.set(id.id, [r]);
      else list.push(r);
    }
  }
  return out;
}
