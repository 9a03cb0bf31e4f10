import type { PolicyState } from '../policy/model.js';

/** Warming runs in slices this long between I/O turns, so requests keep flowing while it works. */
const WARM_SLICE_MS = 4;

/**
 * The one mutable reference the data path reads. A reload builds a complete new PolicyState off the
 * request path and swaps it here; a request reads `current` once and is judged by that revision only.
 * After a swap the new state's decision tables are warmed in small slices, so the first requests
 * after a reload rarely pay for building one.
 */
export class StateRef {
  #current: PolicyState | undefined;
  #listeners: ((s: PolicyState) => void)[] = [];

  get current(): PolicyState | undefined {
    return this.#current;
  }

  swap(next: PolicyState): void {
    this.#current = next;
    for (const l of this.#listeners) l(next);
    if (next.warm !== undefined) setImmediate(() => this.#warm(next));
  }

  #warm(state: PolicyState): void {
    // A newer swap supersedes this one: stop warming a state nobody will read.
    if (this.#current !== state) return;
    if (!state.warm!(performance.now() + WARM_SLICE_MS)) setImmediate(() => this.#warm(state));
  }

  onSwap(l: (s: PolicyState) => void): void {
    this.#listeners.push(l);
  }
}
