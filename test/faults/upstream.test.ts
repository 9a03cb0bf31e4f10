// Faults on the backend side: the proxy answers with a clear status or closes, never hangs, never
// crashes, and keeps serving afterwards. Runs serially (npm test's second tap run).
import t from 'tap';
import net from 'node:net';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18080;
const req = (path = '/v1/request-landing') => `POST ${path} HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\n\r\n`;

t.test('no backend listening: 503 at once, and the proxy keeps serving', async (t) => {
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  for (let i = 0; i < 3; i++) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req(), until: hasCompleteResponse });
    t.match(r.text, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*upstream connect error\r\n$/);
  }
  t.equal(s.proc.exitCode, null, 'still running');
});

t.test('a backend that dies mid-response: the client connection is closed, not left hanging', async (t) => {
  // A raw backend that sends a head promising 1000 bytes, 10 of them, then resets.
  const servers: net.Server[] = [];
  for (const host of ips.deathstar) {
    const srv = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789');
        setTimeout(() => sock.resetAndDestroy(), 50);
      });
    });
    await new Promise<void>((resolve) => srv.listen(PORT, host, resolve));
    servers.push(srv);
  }
  t.teardown(() => Promise.all(servers.map((srv) => new Promise((r) => srv.close(r)))));
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: req(), idleMs: 5000 });
  t.equal(r.closed, true, 'the proxy closed the client connection');
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, 'the head had been forwarded');
  t.ok(r.bytes.length < 1000, 'the truncated body is not padded or completed');
  t.equal(s.proc.exitCode, null, 'the proxy survived');
});
