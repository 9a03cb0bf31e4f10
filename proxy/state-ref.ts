import type { PolicyState } from '../policy/model.js';

/** Warming runs in slices this long between I/O turns, so requests keep flowing while it works. */
const WARM_SLICE_MS = 4;

/**
 * The one mutable reference the data path reads. A reload builds a complete new PolicyState off the
 * request path and swaps it here; a request reads `current` once and is judged by that revision only.
 * After a swap the new state's decision tables are warmed in small slices, so the first requests
 * after a reload rarely pay for building one: every pod identity's for the first revision, then
 * those whose tables requests used since (warming all of a 10,000-rule policy cost ~100 ms of CPU per
 * reload, mostly for identities with no traffic through this node).
 */
export class StateRef {
  #current: PolicyState | undefined;
  #listeners: ((s: PolicyState) => void)[] = [];

  get current(): PolicyState | undefined {
    return this.#current;
  }

  /** What the current revision was asked to warm (undefined: everything). */
  #hot: ReadonlySet<number> | undefined;

  swap(next: PolicyState): void {
    // The first revision warms every pod identity; later ones those the traffic used in the one
    // before, plus what that one warmed: a revision replaced before any request came (a reload
    // storm) must not make the next one forget.
    let hot: Set<number> | undefined;
    const used = this.#current?.hotSubjects?.();
    if (used !== undefined) {
      hot = new Set(used);
      for (const id of this.#hot ?? []) hot.add(id);
    }
    this.#hot = hot;
    this.#current = next;
    for (const l of this.#listeners) l(next);
    if (next.warm !== undefined) setImmediate(() => this.#warm(next, hot, 0));
  }

  /** `next` itself, then its staged policies' candidates (docs/audit.md), each judged per request too. */
  #warm(state: PolicyState, hot: ReadonlySet<number> | undefined, part: number): void {
    // A newer swap supersedes this one: stop warming a state nobody will read.
    if (this.#current !== state) return;
    const target = part === 0 ? state : state.staged?.[part - 1]?.state;
    if (target?.warm === undefined) return;
    const done = target.warm(performance.now() + WARM_SLICE_MS, hot);
    setImmediate(() => this.#warm(state, hot, done ? part + 1 : part));
  }

  onSwap(l: (s: PolicyState) => void): void {
    this.#listeners.push(l);
  }
}
