/**
 * `--listen-tls` end to end with certificates made by certs/: TLS termination with the policy's
 * terminatingTLS Secret, the Star Wars L7 rules on the decrypted HTTP, serverNames and L3/L4 drops
 * with zero bytes, and originatingTLS to an https backend verified against the Secret's CA.
 */
import t from 'tap';
import { randomInt } from 'node:crypto';
import https from 'node:https';
import type net from 'node:net';
import { createCA, issueCert, tlsSecretYaml, type PemPair } from '../../../certs/index.js';
import { recordingBackend } from '../../helpers/backend.js';
import { clusterDir, starWarsCluster } from '../../helpers/cluster.js';
import { loopbackBlock, rawExchange } from '../../helpers/net.js';
import { serve } from '../../helpers/serve.js';
import { captureClientHello, tlsExchange, tlsPolicy, tlsService } from '../../helpers/tls.js';

const ip = loopbackBlock();
const IPS = { tiefighter: ip(2), xwing: ip(3), deathstar: [ip(10), ip(11)] as const, clusterIP: ip(50) };
const SNI = 'deathstar-tls.default.svc.cluster.local';
const LANDING = `POST /v1/request-landing HTTP/1.1\r\nHost: ${SNI}\r\ncontent-length: 0\r\n\r\n`;
const EXHAUST = `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${SNI}\r\ncontent-length: 0\r\n\r\n`;
/** A whole response with a content-length has arrived. */
function complete(s: string): boolean {
  const end = s.indexOf('\r\n\r\n');
  const cl = /content-length: (\d+)/i.exec(s.slice(0, end));
  return end >= 0 && cl !== null && s.length >= end + 4 + Number(cl[1]);
}
const PORT = 20_000 + randomInt(0, 30_000);

const caOnlySecret = (name: string, ca: PemPair) => `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: default}
stringData:
  ca.crt: |
${ca.cert.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')}
`;

