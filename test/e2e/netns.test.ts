/**
 * Interception end to end (docs/deployment.md#interception-end-to-end): the Star Wars cluster as Linux network namespaces (a node, two
 * ships, two deathstar replicas), the node's nat PREROUTING REDIRECT of the deathstar Service's
 * clusterIP:80 to l7guard's `--redirect` listener, and curl from inside the ships reproducing the
 * Star Wars demo's outcomes. Names carry this process's pid, so the file may run in parallel with others.
 *
 * Outside CI (not root, no `ip netns`, no iptables) the test says why and skips; in CI it fails.
 */
import t, { type Test } from 'tap';
import { fileURLToPath } from 'node:url';
import { LANDED_BODY } from '../../demo/deathstar.js';
import { CLUSTER_IP, netnsSupport, NetnsTopology, runTag, starWarsAddresses, starWarsPodSpecs } from '../../demo/netns-topology.js';
import { curlFrom, startNetnsDeathstar, startNetnsProxy, type DeathstarLogLine, type NetnsProxy } from '../../demo/netns-processes.js';
import { deathstarPodNames, SERVICE_HOST } from '../../fixtures/star-wars.js';
import { clusterDir, fixture, starWarsCluster } from '../helpers/cluster.js';
import { cliPath } from '../helpers/serve.js';

const DEATHSTAR_MAIN = fileURLToPath(new URL('../../demo/deathstar-main.js', import.meta.url));
const REDIRECT_PORT = 15080;
const PLAIN_PORT = 15081;
const SVC_URL = `http://${SERVICE_HOST}`;
const RESOLVE = `${SERVICE_HOST}:80:${CLUSTER_IP}`;

const tag = runTag('e2e');
const support = netnsSupport(tag);

