import t from 'tap';
import { parse, trustedPeers, ProxyProtocolError } from '../../../proxy/listen/proxy-protocol.js';

const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

t.test('v1', async (t) => {
  t.same(parse(Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 4000 80\r\nGET')), { peer: { address: '10.0.0.1', port: 4000 }, used: 38 });
  t.same(parse(Buffer.from('PROXY UNKNOWN\r\n')), { peer: undefined, used: 15 });
  t.equal(parse(Buffer.from('PROXY TCP4 10.0.0.1')), null, 'incomplete: need more');
  t.equal(parse(Buffer.from('PRO')), null);
  for (const bad of ['PROXY TCP4 10.0.0.1 10.0.0.2 4000\r\n', 'PROXY TCP4 ::1 10.0.0.2 1 2\r\n', 'PROXY TCP4 10.0.0.1 10.0.0.2 99999 80\r\n', 'GET / HTTP/1.1\r\n', `PROXY ${'x'.repeat(120)}`]) {
    t.throws(() => parse(Buffer.from(bad)), ProxyProtocolError, JSON.stringify(bad));
  }
});

t.test('v2', async (t) => {
  const tcp4 = Buffer.concat([sig, Buffer.from([0x21, 0x11, 0, 12, 10, 0, 0, 1, 10, 0, 0, 2, 0x0f, 0xa0, 0, 80]), Buffer.from('GET')]);
  t.same(parse(tcp4), { peer: { address: '10.0.0.1', port: 4000 }, used: 28 });
  t.equal(parse(tcp4.subarray(0, 20)), null);
  t.same(parse(Buffer.concat([sig, Buffer.from([0x20, 0x00, 0, 0])])), { peer: undefined, used: 16 }, 'LOCAL');
  t.throws(() => parse(Buffer.concat([sig, Buffer.from([0x11, 0x11, 0, 0])])), ProxyProtocolError, 'version 1 in a v2 header');
  t.throws(() => parse(Buffer.concat([sig, Buffer.from([0x21, 0x11, 0, 4, 1, 2, 3, 4])])), ProxyProtocolError, 'short TCP4 block');
});

t.test('trustedPeers', async (t) => {
  const l = trustedPeers(['10.0.0.0/8', '192.0.2.7'])!;
  t.ok(l.check('10.1.2.3', 'ipv4'));
  t.ok(l.check('192.0.2.7', 'ipv4'));
  t.notOk(l.check('192.0.2.8', 'ipv4'));
  t.equal(trustedPeers([]), undefined);
  t.throws(() => trustedPeers(['10.0.0.0/33']));
  t.throws(() => trustedPeers(['nope/8']));
});