t.test('TLS termination: Star Wars L7 policy on decrypted HTTP, serverNames and L3/L4 drops', async (t) => {
  const ca = await createCA();
  const leaf = await issueCert(ca, { name: 'deathstar-tls', dns: [SNI, 'deathstar-tls'] });
  const b1 = await recordingBackend('ds1', IPS.deathstar[0], PORT);
  const b2 = await recordingBackend('ds2', IPS.deathstar[1], PORT);
  t.teardown(() => Promise.all([b1.close(), b2.close()]));
  const dir = clusterDir(starWarsCluster(IPS, PORT) + tlsService(ip(51), PORT), {
    'secret.yaml': tlsSecretYaml('deathstar-tls', 'default', leaf),
    'policy.yaml': tlsPolicy(PORT, SNI, undefined),
  });
  const p = await serve(['-f', dir, '--listen-tls', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--log-level', 'debug']);
  t.teardown(() => p.stop());
  const hits = () => b1.seen.length + b2.seen.length;

  const ok = await tlsExchange({ from: IPS.tiefighter, to: p.host, port: p.port, servername: SNI, ca: ca.cert, data: LANDING, until: complete });
  t.equal(ok.error, undefined, 'the proxy presents the Secret certificate, valid for the SNI under our CA');
  t.ok(ok.secure);
  t.match(ok.text, /^HTTP\/1\.1 200 /, 'allowed request forwarded');
  t.equal(hits(), 1, 'backend saw the landing request');
  const spoofed = await tlsExchange({
    from: IPS.tiefighter, to: p.host, port: p.port, servername: SNI, ca: ca.cert, until: complete,
    data: LANDING.replace('\r\n\r\n', '\r\nx-forwarded-proto: http\r\n\r\n'),
  });
  t.match(spoofed.text, /^HTTP\/1\.1 200 /);
  t.same([...b1.seen, ...b2.seen].map((r) => r.headers['x-forwarded-proto']), ['https', 'https'], 'the backend is told the client spoke https (a client-sent value is replaced)');

  const denied = await tlsExchange({ from: IPS.tiefighter, to: p.host, port: p.port, servername: SNI, ca: ca.cert, data: EXHAUST, until: complete });
  t.match(denied.text, /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*\r\n\r\nAccess denied\r\n$/, 'L7 deny inside TLS: the cilium-envoy 403');
  t.equal(hits(), 2, 'the denied request never reached a backend');

  const hello = await captureClientHello(SNI);
  const xwing = await rawExchange({ from: IPS.xwing, to: p.host, port: p.port, data: hello, idleMs: 2000 });
  t.equal(xwing.bytes.length, 0, 'xwing (L3/L4 denied): zero bytes, not even a TLS alert');
  t.ok(xwing.closed, 'xwing: connection closed');

  // deathstar-tls.default resolves to the same Service but is not in serverNames.
  const otherName = await captureClientHello('deathstar-tls.default');
  const mismatch = await rawExchange({ from: IPS.tiefighter, to: p.host, port: p.port, data: otherName, idleMs: 2000 });
  t.equal(mismatch.bytes.length, 0, 'SNI not in serverNames: zero bytes');
  t.ok(mismatch.closed);

  const control = await rawExchange({ from: IPS.tiefighter, to: p.host, port: p.port, data: hello, idleMs: 1000 });
  t.ok(control.bytes.length > 0 && control.bytes[0] === 0x16, 'control: the same ClientHello from tiefighter gets a ServerHello');

  const unknown = await rawExchange({ from: IPS.tiefighter, to: p.host, port: p.port, data: await captureClientHello('tatooine.example'), idleMs: 2000 });
  t.equal(unknown.bytes.length, 0, 'SNI naming no Service: zero bytes');
  t.ok(unknown.closed);
  t.ok(p.logs.some((l) => l['msg'] === 'tls connection refused' && l['reason'] === 'SNI not in serverNames (L3/L4 drop)'), 'refusal reason logged');
});

async function httpsBackends(cert: PemPair): Promise<{ port: number; seen: () => number; close: () => Promise<void> }> {
  let seen = 0;
  const servers: https.Server[] = [];
  let port = PORT + 1;
  for (const host of IPS.deathstar) {
    const s = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      seen++;
      res.setHeader('content-type', 'text/plain');
      res.end(`tls backend ${req.method} ${req.url}`);
    });
    await new Promise<void>((r) => s.listen(port, host, r));
    port = (s.address() as net.AddressInfo).port;
    servers.push(s);
  }
  return { port, seen: () => seen, close: async () => void (await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))) };
}

t.test('TLS origination: the backend is verified against the originatingTLS CA', async (t) => {
  const ca = await createCA();
  const backendCA = await createCA({ commonName: 'backend CA' });
  const wrongCA = await createCA({ commonName: 'someone else' });
  const front = await issueCert(ca, { name: 'deathstar-tls', dns: [SNI] });
  const backendLeaf = await issueCert(backendCA, { name: 'deathstar-backend', dns: [SNI] });
  const be = await httpsBackends(backendLeaf);
  t.teardown(be.close);

  for (const [name, trust, expect] of [['right', backendCA, 200], ['wrong', wrongCA, 502]] as const) {
    const dir = clusterDir(starWarsCluster(IPS, be.port) + tlsService(ip(51), be.port), {
      'secret.yaml': tlsSecretYaml('deathstar-tls', 'default', front),
      'backend-ca.yaml': caOnlySecret('backend-ca', trust),
      'policy.yaml': tlsPolicy(be.port, SNI, 'backend-ca'),
    });
    const p = await serve(['-f', dir, '--listen-tls', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
    const before = be.seen();
    const r = await tlsExchange({ from: IPS.tiefighter, to: p.host, port: p.port, servername: SNI, ca: ca.cert, data: LANDING, until: complete });
    await p.stop();
    if (expect === 200) {
      t.match(r.text, /^HTTP\/1\.1 200 [\s\S]*tls backend POST \/v1\/request-landing$/, `${name} CA: forwarded over TLS`);
      t.equal(be.seen() - before, 1, `${name} CA: the https backend answered`);
    } else {
      t.match(r.text, /^HTTP\/1\.1 50[23] /, `${name} CA: the backend certificate is refused`);
      t.equal(be.seen() - before, 0, `${name} CA: no request reached the backend`);
    }
  }
});
