/**
 * Connection timeouts without a timer per connection: one queue per duration (header, idle, linger,
 * whole request), shared by every connection of a front end, with one unref'd Node timer each.
 *
 * Every entry of a queue has the same duration, so appending keeps it sorted by deadline (Node's
 * own timer lists rely on the same fact); arming is an O(1) unlink + append on fields of the
 * connection itself (intrusive list: no allocation), and expiry pops from the head. Measured on
 * the idle bench (10,000 keep-alive connections): a Timeout and its closure per connection were
 * ~180 B of heap each, and a setTimeout/clearTimeout pair per request on the allowed path.
 *
 * Expiry fires no earlier than the deadline and at most `slackMs` after it: the timer is re-armed
 * for the head's deadline only when that is more than `slackMs` away from the current firing time,
 * so a busy queue does not re-arm per request.
 */

/** What a queue entry carries (fields of the connection; touched only by DeadlineQueue). */
export interface DeadlineEntry {
  deadlinePrev: DeadlineEntry | undefined;
  deadlineNext: DeadlineEntry | undefined;
  deadlineAt: number;
  deadlineQueue: DeadlineQueue | undefined;
  /** Called once when the deadline passed while still queued (already unlinked). */
  deadlineExpired(queue: DeadlineQueue): void;
}

export class DeadlineQueue {
  readonly ms: number;
  readonly #slackMs: number;
  #head: DeadlineEntry | undefined;
  #tail: DeadlineEntry | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (performance.now() ms). */
  #fireAt = 0;

  constructor(ms: number, slackMs = Math.min(1000, Math.max(1, Math.floor(ms / 10)))) {
    this.ms = ms;
    this.#slackMs = slackMs;
  }

  /** (Re)arms `e` for now + ms, moving it out of whatever queue it was in. */
  add(e: DeadlineEntry, now: number = performance.now()): void {
    if (e.deadlineQueue !== undefined) e.deadlineQueue.remove(e);
    e.deadlineAt = now + this.ms;
    e.deadlineQueue = this;
    e.deadlinePrev = this.#tail;
    e.deadlineNext = undefined;
    if (this.#tail === undefined) this.#head = e;
    else this.#tail.deadlineNext = e;
    this.#tail = e;
    if (this.#timer === undefined) this.#schedule(e.deadlineAt, now);
  }

  remove(e: DeadlineEntry): void {
    if (e.deadlineQueue !== this) return;
    const prev = e.deadlinePrev;
    const next = e.deadlineNext;
    if (prev === undefined) this.#head = next;
    else prev.deadlineNext = next;
    if (next === undefined) this.#tail = prev;
    else next.deadlinePrev = prev;
    e.deadlinePrev = e.deadlineNext = undefined;
    e.deadlineQueue = undefined;
    // The timer is left as it is: when it fires with nothing due it re-arms for the head, or stops.
  }

  #schedule(at: number, now: number): void {
    this.#fireAt = at + this.#slackMs;
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(this.#fireAt - now)));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    let e = this.#head;
    while (e !== undefined && e.deadlineAt <= now) {
      this.remove(e);
      try {
        e.deadlineExpired(this);
      } catch {
        // A connection's expiry handler must not stop the others'; it reports its own errors.
      }
      e = this.#head;
    }
    if (e !== undefined) this.#schedule(e.deadlineAt, now);
  }
}
