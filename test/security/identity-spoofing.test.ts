// Identity comes from the connection's source address only: no header a client can write moves it
// to another identity, and a PROXY protocol header from a peer not named by --proxy-protocol-from
// is a malformed request, not an address.
import t from 'tap';
import { guarded, request, responses, settle } from './harness.js';

const SPOOF_HEADERS = (ip: string): string[] => [
  `X-Forwarded-For: ${ip}\r\n`,
  `X-Forwarded-For: ${ip}, ${ip}\r\n`,
  `Forwarded: for=${ip}\r\n`,
  `Forwarded: for="${ip}:1234";proto=http;by=${ip}\r\n`,
  `X-Real-IP: ${ip}\r\n`,
  `X-Client-IP: ${ip}\r\nTrue-Client-IP: ${ip}\r\nCF-Connecting-IP: ${ip}\r\n`,
  `X-Originating-IP: ${ip}\r\nX-Remote-Addr: ${ip}\r\nX-Cluster-Client-IP: ${ip}\r\n`,
  `X-Envoy-External-Address: ${ip}\r\nX-Envoy-Internal: true\r\n`,
];

t.test('headers never change the source identity', async (t) => {
  const g = await guarded(t, { port: 18107 });
  for (const from of [g.ips.xwing, g.ips.world]) {
    for (const h of SPOOF_HEADERS(g.ips.tiefighter)) {
      const r = await g.send(request('POST', '/v1/request-landing', `${h}Content-Length: 0\r\n`), { from });
      t.equal(r.bytes.length, 0, `${from} claiming ${JSON.stringify(h.trim())}: still dropped, zero bytes`);
      t.equal(r.closed, true);
    }
  }
  await settle();
  t.same(g.journal, [], 'nothing from a spoofing peer reached deathstar');

  // The allowed peer claiming to be someone else is still itself: allowed, and the backend learns
  // its real address last in X-Forwarded-For (the only element the proxy vouches for).
  const r = await g.send(request('POST', '/v1/request-landing', `X-Forwarded-For: ${g.ips.xwing}\r\nContent-Length: 0\r\n`), {
    until: (b) => responses(b.toString('latin1')).length > 0,
  });
  t.equal(responses(r.text)[0]?.status, 200);
  await settle();
  t.equal(g.journal.length, 1);
  t.equal(g.journal[0]?.headers['x-forwarded-for'], `${g.ips.xwing}, ${g.ips.tiefighter}`, 'real address appended');
});

t.test('a PROXY protocol header from an untrusted peer is refused', async (t) => {
  const g = await guarded(t, { port: 18108 });
  const v1 = `PROXY TCP4 ${g.ips.tiefighter} ${g.s.host} 40000 ${g.s.port}\r\n`;
  const v2sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const v2 = Buffer.concat([
    v2sig,
    Buffer.from([0x21, 0x11, 0x00, 0x0c]),
    Buffer.from(g.ips.tiefighter.split('.').map(Number)),
    Buffer.from(g.s.host.split('.').map(Number)),
    Buffer.from([0x9c, 0x40, g.s.port >> 8, g.s.port & 0xff]),
  ]);
  const body = request('POST', '/v1/request-landing', 'Content-Length: 0\r\n');
  for (const [name, prefix] of [['v1', Buffer.from(v1)], ['v2', v2]] as const) {
    // From the allowed peer: the header is garbage before the request, so 400 and close.
    const r = await g.send(Buffer.concat([prefix, Buffer.from(body)]), { idleMs: 1500 });
    t.equal(responses(r.text)[0]?.status, 400, `${name} from tiefighter: 400`);
    t.equal(r.closed, true, `${name} from tiefighter: closed`);
    // From a dropped peer claiming tiefighter's address: a 400 or a drop, never a forward.
    const x = await g.send(Buffer.concat([prefix, Buffer.from(body)]), { from: g.ips.xwing, idleMs: 1500 });
    t.notMatch(x.text, /^HTTP\/1\.1 200/, `${name} from xwing: not forwarded`);
    t.equal(x.closed, true, `${name} from xwing: closed`);
  }
  await settle();
  t.same(g.journal, [], 'nothing reached deathstar');
});
