// The request pipeline's own duties, end to end through `l7guard serve`: never forwarding to the
// proxy's own addresses, answering `Expect: 100-continue` itself (undici refuses the header), and
// the X-Forwarded-* headers the backend sees.
import t from 'tap';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../../helpers/net.js';
import { recordingBackend, type Recorded } from '../../helpers/backend.js';
import { serve } from '../../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../../helpers/cluster.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18080;

/** A Service whose only pod is the proxy's own address (the pod `self-0`), on a given target port. */
function selfService(name: string, targetPort: number): string {
  return `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  ports: [{port: 80, targetPort: ${targetPort}}]
  selector: {role: self}
`;
}

/** One pod at the proxy's own address (two live pods never share an IP: the newer one would own it). */
const SELF_POD = `---
apiVersion: v1
kind: Pod
metadata: {name: self-0, namespace: default, labels: {role: self}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: ${ip(1)}}
`;

t.test('the proxy never forwards to its own listener or admin port', async (t) => {
  const listen = randomInt(20000, 40000);
  const admin = listen + 1;
  const dir = clusterDir(starWarsCluster(ips, PORT), { '10-self.yaml': SELF_POD + selfService('loop', listen) + selfService('adm', admin) });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:${listen}`, '--admin', `${ip(1)}:${admin}`]);
  t.teardown(() => s.stop());
  for (const host of ['loop', 'adm']) {
    const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `GET /config_dump HTTP/1.1\r\nHost: ${host}\r\n\r\n`, until: hasCompleteResponse });
    t.match(r.text, /^HTTP\/1\.1 421 Misdirected Request\r\n/, `Host: ${host} is refused`);
    t.notMatch(r.text, /revision/, 'the admin API never answers through the data plane');
  }
});

t.test('nor to its own TLS listener', async (t) => {
  const listen = randomInt(20000, 40000);
  const tlsPort = listen + 1;
  const dir = clusterDir(starWarsCluster(ips, PORT), { '10-self.yaml': SELF_POD + selfService('tlsloop', tlsPort) });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:${listen}`, '--listen-tls', `${ip(1)}:${tlsPort}`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  const r = await rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: 'GET / HTTP/1.1\r\nHost: tlsloop\r\n\r\n', until: hasCompleteResponse });
  t.match(r.text, /^HTTP\/1\.1 421 Misdirected Request\r\n/, 'a Service whose pod is the TLS listener is refused, not looped');
});

t.test('Expect: 100-continue is answered by the proxy, and the body still reaches the backend', async (t) => {
  const journal: Recorded[] = [];
  const backends = await Promise.all(ips.deathstar.map((a, i) => recordingBackend(`ds${i}`, a, PORT, undefined, journal)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, PORT)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());

  const sock = net.connect({ host: s.host, port: s.port, localAddress: ips.tiefighter });
  t.teardown(() => sock.destroy());
  let got = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (got += d));
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /v1/request-landing HTTP/1.1\r\nHost: deathstar\r\nExpect: 100-continue\r\nContent-Length: 5\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n');
  for (let i = 0; i < 100 && !got.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(got, 'HTTP/1.1 100 Continue\r\n\r\n', 'the interim response comes before any body byte was sent');
  t.equal(journal.length, 0, 'nothing reached a backend yet');
  sock.write('hello');
  for (let i = 0; i < 100 && !/\r\n\r\n[\s\S]*\n$/.test(got.slice(25)); i++) await new Promise((r) => setTimeout(r, 20));
  t.match(got.slice(25), /^HTTP\/1\.1 200 OK\r\n/);
  t.equal(journal.length, 1);
  t.equal(journal[0]!.body.toString(), 'hello', 'the body arrived after the 100');
  t.equal(journal[0]!.headers['expect'], undefined, 'Expect is not passed on');
  t.equal(journal[0]!.headers['x-forwarded-for'], `6.6.6.6, ${ips.tiefighter}`, 'the client address is appended to X-Forwarded-For');
});
