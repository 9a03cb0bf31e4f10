// Fail closed: before the first successful policy load nothing is served (the data-plane port is
// not even bound), and a load that fails serves nothing at all.
import t from 'tap';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackBlock } from '../helpers/net.js';
import { runCli } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { guarded, request, responses } from './harness.js';

const connectOutcome = (host: string, port: number, from: string): Promise<string> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: from });
    s.on('connect', () => (s.destroy(), resolve('connected')));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });

t.test('an invalid policy: exit non-zero, and the data-plane port was never bound', async (t) => {
  const ip = loopbackBlock();
  const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
  const dir = clusterDir(starWarsCluster(ips, 18120));
  writeFileSync(join(dir, '20-bad.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bad\nspec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: "80"\n      rules:\n        kafka: []\n');
  const port = 18121;
  const run = runCli(['serve', '-f', dir, '--listen', `${ip(1)}:${port}`, '--admin', `${ip(1)}:0`]);
  // Probe while it starts and after it gave up: never a connection.
  const during = await connectOutcome(ip(1), port, ips.tiefighter);
  const r = await run;
  t.not(r.code, 0, 'exits non-zero');
  t.match(r.stderr, /20-bad\.yaml/, 'naming the file');
  t.equal(during, 'ECONNREFUSED', 'nothing accepted connections while loading');
  t.equal(await connectOutcome(ip(1), port, ips.tiefighter), 'ECONNREFUSED', 'nor after');
});

t.test('an unresolvable destination is refused with 421 and reaches no pod', async (t) => {
  const g = await guarded(t, { port: 18122 });
  const r = await g.send(request('GET', '/public/a', '', 'unknown.default.svc.cluster.local'), { until: (b) => responses(b.toString('latin1')).length > 0 });
  t.equal(responses(r.text)[0]?.status, 421);
  const r2 = await g.send(request('GET', '/public/a', '', '203.0.113.7'), { until: (b) => responses(b.toString('latin1')).length > 0 });
  t.equal(responses(r2.text)[0]?.status, 421, 'an IP that is no pod nor Service');
  t.same(g.journal, []);
});
