/**
 * Policy errors as a user sees them from the real CLI: `policy validate`, `serve -f`, `policy trace -f`
 * name the file, line and column of the offending field, suggest the near name of an unknown field
 * and quote a bad regex as written (`apply`: test/cli/apply-errors.test.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../helpers/serve.js';
import { BAD, METHD, REGEX, tempDir } from './policy-error-fixtures.js';

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

t.test('policy trace -f: a policy that does not load names file:line:column', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, BAD);
  const r = await runCli(['policy', 'trace', '-f', file, '-s', 'k8s:a=b', '-d', 'k8s:c=d', '--dport', '80']);
  t.equal(r.code, 1);
  t.match(r.stderr, `${file}${METHD}CiliumNetworkPolicy prod/web spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field "methd"; did you mean "method"?`);
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
