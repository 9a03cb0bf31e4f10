/**
 * Policy errors as a user sees them from the real CLI: `policy validate`, `serve -f` and `apply`
 * name the file, line and column of the offending field, suggest the near name of an unknown field
 * and quote a bad regex as written. /config_dump keeps the last error but says healthy again after a
 * later successful reload.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { adminText } from '../helpers/admin.js';
import { runCli, serve } from '../helpers/serve.js';

const BAD = `# a comment line
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: fine
spec:
  endpointSelector: {}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: prod
spec:
  endpointSelector:
    matchLabels:
      app.kubernetes.io/name: web
  ingress:
  - toPorts:
    - ports: [{port: "80"}]
      rules:
        http:
        - methd: GET
          path: "/a(b"
`;
// methd: line 23, column 11; the regex value: line 24, column 17.
const METHD = ':23:11 ';
const REGEX = ':24:17 ';

const GOOD = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: prod
spec:
  endpointSelector: {}
`;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-policy-errors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('policy validate: file:line:column, the near field name, the regex as written', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, BAD);
  const r = await runCli(['policy', 'validate', '-f', file]);
  t.equal(r.code, 1);
  t.match(r.stdout, `${file}${METHD}spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field "methd"; did you mean "method"?`);
  t.match(r.stdout, `${file}${REGEX}spec.ingress[0].toPorts[0].rules.http[0].path: invalid RE2 regex "/a(b": error parsing regexp: missing closing ): \`/a(b\``);
  t.notMatch(r.stdout, '(?:', 'the internal anchored form is not shown');
});

t.test('policy validate: JSON Lists are placed too, item by item', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'list.json');
  const cnp = (name: string, spec: unknown) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name }, spec });
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [cnp('a', { endpointSelector: {} }), cnp('b', { endpointSelector: {}, ingres: [] })] }, null, 2);
  writeFileSync(file, text);
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes('"ingres"')) + 1;
  const column = (lines[line - 1] as string).indexOf('"ingres"') + 1;
  const r = await runCli(['policy', 'validate', '-f', file]);
  t.equal(r.code, 1);
  t.match(r.stdout, `${file}:${line}:${column} spec.ingres: unknown field "ingres"; did you mean "ingress"?`);
});

t.test('serve -f: a policy that does not load names file:line:column', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, BAD);
  const r = await runCli(['serve', '-f', file, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.not(r.code, 0);
  t.match(r.stderr, `${file}${METHD}CiliumNetworkPolicy prod/web spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field "methd"; did you mean "method"?`);
  t.match(r.stderr, `${file}${REGEX}CiliumNetworkPolicy prod/web`);
});

t.test('apply names the file and the field position, not api:1; /config_dump says healthy again after a good reload', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.yaml');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(good, GOOD);
  writeFileSync(bad, BAD);
  const s = await serve(['-f', good, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.teardown(() => s.stop());
  const reloadOf = async () => (JSON.parse(await adminText(s.admin, '/config_dump')) as { reload: { healthy: boolean; lastError?: { message: string; at: string } } }).reload;
  t.equal((await reloadOf()).healthy, true, 'healthy at start');

  const r = await runCli(['apply', '-f', bad, '--server', s.admin]);
  t.equal(r.code, 1);
  t.match(r.stderr, `${bad}${METHD}CiliumNetworkPolicy prod/web spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field "methd"; did you mean "method"?`);
  t.match(r.stderr, `${bad}${REGEX}CiliumNetworkPolicy prod/web`);
  t.notMatch(r.stderr, 'api:1');
  t.match(r.stdout, 'ciliumnetworkpolicy.cilium.io/fine created', 'the valid object of the same file went through');

  const failed = await reloadOf();
  t.equal(failed.healthy, false, 'refused inputs: not healthy');
  t.match(failed.lastError?.message, 'unknown field "methd"');

  const ok = await runCli(['apply', '-f', good, '--server', s.admin]);
  t.equal(ok.code, 0, ok.stderr);
  const after = await reloadOf();
  t.equal(after.healthy, true, 'healthy after a later successful reload');
  t.match(after.lastError?.message, 'unknown field "methd"', 'the last error is kept');
  t.ok(!Number.isNaN(Date.parse(after.lastError?.at ?? '')), 'with its time');
});
