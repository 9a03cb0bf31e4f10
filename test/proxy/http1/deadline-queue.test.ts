// DeadlineQueue: the shared per-duration timer that replaced a setTimeout per connection.
import t from 'tap';
import { DeadlineQueue, type DeadlineEntry } from '../../../proxy/http1/deadline-queue.js';

function entry(name: string, fired: { name: string; at: number }[]): DeadlineEntry & { name: string } {
  return {
    name,
    deadlinePrev: undefined,
    deadlineNext: undefined,
    deadlineAt: 0,
    deadlineQueue: undefined,
    deadlineExpired() {
      fired.push({ name, at: performance.now() });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for a condition instead of a fixed time: a loaded machine may run timers late, never early. */
async function until(cond: () => boolean, maxMs = 5000): Promise<void> {
  const end = performance.now() + maxMs;
  while (!cond() && performance.now() < end) await sleep(5);
}

t.test('entries expire in arming order, never before their deadline, within the slack', async (t) => {
  const fired: { name: string; at: number }[] = [];
  const q = new DeadlineQueue(60, 10);
  const a = entry('a', fired);
  const b = entry('b', fired);
  const c = entry('c', fired);
  const armed = new Map<string, number>();
  for (const e of [a, b, c]) {
    armed.set(e.name, performance.now());
    q.add(e);
    await sleep(15);
  }
  await until(() => fired.length === 3);
  t.same(fired.map((f) => f.name), ['a', 'b', 'c']);
  for (const f of fired) {
    const waited = f.at - armed.get(f.name)!;
    t.ok(waited >= 59, `${f.name} waited ${waited.toFixed(1)} ms >= 60`);
  }
  t.equal(a.deadlineQueue, undefined, 'an expired entry is unlinked');
});

t.test('remove() cancels; add() again re-arms from now; moving between queues', async (t) => {
  // Durations far longer than the sleeps: "not yet" holds unless the machine stalls for ~0.7 s.
  const fired: { name: string; at: number }[] = [];
  const short = new DeadlineQueue(1000, 5);
  const long = new DeadlineQueue(60_000, 5);
  const a = entry('a', fired);
  const b = entry('b', fired);
  const c = entry('c', fired);
  short.add(a);
  short.add(b);
  short.add(c);
  short.remove(b); // cancelled
  await sleep(250);
  const rearmed = performance.now();
  short.add(a); // re-armed: now behind c
  long.add(c); // moved to the long queue
  t.equal(c.deadlineQueue, long);
  await sleep(300);
  t.same(fired.map((f) => f.name), [], 'a was re-armed, b removed, c moved: nothing due yet');
  await until(() => fired.length > 0);
  t.same(fired.map((f) => f.name), ['a'], 'only a fires');
  t.ok(fired[0]!.at - rearmed >= 999, 'a fires no earlier than 1000 ms after its re-arm');
  long.remove(c);
  await sleep(50);
  t.same(fired.map((f) => f.name), ['a']);
  t.equal(b.deadlineQueue, undefined);
  t.equal(c.deadlineQueue, undefined, 'removed from the long queue too');
});

t.test('a throwing expiry handler does not stop the others', async (t) => {
  const fired: { name: string; at: number }[] = [];
  const q = new DeadlineQueue(20, 2);
  const bad = entry('bad', fired);
  bad.deadlineExpired = () => {
    throw new Error('boom');
  };
  const good = entry('good', fired);
  q.add(bad);
  q.add(good);
  await until(() => fired.length > 0);
  t.same(fired.map((f) => f.name), ['good']);
});
