/**
 * `apply` names the applied file and the field's line and column, not the admin API's `api:1`;
 * /config_dump keeps the last error but says healthy again after a later successful reload.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { adminText } from '../helpers/admin.js';
import { runCli, serve } from '../helpers/serve.js';
import { BAD, METHD, REGEX, tempDir } from './policy-error-fixtures.js';

const GOOD = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: prod
spec:
  endpointSelector: {}
`;

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
