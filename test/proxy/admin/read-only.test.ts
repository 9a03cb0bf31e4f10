/**
 * `--admin unix:PATH --admin-readonly HOST:PORT` (what deploy/ sets): changing policy needs the
 * owner-only unix socket; the TCP listener that probes and scrapers reach answers GET and HEAD only.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { deathstarPolicy } from '../../../fixtures/star-wars.js';
import { adminRequest } from '../../../proxy/admin/client.js';
import { clusterDir, starWarsCluster } from '../../helpers/cluster.js';
import { loopbackBlock } from '../../helpers/net.js';
import { serve } from '../../helpers/serve.js';

const B = loopbackBlock();
const ips = { tiefighter: B(2), xwing: B(3), deathstar: [B(4), B(5)] as const, clusterIP: B(10) };

t.test('a TCP client is refused a mutation on the read-only admin listener', async (t) => {
  const dir = clusterDir(starWarsCluster(ips, 18_080));
  const socket = join(dir, 'admin.sock');
  const proxy = await serve(['-f', dir, '--listen', `${ips.clusterIP}:0`, '--admin', `unix:${socket}`, '--admin-readonly', '127.0.0.1:0']);
  t.teardown(() => proxy.stop());
  const ready = proxy.logs.find((l) => l['msg'] === 'ready')!;
  const readOnly = String(ready['adminReadOnly']);
  t.match(readOnly, /^127\.0\.0\.1:\d+$/, 'the read-only listener is logged');
  t.equal(statSync(socket).mode & 0o777, 0o600, 'the mutating socket is owner-only');

  t.equal((await adminRequest(readOnly, 'GET', '/ready')).status, 200, 'probes work on the read-only listener');
  t.equal((await adminRequest(readOnly, 'HEAD', '/healthz')).status, 200);
  t.match(String((await adminRequest(readOnly, 'GET', '/metrics')).body['message']), /l7guard_policy_revision 1/, '/metrics too');
  const revision = async () => Number((await adminRequest(readOnly, 'GET', '/server_info')).body['policy_revision']);
  t.equal(await revision(), 1);

  for (const [method, path, body] of [
    ['PUT', '/v1/cnp/default/rule1', deathstarPolicy(18_080)],
    ['DELETE', '/v1/cnp/default/rule1', undefined],
    ['POST', '/reload', undefined],
  ] as const) {
    const r = await adminRequest(readOnly, method, path, body);
    t.equal(r.status, 403, `${method} ${path} over TCP: 403`);
    t.equal(r.body['code'], 'L7G_ERR_ADMIN_READ_ONLY', 'a typed refusal');
  }
  t.equal(await revision(), 1, 'nothing changed');

  const put = await adminRequest(`unix:${socket}`, 'PUT', '/v1/cnp/default/rule1', deathstarPolicy(18_080));
  t.equal(put.status, 201, 'the same PUT over the unix socket is applied');
  t.equal(await revision(), 2);
});
