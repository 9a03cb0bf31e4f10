/**
 * A build written once as a generator, run two ways: to completion (the CLI, startup, tests) or in
 * slices that give the event loop back (a reload while requests are being served). Each `yield`
 * marks a point where stopping is safe; nothing is published until the generator returns.
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs the steps at once. */
export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * Runs the steps, returning to the event loop whenever `sliceMs` have passed: requests keep being
 * served while a large policy compiles (Envoy compiles on its main thread while workers serve; Node
 * has one thread for both). setImmediate, not a timer: the loop polls I/O once and comes back.
 */
export async function runSliced<T>(steps: Steps<T>, sliceMs: number): Promise<T> {
  let deadline = performance.now() + sliceMs;
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    if (performance.now() >= deadline) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      deadline = performance.now() + sliceMs;
    }
  }
}

/** How many objects or rules go between two yields: a yield costs far less than one item. */
export const ITEMS_PER_STEP = 32;
