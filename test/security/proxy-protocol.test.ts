// PROXY protocol (proxy/listen/proxy-protocol.ts): only peers named by --proxy-protocol-from may send a
// v1/v2 header, which then names the source identity; they must send one. Anyone else's PROXY
// header is a 400 (covered for the default set-up in identity-spoofing.test.ts).
import t from 'tap';
import { guarded, request, responses, settle } from './harness.js';

t.test('--proxy-protocol-from', async (t) => {
  const err = await guarded(t, { port: 18113, args: ['--proxy-protocol-from', '127.0.0.300/8'] }).then(
    () => undefined,
    (e: Error) => e,
  );
  t.match(err?.message, /proxy-protocol-from/, 'a malformed CIDR is a startup error naming the flag');
  // The harness picks this file's addresses at random, so trust all of loopback; the "load
  // balancer" is .50 of the block, with tiefighter (allowed) and xwing (dropped) behind it.
  const h = await guarded(t, { port: 18114, args: ['--proxy-protocol-from', '127.0.0.0/8'] });
  const lb = h.ips.tiefighter.replace(/\.11$/, '.50');
  const body = request('POST', '/v1/request-landing', 'Content-Length: 0\r\n');
  const v1 = (src: string): string => `PROXY TCP4 ${src} ${h.s.host} 40000 ${h.s.port}\r\n`;
  const v2 = (src: string): Buffer => Buffer.concat([
    Buffer.from('0d0a0d0a000d0a515549540a', 'hex'),
    Buffer.from([0x21, 0x11, 0x00, 0x0c]),
    Buffer.from(src.split('.').map(Number)),
    Buffer.from(h.s.host.split('.').map(Number)),
    Buffer.from([0x9c, 0x40, h.s.port >> 8, h.s.port & 0xff]),
  ]);
  const until = (b: Buffer): boolean => responses(b.toString('latin1')).length > 0;

  const a = await h.send(v1(h.ips.tiefighter) + body, { from: lb, until });
  t.equal(responses(a.text)[0]?.status, 200, 'v1 naming tiefighter: judged as tiefighter, allowed');
  const b = await h.send(Buffer.concat([v2(h.ips.tiefighter), Buffer.from(body)]), { from: lb, until });
  t.equal(responses(b.text)[0]?.status, 200, 'v2 naming tiefighter: allowed');
  const c = await h.send(v1(h.ips.xwing) + body, { from: lb });
  t.equal(c.bytes.length, 0, 'v1 naming xwing: dropped like xwing');
  t.equal(c.closed, true, 'and the connection closed');
  const d = await h.send(Buffer.concat([v2(h.ips.xwing), Buffer.from(body)]), { from: lb });
  t.equal(d.bytes.length, 0, 'v2 naming xwing: dropped');
  t.equal(d.closed, true, 'and the connection closed');
  await settle();
  t.equal(h.journal.length, 2);
  t.equal(h.journal[0]?.headers['x-forwarded-for'], h.ips.tiefighter, 'the announced address is the client address');

  const e = await h.send(body, { from: lb, idleMs: 1500 });
  t.equal(responses(e.text)[0]?.status, 400, 'a trusted peer without a header: 400');
  t.equal(e.closed, true);
  const f = await h.send('PROXY TCP4 nonsense\r\n' + body, { from: lb, idleMs: 1500 });
  t.equal(responses(f.text)[0]?.status, 400, 'a malformed header: 400');
  t.equal(f.closed, true);
  await settle();
  t.equal(h.journal.length, 2, 'neither reached deathstar');
});

t.test('an untrusted peer cannot use a PROXY header, even when others are trusted', async (t) => {
  const g = await guarded(t, { port: 18115, args: ['--proxy-protocol-from', '10.0.0.0/8'] });
  const body = request('POST', '/v1/request-landing', 'Content-Length: 0\r\n');
  const x = await g.send(`PROXY TCP4 ${g.ips.tiefighter} ${g.s.host} 40000 ${g.s.port}\r\n${body}`, { from: g.ips.xwing, idleMs: 1500 });
  t.notMatch(x.text, /^HTTP\/1\.1 200/, 'xwing claiming tiefighter: never forwarded');
  t.equal(x.closed, true);
  const y = await g.send(`PROXY TCP4 ${g.ips.xwing} ${g.s.host} 40000 ${g.s.port}\r\n${body}`, { idleMs: 1500 });
  t.equal(responses(y.text)[0]?.status, 400, 'tiefighter sending a header: 400 (not trusted)');
  await settle();
  t.same(g.journal, []);
});
