import type { PolicyState } from '../policy/model.js';

/**
 * The one mutable reference the data path reads. A reload builds a complete new PolicyState off the
 * request path and swaps it here; a request reads `current` once and is judged by that revision only.
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
  }

  onSwap(l: (s: PolicyState) => void): void {
    this.#listeners.push(l);
  }
}
