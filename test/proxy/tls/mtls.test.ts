/**
 * `--identity-from mtls` end to end with certificates made by certs/: the client certificate's
 * SPIFFE URI SAN, not the connection's address, names the source identity (the pods of that
 * namespace and service account). Anything without a valid SPIFFE identity is closed before a
 * single HTTP byte is answered.
 */
import t from 'tap';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueCert, tlsSecretYaml } from '../../../certs/index.js';
import { recordingBackend } from '../../helpers/backend.js';
import { clusterDir, starWarsCluster } from '../../helpers/cluster.js';
import { loopbackBlock } from '../../helpers/net.js';
import { serve } from '../../helpers/serve.js';
import { tlsExchange } from '../../helpers/tls.js';

const ip = loopbackBlock();
const IPS = { tiefighter: ip(2), xwing: ip(3), deathstar: [ip(10), ip(11)] as const, clusterIP: ip(50) };
/** An address that is no pod's: only the certificate can make it tiefighter. */
const STRANGER = ip(7);
const SNI = 'deathstar-tls.default.svc.cluster.local';
const LANDING = `POST /v1/request-landing HTTP/1.1\r\nHost: ${SNI}\r\ncontent-length: 0\r\n\r\n`;
const EXHAUST = `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${SNI}\r\ncontent-length: 0\r\n\r\n`;
const PORT = 20_000 + randomInt(0, 30_000);
const TIEFIGHTER_ID = 'spiffe://cluster.local/ns/default/sa/tiefighter';

function complete(s: string): boolean {
  const end = s.indexOf('\r\n\r\n');
  const cl = /content-length: (\d+)/i.exec(s.slice(0, end));
  return end >= 0 && cl !== null && s.length >= end + 4 + Number(cl[1]);
}

/** The Star Wars pods, tiefighter and xwing each with a service account of its own name. */
function withServiceAccounts(yaml: string): string {
  return yaml
    .split('---\n')
    .map((doc) => {
      const m = /^kind: Pod\n[\s\S]*?^ {2}name: (tiefighter|xwing)\n/m.exec(doc);
      return m === null ? doc : doc.replace(/^spec:\n/m, `spec:\n  serviceAccountName: ${m[1]}\n`);
    })
    .join('---\n');
}

const tlsService = `---
apiVersion: v1
kind: Service
metadata: {name: deathstar-tls, namespace: default}
spec:
  clusterIP: ${ip(51)}
  ports:
  - port: 443
    targetPort: ${PORT}
  selector: {org: empire, class: deathstar}
`;

const policy = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: empire}
    toPorts:
    - ports:
      - port: "${PORT}"
        protocol: TCP
      terminatingTLS:
        secret: {name: deathstar-tls}
      serverNames: [${SNI}]
      rules:
        http:
        - method: POST
          path: /v1/request-landing
`;

t.test('mTLS identity: the SPIFFE ID of the client certificate is the source', async (t) => {
  const ca = await createCA();
  const clientCA = await createCA({ commonName: 'workload CA' });
  const otherCA = await createCA({ commonName: 'someone else' });
  const server = await issueCert(ca, { name: 'deathstar-tls', dns: [SNI] });
  const tiefighter = await issueCert(clientCA, { name: 'tiefighter', spiffe: TIEFIGHTER_ID });
  const xwing = await issueCert(clientCA, { name: 'xwing', spiffe: 'spiffe://cluster.local/ns/default/sa/xwing' });
  const forged = await issueCert(otherCA, { name: 'tiefighter', spiffe: TIEFIGHTER_ID });
  const foreignTD = await issueCert(clientCA, { name: 'tiefighter', spiffe: 'spiffe://evil.example/ns/default/sa/tiefighter' });
  const noPod = await issueCert(clientCA, { name: 'ghost', spiffe: 'spiffe://cluster.local/ns/default/sa/ghost' });

  const b1 = await recordingBackend('ds1', IPS.deathstar[0], PORT);
  const b2 = await recordingBackend('ds2', IPS.deathstar[1], PORT);
  t.teardown(() => Promise.all([b1.close(), b2.close()]));
  const hits = () => b1.seen.length + b2.seen.length;
  const dir = clusterDir(withServiceAccounts(starWarsCluster(IPS, PORT)) + tlsService, {
    'secret.yaml': tlsSecretYaml('deathstar-tls', 'default', server),
    'policy.yaml': policy,
  });
  const caFile = join(dir, 'client-ca.crt');
  writeFileSync(caFile, clientCA.cert);
  const p = await serve([
    '-f', join(dir, '00-cluster.yaml'), '-f', join(dir, 'secret.yaml'), '-f', join(dir, 'policy.yaml'),
    '--listen-tls', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--log-level', 'debug',
    '--identity-from', 'mtls', '--client-ca', caFile, '--trust-domain', 'cluster.local',
  ]);
  t.teardown(() => p.stop());
  const ask = (from: string, data: string, cert?: { cert: string; key: string }) =>
    tlsExchange({ from, to: p.host, port: p.port, servername: SNI, ca: ca.cert, data, until: complete, idleMs: 2000, ...(cert && { cert: cert.cert, key: cert.key }) });

  for (const from of [STRANGER, IPS.xwing]) {
    const before = hits();
    const ok = await ask(from, LANDING, tiefighter);
    t.match(ok.text, /^HTTP\/1\.1 200 /, `tiefighter's certificate from ${from}: the landing is allowed`);
    t.equal(hits() - before, 1, `tiefighter's certificate from ${from}: the backend saw it`);
    const denied = await ask(from, EXHAUST, tiefighter);
    t.match(denied.text, /^HTTP\/1\.1 403 /, `tiefighter's certificate from ${from}: PUT /v1/exhaust-port is 403`);
    t.equal(hits() - before, 1, 'the denied request never reached a backend');
  }
  const flowsSrc = await fetch(`http://${p.admin}/flows`).then((r) => r.text());
  t.match(flowsSrc, /tiefighter/, 'flows name tiefighter as the source');

  // Each from tiefighter's own address: the address must not vouch for anything.
  const cases: [string, { cert: string; key: string } | undefined, RegExp][] = [
    ["xwing's certificate (L3/L4 drop for xwing)", xwing, /^client certificate identity: L3\/L4 drop$/],
    ['no client certificate', undefined, /peer did not return a certificate/],
    ["tiefighter's SPIFFE ID signed by another CA", forged, /^client certificate refused: /],
    ["tiefighter's namespace/SA in another trust domain", foreignTD, /^client certificate names no pod identity$/],
    ['a SPIFFE ID naming no pod', noPod, /^client certificate names no pod identity$/],
  ];
  for (const [name, cert, reason] of cases) {
    const before = hits();
    const logged = p.logs.length;
    const r = await ask(IPS.tiefighter, LANDING, cert);
    t.equal(r.text, '', `${name}: zero HTTP bytes`);
    t.equal(hits() - before, 0, `${name}: nothing reached a backend`);
    // The log line travels over a pipe: it may land just after the client saw the close.
    for (let i = 0; i < 50 && !p.logs.slice(logged).some((l) => l['msg'] === 'tls connection refused'); i++) await sleep(20);
    const refusals = p.logs.slice(logged).filter((l) => l['msg'] === 'tls connection refused').map((l) => String(l['reason']));
    t.match(refusals.join('\n'), reason, `${name}: refused for that reason`);
  }
});
