import type { PolicyState } from '../policy/model.js';

/** Warming runs in slices this long between I/O turns, so requests keep flowing while it works. */
const WARM_SLICE_MS = 4;

/**
 * The one mutable reference the data path reads. A reload builds a complete new PolicyState off the
 * request path and swaps it here; a request reads `current` once and is judged by that revision only.
 * After a swap the new state's decision tables are warmed in small slices, so the first requests
 * after a reload rarely pay for building one: every pod identity's for the first revision, then
 * those whose tables requests used in the revision before.
 */
export class StateRef {
  #current: PolicyState | undefined;
  #listeners: ((s: PolicyState) => void)[] = [];

  get current(): PolicyState | undefined {
    return this.#current;
  }

  swap(next: PolicyState): void {
    // The first revision warms every pod identity; later ones only those the traffic used.
    const hot = this.#current?.hotSubjects?.();
    this.#current = next;
    for (const l of this.#listeners) l(next);
    if (next.warm !== undefined) setImmediate(() => this.#warm(next, hot));
  }

  #warm(state: PolicyState, hot: ReadonlySet<number> | undefined): void {
    // A newer swap supersedes this one: stop warming a state nobody will read.
    if (this.#current !== state) return;
    if (!state.warm!(performance.now() + WARM_SLICE_MS, hot)) setImmediate(() => this.#warm(state, hot));
  }

  onSwap(l: (s: PolicyState) => void): void {
    this.#listeners.push(l);
  }
}
