/**
 * Waits for a condition instead of for a time: tests never assert on how long something took, only
 * that it happened. Polls `get` every `intervalMs` until `ok` holds for its value and returns that
 * value; after `timeoutMs` it throws, naming `what` was awaited.
 */
export async function until<T>(
  get: () => T | Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  { intervalMs = 10, timeoutMs = 10_000 }: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; ) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** until() for a plain condition. */
export const untilTrue = (cond: () => boolean | Promise<boolean>, what: string, opts?: { intervalMs?: number; timeoutMs?: number }): Promise<boolean> =>
  until(cond, (v) => v, what, opts);
