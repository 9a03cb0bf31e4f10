/**
 * `serve --kubernetes` end to end over network namespaces: the Star Wars pods as namespaces, the
 * node's REDIRECT of the deathstar clusterIP to l7guard, and every object served by the test API
 * server (test/helpers/kube-api-server.ts, its own process inside the node namespace, driven over
 * stdin). The policies are the upstream manifests, created through the API as `kubectl apply` does;
 * the same steps as docs/kubernetes.md, on a kind cluster, except the image.
 *
 * Outside CI (not root, no `ip netns`, no iptables) the test says why and skips; in CI it fails.
 */
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsyaml from 'js-yaml';
import t from 'tap';
import { LANDED_BODY } from '../../demo/deathstar.js';
import { CLUSTER_IP, netnsSupport, NetnsTopology, runTag, starWarsAddresses, starWarsPodSpecs, type NetnsPod } from '../../demo/netns-topology.js';
import { curlFrom, startNetnsDeathstar, startNetnsProxy, type DeathstarLogLine, type NetnsProxy } from '../../demo/netns-processes.js';
import { buildCluster, deathstarPodNames, SERVICE_HOST } from '../../fixtures/star-wars.js';
import { fixture } from '../helpers/cluster.js';
import { writeKubeconfig } from '../helpers/kube-api-server.js';
import { curlAs, startNetnsApiServer } from '../helpers/netns-kube.js';
import { until } from '../helpers/poll.js';
import { cliPath } from '../helpers/serve.js';

const DEATHSTAR_MAIN = fileURLToPath(new URL('../../demo/deathstar-main.js', import.meta.url));
const REDIRECT_PORT = 15080;
const RESOLVE = `${SERVICE_HOST}:80:${CLUSTER_IP}`;
const tag = runTag('kube');
const support = netnsSupport(tag);

