// Oversized heads: the default limits (60 KiB header section and 100 fields = Envoy's defaults,
// 8 KiB request-target = nginx's) answer 431 / 414 and close, and nothing reaches a backend; a head
// just inside every limit is served.
import t from 'tap';
import { guarded, request, responses, settle } from './harness.js';

t.test('header and target limits', async (t) => {
  const g = await guarded(t, { port: 18110 });
  const until = (b: Buffer): boolean => responses(b.toString('latin1')).length > 0;
  const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('');

  const inside = await g.send(request('GET', `/public/${'a'.repeat(8000)}`, fields(99)), { until });
  t.equal(responses(inside.text)[0]?.status, 200, '99 fields + Host, an 8000-byte target: served');

  const cases: [string, string, number][] = [
    ['101 header fields', request('GET', '/public/a', fields(100)), 431],
    ['a 61 KiB header section', request('GET', '/public/a', `X-Big: ${'b'.repeat(61 * 1024)}\r\n`), 431],
    ['many fields adding up past 60 KiB', request('GET', '/public/a', Array.from({ length: 70 }, (_, i) => `X-${i}: ${'c'.repeat(1000)}\r\n`).join('')), 431],
    ['a 9 KiB request-target', request('GET', `/public/${'a'.repeat(9 * 1024)}`), 414],
    ['an endless request line', `GET /public/${'a'.repeat(70 * 1024)}`, 414],
    ['an endless header line', `GET /public/a HTTP/1.1\r\nX: ${'d'.repeat(70 * 1024)}`, 431],
  ];
  for (const [name, bytes, status] of cases) {
    const r = await g.send(bytes, { idleMs: 1500 });
    t.equal(responses(r.text)[0]?.status, status, `${name}: ${status}`);
    t.equal(r.closed, true, `${name}: closed`);
  }
  await settle();
  t.equal(g.journal.length, 1, 'only the request inside the limits reached a backend');
  t.equal(g.s.proc.exitCode, null);
});
