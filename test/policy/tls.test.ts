import t from 'tap';
import { createCA, issueCert, tlsSecretYaml } from '../../certs/index.js';
import { buildPolicyState, parseText, PolicyLoadError, type PolicyState } from '../../policy/index.js';
import { serverNameMatches } from '../../policy/tls.js';
import { starWarsCluster } from '../helpers/cluster.js';

const IPS = { tiefighter: '10.0.0.2', xwing: '10.0.0.3', deathstar: ['10.0.0.10', '10.0.0.11'] as const, clusterIP: '10.96.0.10' };

function cnp(toPorts: string, section = 'ingress', peer = 'fromEndpoints'): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: tls, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ${section}:
  - ${peer}:
    - matchLabels: {org: empire}
    toPorts:
${toPorts}
`;
}

async function build(yaml: string, withSecret = true): Promise<PolicyState> {
  const ca = await createCA();
  const leaf = await issueCert(ca, { name: 'ds', dns: ['deathstar'] });
  const text = [starWarsCluster(IPS), withSecret ? `---\n${tlsSecretYaml('ds-tls', 'default', leaf)}` : '', `---\n${yaml}`].join('\n');
  const problems: never[] = [];
  const objects = parseText('x.yaml', text, problems);
  return buildPolicyState(objects, { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', revision: 1 });
}

const PORT = `    - ports: [{port: "80", protocol: TCP}]
      terminatingTLS: {secret: {name: ds-tls}}
      originatingTLS: {secret: {name: ds-tls}}
      serverNames: [deathstar.default.svc.cluster.local, "*.example.com"]
`;

t.test('terminatingTLS/originatingTLS/serverNames resolve per (source, destination, port)', async (t) => {
  const s = await build(cnp(PORT));
  const ds = s.endpoints.find((e) => e.name.startsWith('deathstar'))!;
  const tf = s.identify(IPS.tiefighter);
  const d = s.tls!(tf, ds, 80);
  t.match(d.terminating?.cert ?? '', /BEGIN CERTIFICATE/, 'tls.crt of the Secret');
  t.match(d.terminating?.key ?? '', /PRIVATE KEY/);
  t.equal(d.terminating?.ca, undefined, 'terminating: ca.crt is not used unless trustedCA names it');
  t.match(d.originating?.ca ?? '', /BEGIN CERTIFICATE/, 'originating: ca.crt by default');
  t.ok(d.serverNameAllowed('deathstar.default.svc.cluster.local'));
  t.ok(d.serverNameAllowed('DeathStar.default.svc.cluster.local.'), 'case-insensitive, trailing dot');
  t.ok(d.serverNameAllowed('api.example.com'), 'wildcard: one label');
  t.notOk(d.serverNameAllowed('a.b.example.com'), 'wildcard: not two labels');
  t.notOk(d.serverNameAllowed('deathstar'), 'a name not in the list');
  t.equal(s.tls!(tf, ds, 81).terminating, undefined, 'another port: no TLS');
  t.ok(s.tls!(tf, ds, 81).serverNameAllowed('anything'), 'no covering rule: no SNI gate (decide() drops)');
  t.equal(s.tls!(s.identify(IPS.xwing), ds, 80).terminating, undefined, 'a peer the rule does not select: no TLS');
});

t.test('egress toPorts carry TLS too', async (t) => {
  const s = await build(cnp(PORT, 'egress', 'toEndpoints').replace('{class: deathstar}', '{class: tiefighter}').replace('{org: empire}', '{class: deathstar}'));
  const ds = s.endpoints.find((e) => e.name.startsWith('deathstar'))!;
  t.match(s.tls!(s.identify(IPS.tiefighter), ds, 80).terminating?.secret ?? '', 'default/ds-tls');
});

t.test('load errors: missing Secret, missing item, deny sections, bad serverNames', async (t) => {
  const err = async (yaml: string, re: RegExp, withSecret = true) => {
    try {
      await build(yaml, withSecret);
      t.fail('should not load');
    } catch (e) {
      t.ok(e instanceof PolicyLoadError);
      t.match(JSON.stringify((e as PolicyLoadError).problems), re);
    }
  };
  await err(cnp(PORT), /Secret default\/ds-tls not found/, false);
  await err(cnp(`    - ports: [{port: "80"}]\n      terminatingTLS: {secret: {name: ds-tls}, certificate: nope.crt}\n`), /has no item \\"nope.crt\\"/);
  await err(cnp(`    - ports: [{port: "80"}]\n      terminatingTLS: {secret: {name: ds-tls}}\n`, 'ingressDeny'), /not allowed in a deny section/);
  await err(cnp(`    - ports: [{port: "80"}]\n      serverNames: ["bad name"]\n`), /invalid server name/);
  await err(cnp(`    - ports: [{port: "80"}]\n      terminatingTLS: {certificate: x}\n`), /secret is required/);
});

t.test('serverNameMatches', async (t) => {
  t.ok(serverNameMatches('a.b', 'a.b'));
  t.notOk(serverNameMatches('a.b', 'x.a.b'));
  t.ok(serverNameMatches('*.b', 'a.b'));
  t.notOk(serverNameMatches('*.b', 'b'));
});