if (!support.ok) {
  if (process.env.CI === 'true') t.fail(`netns e2e cannot run in CI: ${support.reason}`);
  else t.pass(`skipped: ${support.reason}`, { skip: support.reason });
} else {
  t.test('the Star Wars demo with its objects from the API server', async (t) => {
    const topo = await NetnsTopology.create(support.tools, tag, starWarsPodSpecs(deathstarPodNames()));
    const running: { proxy?: NetnsProxy } = {};
    t.teardown(async () => {
      await running.proxy?.stop();
      await topo.destroy();
    });
    const dir = mkdtempSync(join(tmpdir(), 'l7guard-kube-e2e-'));
    const cluster = buildCluster({ addresses: starWarsAddresses(topo), namespaceObject: true });
    const onNode = (m: Record<string, unknown>) => ({ ...m, spec: { ...(m['spec'] as object), nodeName: 'node-1' } });
    const objects = [cluster.namespace!, cluster.service.manifest, ...cluster.pods.map((p) => onNode(p.manifest))];
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    const api = await startNetnsApiServer(topo, topo.node, [join(dir, 'cluster.json')]);
    const kubeconfig = writeKubeconfig(dir, api.url, 'e2e');
    const journal: DeathstarLogLine[] = [];
    const replicas = await Promise.all([topo.pod('ds1'), topo.pod('ds2')].map((p) => startNetnsDeathstar(topo, p, DEATHSTAR_MAIN, journal)));
    await topo.redirect(CLUSTER_IP, 80, REDIRECT_PORT);
    const proxy = await startNetnsProxy(topo, cliPath, [
      '--kubernetes', '--kubeconfig', kubeconfig, '--node-name', 'node-1', '--kube-api-timeout', '2s',
      '--redirect', `0.0.0.0:${REDIRECT_PORT}=${CLUSTER_IP}:80`, '--admin', '127.0.0.1:9901',
    ]);
    running.proxy = proxy;
    const tf = topo.pod('tf');
    const xw = topo.pod('xw');
    /** curl from a ship, optionally from another of its addresses (`--interface`). */
    const send = async (ship: NetnsPod, method: string, path: string, from?: string) => {
      const before = journal.length;
      const r = from === undefined
        ? await curlFrom(topo, ship, { method, url: `http://${SERVICE_HOST}${path}`, resolve: RESOLVE })
        : await curlAs(topo, ship, from, method, `http://${SERVICE_HOST}${path}`, RESOLVE);
      return { ...r, reached: () => journal.slice(before) };
    };
    const lands = async (ship: NetnsPod, from?: string) => {
      const r = await send(ship, 'POST', '/v1/request-landing', from);
      return r.status === 200 && r.body === LANDED_BODY;
    };
    const isDropped = async (ship: NetnsPod, from?: string) => {
      const r = await send(ship, 'POST', '/v1/request-landing', from);
      return r.status === 0 && r.body === '' && (r.exitCode === 52 || r.exitCode === 56);
    };
    const manifest = (name: string) => jsyaml.load(readFileSync(fixture(name), 'utf8')) as object;

    await t.test('no policy: both ships land', async (t) => {
      t.ok(await lands(xw), 'xwing lands');
      t.ok(await lands(tf), 'tiefighter lands');
      t.ok(replicas.every((r) => r.hits.length > 0) || journal.length >= 2, 'deathstar answered');
    });

    await t.test('the L3/L4 policy created through the API: xwing dropped', async (t) => {
      await api.command({ op: 'apply', object: manifest('examples__minikube__sw_l3_l4_policy.yaml') });
      await until(() => isDropped(xw), (d) => d, 'xwing dropped', { timeoutMs: 10_000 });
      t.ok(await lands(tf), 'tiefighter still lands');
    });

    await t.test('the L7 policy through the API: PUT exhaust-port 403, never at deathstar', async (t) => {
      await api.command({ op: 'apply', object: manifest('examples__minikube__sw_l3_l4_l7_policy.yaml') });
      const put = await until(() => send(tf, 'PUT', '/v1/exhaust-port'), (r) => r.status === 403, 'exhaust-port denied', { timeoutMs: 10_000 });
      t.equal(put.body, 'Access denied\r\n');
      t.same(put.reached(), [], 'the denied PUT never arrived');
      t.ok(await lands(tf), 'POST still lands');
      t.ok(await isDropped(xw), 'xwing still dropped');
    });

    await t.test('deathstar replaced by a pod with a new IP keeps being served', async (t) => {
      const ds1 = topo.pod('ds1');
      const newIp = ds1.ip.replace(/\.2$/, '.3');
      await topo.exec(ds1.netns, ['ip', 'addr', 'add', `${newIp}/24`, 'dev', 'eth0']);
      const fresh = await startNetnsDeathstar(topo, { ...ds1, ip: newIp, name: `${ds1.name}-new` }, DEATHSTAR_MAIN, journal);
      const old = cluster.pods.find((p) => p.ip === ds1.ip)!;
      await api.command({ op: 'delete', kind: 'Pod', namespace: 'default', name: old.name });
      const meta = old.manifest['metadata'] as Record<string, unknown>;
      await api.command({ op: 'apply', object: onNode({ ...old.manifest, metadata: { ...meta, name: `${old.name}-new` }, status: { phase: 'Running', podIP: newIp, podIPs: [{ ip: newIp }] } }) });
      await until(async () => {
        const r = await Promise.all(Array.from({ length: 4 }, () => lands(tf)));
        return r.every((x) => x) && fresh.hits.length > 0;
      }, (ok) => ok, 'the new replica serves', { timeoutMs: 10_000 });
      // The old pod is gone: its server stops; a proxy that still sent there would fail.
      replicas[0]!.child.kill('SIGKILL');
      const after = await Promise.all(Array.from({ length: 6 }, () => lands(tf)));
      t.ok(after.every((x) => x), 'every landing answered with the old replica gone');
    });

    await t.test('tiefighter moved to a new IP keeps its identity; the old IP is world', async (t) => {
      const movedIp = tf.ip.replace(/\.2$/, '.3');
      await topo.exec(tf.netns, ['ip', 'addr', 'add', `${movedIp}/24`, 'dev', 'eth0']);
      const tie = cluster.pods.find((p) => p.name === tf.name)!;
      await api.command({ op: 'apply', object: onNode({ ...tie.manifest, status: { phase: 'Running', podIP: movedIp, podIPs: [{ ip: movedIp }] } }) });
      await until(() => lands(tf, movedIp), (ok) => ok, 'tiefighter lands from its new IP', { timeoutMs: 10_000 });
      t.equal((await send(tf, 'PUT', '/v1/exhaust-port', movedIp)).status, 403, 'judged by the L7 rule from the new IP');
      t.ok(await isDropped(tf, tf.ip), 'the old IP is world now: dropped');
    });

    await t.test('the API server paused and its history compacted: enforcement goes on, then a relist', async (t) => {
      const movedIp = tf.ip.replace(/\.2$/, '.3');
      await api.command({ op: 'pause' });
      t.equal((await send(tf, 'PUT', '/v1/exhaust-port', movedIp)).status, 403, 'L7 still enforced with the API server away');
      t.ok(await lands(tf, movedIp), 'and landing still allowed');
      await api.command({ op: 'delete', kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' });
      await api.command({ op: 'compact' });
      await api.command({ op: 'resume' });
      await until(() => lands(xw), (ok) => ok, 'the deletion made while away is seen after the relist: xwing lands', { timeoutMs: 20_000 });
      t.pass('relisted');
    });

    await proxy.stop();
    await topo.destroy();
    t.same(topo.leftovers(), [], 'every namespace this run made is gone');
  });
}
