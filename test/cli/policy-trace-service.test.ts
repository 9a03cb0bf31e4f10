/**
 * `policy trace --dst-service NS/NAME`: a Service resolves to its backend pods (no hashed pod name
 * needed), each traced at its target port, in-process (-f) and against a running proxy (--server).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, serve } from '../helpers/serve.js';

const pod = (name: string, labels: string, ip: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: prod, labels: {${labels}}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: ${ip}}
`;
const CLUSTER = [
  pod('web-7f9c-abcde', 'app: web, tier: a', '10.0.0.1'),
  pod('web-7f9c-fghij', 'app: web, tier: b', '10.0.0.2'),
  pod('client', 'app: client', '10.0.0.3'),
  `apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
`,
  // Tier a lets the client in on 8080 (the target port); tier b lets nobody in.
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-a, namespace: prod}
spec:
  endpointSelector: {matchLabels: {tier: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080"}]}]
`,
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-b, namespace: prod}
spec:
  endpointSelector: {matchLabels: {tier: b}}
  ingress: [{}]
`,
].join('---\n');

interface ServiceTrace {
  service: string;
  servicePort: number;
  backends: { pod: string; ip: string; port: number; trace: { verdict: string; dst: { pod: string } } }[];
}

t.test('--dst-service traces every backend pod at its target port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-trace-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, CLUSTER);
  const s = await serve(['-f', file, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.teardown(() => s.stop());

  const args = ['--src-pod', 'prod/client', '--dst-service', 'prod/web', '--dport', '80'];
  const text = await runCli(['policy', 'trace', '-f', file, ...args]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, 'Service prod/web port 80/TCP: 2 backend(s)');
  t.match(text.stdout, 'Backend prod/web-7f9c-abcde (10.0.0.1:8080):');
  t.match(text.stdout, 'Backend prod/web-7f9c-fghij (10.0.0.2:8080):');
  t.match(text.stdout, 'Service verdict: MIXED (allowed to 1/2 backends)');

  const want = [['prod/web-7f9c-abcde', '10.0.0.1', 8080, 'prod/web-7f9c-abcde', 'ALLOWED'], ['prod/web-7f9c-fghij', '10.0.0.2', 8080, 'prod/web-7f9c-fghij', 'DENIED']];
  for (const where of [['-f', file], ['--server', s.admin]]) {
    const json = await runCli(['policy', 'trace', ...where, ...args, '-o', 'json']);
    const r = JSON.parse(json.stdout) as ServiceTrace;
    t.same(r.backends.map((b) => [b.pod, b.ip, b.port, b.trace.dst.pod, b.trace.verdict]), want, `${where[0]}: one trace per backend, at the target port`);
  }

  const badPort = await runCli(['policy', 'trace', '--server', s.admin, '--src-pod', 'prod/client', '--dst-service', 'prod/web', '--dport', '81']);
  t.not(badPort.code, 0);
  t.match(badPort.stderr, 'service prod/web has no TCP port 81 (its ports: 80/TCP)');
  const unknown = await runCli(['policy', 'trace', '-f', file, '--src-pod', 'prod/client', '--dst-service', 'prod/nope', '--dport', '80']);
  t.match(unknown.stderr, 'service prod/nope is not a known Service');
});
