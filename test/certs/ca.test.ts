import t from 'tap';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCert } from '../../certs/index.js';
import { parseText } from '../../policy/index.js';
import { runCli } from '../helpers/serve.js';

t.test('createCA + issueCert: an ECDSA P-256 CA and a leaf it signs, with DNS/IP/SPIFFE SANs', async (t) => {
  const ca = await createCA({ commonName: 'test CA' });
  const caCert = new X509Certificate(ca.cert);
  t.ok(caCert.ca, 'CA:true');
  t.equal(caCert.subject, 'CN=test CA');
  t.equal(createPrivateKey(ca.key).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const leaf = await issueCert(ca, { name: 'deathstar', dns: ['deathstar.default.svc.cluster.local'], ips: ['10.96.0.10'], spiffe: 'spiffe://cluster.local/ns/default/sa/deathstar' });
  const c = new X509Certificate(leaf.cert);
  t.notOk(c.ca, 'leaf is not a CA');
  t.ok(c.verify(caCert.publicKey), 'signed by the CA');
  t.ok(c.checkIssued(caCert));
  t.equal(c.subjectAltName, 'DNS:deathstar.default.svc.cluster.local, IP Address:10.96.0.10, URI:spiffe://cluster.local/ns/default/sa/deathstar');
  t.ok(c.checkHost('deathstar.default.svc.cluster.local'));
  t.ok(c.checkPrivateKey(createPrivateKey(leaf.key)), 'key matches the certificate');
  const other = await createCA();
  t.notOk(c.verify(new X509Certificate(other.cert).publicKey), 'not signed by another CA');
  await t.rejects(issueCert({ cert: ca.cert, key: other.key }, { name: 'x', dns: ['x'] }), { code: 'L7G_ERR_CERTS' }, 'a CA key that is not the CA cert\'s is refused');
  await t.rejects(issueCert(ca, { name: 'x', ips: ['not-an-ip'] }), { code: 'L7G_ERR_CERTS' });
  await t.rejects(issueCert(ca, { name: 'x' }), { code: 'L7G_ERR_CERTS' }, 'no SAN at all is refused');
});

t.test('l7guard certs init / issue: files and a kubernetes.io/tls Secret that node:crypto parses', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'l7guard-certs-')), 'ca');
  const init = await runCli(['certs', 'init', '--dir', dir]);
  t.equal(init.code, 0, init.stderr);
  t.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600, 'CA key is 0600');
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
  t.ok(ca.ca);
  const again = await runCli(['certs', 'init', '--dir', dir]);
  t.equal(again.code, 1, 'an existing CA is not overwritten');
  t.match(again.stderr, /exists \(use --force/);

  const issue = await runCli(['certs', 'issue', 'tiefighter', '--dns', 'tiefighter.default.svc.cluster.local', '--ip', '127.0.0.1', '--spiffe', 'spiffe://cluster.local/ns/default/sa/tiefighter', '--dir', dir]);
  t.equal(issue.code, 0, issue.stderr);
  const leaf = new X509Certificate(readFileSync(join(dir, 'tiefighter.crt')));
  t.ok(leaf.verify(ca.publicKey));
  t.match(leaf.subjectAltName ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/tiefighter/);

  const sec = await runCli(['certs', 'issue', 'deathstar-tls', '--dns', 'deathstar', '-o', 'secret', '-n', 'empire', '--dir', dir]);
  t.equal(sec.code, 0, sec.stderr);
  const problems: unknown[] = [];
  const [obj] = parseText('secret.yaml', sec.stdout, problems as never);
  t.same(problems, []);
  t.equal(obj?.kind, 'Secret');
  t.equal(obj?.namespace, 'empire');
  t.equal((obj?.raw as { type?: string }).type, 'kubernetes.io/tls');
  const data = (obj?.raw as { data: Record<string, string> }).data;
  const crt = new X509Certificate(Buffer.from(data['tls.crt']!, 'base64'));
  t.ok(crt.verify(new X509Certificate(Buffer.from(data['ca.crt']!, 'base64')).publicKey), 'tls.crt verifies against ca.crt');
  t.ok(crt.checkPrivateKey(createPrivateKey(Buffer.from(data['tls.key']!, 'base64'))), 'tls.key matches tls.crt');
  t.ok(crt.verify(ca.publicKey), 'issued by the CA in --dir');

  const noCA = await runCli(['certs', 'issue', 'x', '--dns', 'x', '--dir', join(dir, 'nope')]);
  t.equal(noCA.code, 1);
  t.match(noCA.stderr, /certs init/);
  const bad = await runCli(['certs', 'issue', 'x', '--ip', 'nope', '--dir', dir]);
  t.equal(bad.code, 1);
});
