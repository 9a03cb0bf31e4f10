/**
 * Inputs that load but yield nothing are warned about, in `policy validate` and in serve's log: a Pod
 * without status.podIP, a `-f` folder without manifests, a Service that selects no pod, a policy that
 * selects no endpoint. serve logs each once: a reload logs only the warnings it brought.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { until } from '../helpers/poll.js';
import { runCli, serve } from '../helpers/serve.js';

const CLUSTER = `apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: prod, labels: {app: web}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: nostatus, namespace: prod, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: starting, namespace: prod, labels: {app: web}}
status: {phase: Pending}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  selector: {app: dbb}
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`;

const policy = (name: string, app: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: ${app}}}
  ingress: [{}]
`;

const W = {
  pod: 'Pod prod/nostatus has no status.podIP',
  svc: 'Service prod/db selects no pod: no running pod with an IP in prod has labels app=dbb',
  typo: 'CiliumNetworkPolicy prod/typo selects no endpoint',
  typo2: 'CiliumNetworkPolicy prod/typo2 selects no endpoint',
};

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-nothing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  writeFileSync(join(dir, 'cluster.yaml'), CLUSTER);
  writeFileSync(join(dir, 'policies.yaml'), `${policy('fine', 'web')}---\n${policy('typo', 'wbe')}`);
  return { dir, empty };
}

t.test('policy validate warns about each input that yields nothing', async (t) => {
  const { dir, empty } = setup(t);
  const r = await runCli(['policy', 'validate', '-f', dir, '-f', empty]);
  t.equal(r.code, 0, 'warnings, not errors');
  for (const w of [`warning: ${empty}: the folder holds no manifest`, `warning: ${W.pod}`, `warning: ${W.svc}`, `warning: ${W.typo}`]) t.match(r.stdout, w);
  t.notMatch(r.stdout, 'prod/starting', 'a Pending pod is on its way to an IP: no warning');
  t.notMatch(r.stdout, 'Service prod/web', 'a Service with pods: no warning');
  t.notMatch(r.stdout, 'prod/fine selects', 'a policy that selects a pod: no warning');
});

t.test('serve logs them at start, and a reload logs only the new ones', async (t) => {
  const { dir, empty } = setup(t);
  const s = await serve(['-f', dir, '-f', empty, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.teardown(() => s.stop());
  const warns = () => s.logs.filter((l) => l['level'] === 40).map((l) => String(l['msg']));
  for (const w of [`${empty}: the folder holds no manifest`, W.pod, W.svc, W.typo]) t.ok(warns().some((m) => m.startsWith(w)), `at start: ${w}`);
  const before = warns().length;

  writeFileSync(join(dir, 'policies.yaml'), `${policy('fine', 'web')}---\n${policy('typo', 'wbe')}---\n${policy('typo2', 'wbe')}`);
  s.proc.kill('SIGHUP');
  await until(() => s.logs.some((l) => l['msg'] === 'policy swapped'), (v) => v, 'the reload');
  const added = warns().slice(before);
  t.same(added.map((m) => m.slice(0, W.typo2.length)), [W.typo2], 'only the warning the reload brought');
});