if (!support.ok) {
  if (process.env.CI === 'true') t.fail(`netns e2e cannot run in CI: ${support.reason}`);
  else t.pass(`skipped: ${support.reason}`, { skip: support.reason });
} else {
  t.test('Star Wars through an iptables REDIRECT to a per-destination listener', async (t) => {
    const topo = await NetnsTopology.create(support.tools, tag, starWarsPodSpecs(deathstarPodNames()));
    let proxy: NetnsProxy | undefined;
    t.teardown(async () => {
      await proxy?.stop();
      await topo.destroy();
    });
    const tf = topo.pod('tf');
    const xw = topo.pod('xw');
    const dir = clusterDir(starWarsCluster(starWarsAddresses(topo)));
    const journal: DeathstarLogLine[] = [];
    const replicas = await Promise.all(
      [topo.pod('ds1'), topo.pod('ds2')].map((p) => startNetnsDeathstar(topo, p, DEATHSTAR_MAIN, journal)),
    );
    const hits = () => journal;
    await topo.redirect(CLUSTER_IP, 80, REDIRECT_PORT);

    const serveWith = async (policies: string[]) => {
      await proxy?.stop();
      proxy = await startNetnsProxy(topo, cliPath, [
        '-f', `${dir}/00-cluster.yaml`, ...policies.flatMap((p) => ['-f', fixture(p)]),
        '--redirect', `0.0.0.0:${REDIRECT_PORT}=${CLUSTER_IP}:80`,
        '--listen', `0.0.0.0:${PLAIN_PORT}`,
        '--admin', '127.0.0.1:9901',
      ]);
    };
    /** One request; returns what curl saw and which requests reached deathstar meanwhile. */
    const send = async (ship: typeof tf, method: string, path: string, opts: { host?: string; url?: string } = {}) => {
      const before = hits().length;
      const url = opts.url ?? (opts.host === undefined ? `${SVC_URL}${path}` : `http://${CLUSTER_IP}${path}`);
      const r = await curlFrom(topo, ship, { method, url, resolve: RESOLVE, host: opts.host });
      await new Promise((r) => setTimeout(r, 50));
      return { ...r, reached: hits().slice(before) };
    };
    const landed = (t: Test, r: Awaited<ReturnType<typeof send>>, what: string) => {
      t.equal(r.status, 200, `${what}: HTTP 200`);
      t.equal(r.body, LANDED_BODY, `${what}: Ship landed`);
      t.same(r.reached.map((h) => `${h.method} ${h.path}`), ['POST /v1/request-landing'], `${what}: one POST reached deathstar`);
    };
    const dropped = (t: Test, r: Awaited<ReturnType<typeof send>>, what: string) => {
      t.equal(r.status, 0, `${what}: no HTTP response`);
      t.equal(r.body, '', `${what}: no HTTP bytes`);
      t.ok(r.exitCode === 52 || r.exitCode === 56, `${what}: curl saw an empty reply or a reset (exit ${String(r.exitCode)})`);
      t.same(r.reached, [], `${what}: nothing reached deathstar`);
    };

    await t.test('1. no policy: both ships land', async (t) => {
      await serveWith([]);
      const listening = proxy!.logs.filter((l) => l['msg'] === 'listening').map((l) => l['redirect']);
      t.ok(listening.includes(`0.0.0.0:${REDIRECT_PORT}=${CLUSTER_IP}:80`), 'the redirect listener is up');
      landed(t, await send(xw, 'POST', '/v1/request-landing'), 'xwing');
      landed(t, await send(tf, 'POST', '/v1/request-landing'), 'tiefighter');
      t.ok(hits().every((h) => h.from.startsWith('10.244.')), 'requests reached deathstar from the node, through the proxy');
      t.ok(replicas.every((r) => r.hits.length > 0), 'the Service balanced over both replicas');
    });

    await t.test('2. L3/L4 policy: xwing gets no HTTP bytes', async (t) => {
      await serveWith(['examples__minikube__sw_l3_l4_policy.yaml']);
      landed(t, await send(tf, 'POST', '/v1/request-landing'), 'tiefighter');
      dropped(t, await send(xw, 'POST', '/v1/request-landing'), 'xwing');
    });

    await t.test('3. L7 policy: PUT exhaust-port denied, POST lands, xwing still dropped', async (t) => {
      await serveWith(['examples__minikube__sw_l3_l4_policy.yaml', 'examples__minikube__sw_l3_l4_l7_policy.yaml']);
      landed(t, await send(tf, 'POST', '/v1/request-landing'), 'tiefighter POST');
      const put = await send(tf, 'PUT', '/v1/exhaust-port');
      t.equal(put.status, 403, 'PUT exhaust-port: 403');
      t.equal(put.body, 'Access denied\r\n', 'PUT exhaust-port: Access denied');
      t.same(put.reached, [], 'the PUT never arrived at deathstar');
      t.notOk(hits().some((h) => h.method === 'PUT'), "no deathstar request log holds a PUT");
      dropped(t, await send(xw, 'POST', '/v1/request-landing'), 'xwing');
    });

    await t.test('4. the original destination outranks Host', async (t) => {
      // Still the L7 policy from step 3.
      landed(t, await send(tf, 'POST', '/v1/request-landing', { host: CLUSTER_IP }), 'Host: 10.96.0.10');
      const bogus = await send(tf, 'POST', '/v1/request-landing', { host: 'tatooine.example' });
      landed(t, bogus, 'Host: tatooine.example');
      t.equal(bogus.reached[0]?.host, 'tatooine.example', 'deathstar saw the Host the ship sent');
      const put = await send(tf, 'PUT', '/v1/exhaust-port', { host: 'tatooine.example' });
      t.equal(put.status, 403, 'a bogus Host does not escape the L7 policy');
      t.same(put.reached, [], 'and the PUT still never arrived');
      dropped(t, await send(xw, 'POST', '/v1/request-landing', { host: 'tatooine.example' }), 'xwing with a bogus Host');
      // Control: the same bogus Host on a listener with no original destination is unknown.
      const plain = await send(tf, 'POST', '/v1/request-landing', { host: 'tatooine.example', url: `http://${tf.gateway}:${PLAIN_PORT}/v1/request-landing` });
      t.equal(plain.status, 421, 'without --redirect, an unknown Host gets 421');
      t.same(plain.reached, [], 'and reaches nothing');
    });

    await proxy?.stop();
    await topo.destroy();
    t.same(topo.leftovers(), [], 'every namespace this run made is gone');
  });
}
