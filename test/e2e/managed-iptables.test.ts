/**
 * `serve --kubernetes --manage-iptables` end to end (docs/interception.md): the Star Wars pods as
 * network namespaces on one node, a stand-in for kube-proxy (the clusterIP DNATed to a deathstar
 * pod in the node's PREROUTING), every object from the test API server, and no hand-written rule:
 * l7guard decides what to intercept from the policies and reconciles its own chain as they change.
 *
 * Outside CI (not root, no `ip netns`, no iptables) the test says why and skips; in CI it fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsyaml from 'js-yaml';
import t from 'tap';
import { LANDED_BODY } from '../../demo/deathstar.js';
import { CLUSTER_IP, netnsSupport, NetnsTopology, runTag, starWarsAddresses, starWarsPodSpecs, type NetnsPod } from '../../demo/netns-topology.js';
import { startNetnsDeathstar, startNetnsProxy, type DeathstarLogLine, type NetnsProxy } from '../../demo/netns-processes.js';
import { normalizeSave } from '../../proxy/interception/iptables.js';
import { buildCluster, deathstarPodNames, SERVICE_HOST } from '../../fixtures/star-wars.js';
import { fixture } from '../helpers/cluster.js';
import { writeKubeconfig } from '../helpers/kube-api-server.js';
import { curlAs, startNetnsApiServer } from '../helpers/netns-kube.js';
import { until } from '../helpers/poll.js';
import { cliPath } from '../helpers/serve.js';

const DEATHSTAR_MAIN = fileURLToPath(new URL('../../demo/deathstar-main.js', import.meta.url));
const RESOLVE = `${SERVICE_HOST}:80:${CLUSTER_IP}`;
const tag = runTag('ipt');
const support = netnsSupport(tag);

if (!support.ok) {
  if (process.env.CI === 'true') t.fail(`managed-iptables e2e cannot run in CI: ${support.reason}`);
  else t.pass(`skipped: ${support.reason}`, { skip: support.reason });
} else {
  t.test('l7guard owns its interception: rules follow the policy, nothing is left behind', async (t) => {
    const tools = support.tools;
    const topo = await NetnsTopology.create(tools, tag, starWarsPodSpecs(deathstarPodNames()));
    const running: { proxy?: NetnsProxy } = {};
    t.teardown(async () => {
      await running.proxy?.stop();
      await topo.destroy();
    });
    const natRules = () => normalizeSave(spawnSync(tools.ip, ['netns', 'exec', topo.node, 'iptables-save', '-t', 'nat'], { encoding: 'utf8' }).stdout);
    const run = (argv: string[]) => {
      const r = spawnSync(tools.ip, ['netns', 'exec', topo.node, ...argv], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const ds1 = topo.pod('ds1');
    const tf = topo.pod('tf');
    const xw = topo.pod('xw');
    // kube-proxy's part: the clusterIP DNATed to a deathstar pod, in a chain of its own.
    run([tools.iptables, '-t', 'nat', '-N', 'KUBE-SERVICES']);
    run([tools.iptables, '-t', 'nat', '-A', 'PREROUTING', '-j', 'KUBE-SERVICES']);
    run([tools.iptables, '-t', 'nat', '-A', 'KUBE-SERVICES', '-d', `${CLUSTER_IP}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${ds1.ip}:80`]);
    const before = natRules();

    const dir = mkdtempSync(join(tmpdir(), 'l7guard-ipt-e2e-'));
    const cluster = buildCluster({ addresses: starWarsAddresses(topo), namespaceObject: true });
    const onNode = (m: Record<string, unknown>) => ({ ...m, spec: { ...(m['spec'] as object), nodeName: 'node-1' } });
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify({
      apiVersion: 'v1', kind: 'List', items: [cluster.namespace!, cluster.service.manifest, ...cluster.pods.map((p) => onNode(p.manifest))],
    }));
    const api = await startNetnsApiServer(topo, topo.node, [join(dir, 'cluster.json')]);
    const journal: DeathstarLogLine[] = [];
    await Promise.all([ds1, topo.pod('ds2')].map((p) => startNetnsDeathstar(topo, p, DEATHSTAR_MAIN, journal)));
    const serveArgs = [
      '--kubernetes', '--kubeconfig', writeKubeconfig(dir, api.url, 'e2e'), '--node-name', 'node-1', '--kube-api-timeout', '2s',
      '--manage-iptables', '--redirect-ports', '15100-15199', '--admin', '127.0.0.1:9901',
    ];
    const proxy = await startNetnsProxy(topo, cliPath, serveArgs);
    running.proxy = proxy;
    const interception = async () => JSON.parse(run(['curl', '-s', 'http://127.0.0.1:9901/interception'])) as { redirects: { destination: string; what: string; listener: number }[] };
    const viaService = (ship: NetnsPod, method: string, path: string) => curlAs(topo, ship, ship.ip, method, `http://${SERVICE_HOST}${path}`, RESOLVE);
    const viaPodIp = (ship: NetnsPod, method: string, path: string) => curlAs(topo, ship, ship.ip, method, `http://${ds1.ip}${path}`);
    const landed = (r: { status: number; body: string }) => r.status === 200 && r.body === LANDED_BODY;
    const dropped = (r: { status: number; exitCode: number | null }) => r.status === 0 && (r.exitCode === 52 || r.exitCode === 56);
    const manifest = (name: string) => jsyaml.load(readFileSync(fixture(name), 'utf8')) as object;

    await t.test('no policy: nothing is intercepted, both ships land', async (t) => {
      t.same((await interception()).redirects, [], 'no redirect');
      t.notMatch(natRules(), /-A L7GUARD /, 'the chain is empty: no destination needs it');
      t.ok(landed(await viaService(xw, 'POST', '/v1/request-landing')), 'xwing lands');
    });

    await t.test('a CNP created through the API is intercepted and enforced, without a restart', async (t) => {
      await api.command({ op: 'apply', object: manifest('examples__minikube__sw_l3_l4_policy.yaml') });
      const r = await until(interception, (x) => x.redirects.length >= 3, 'redirects for the deathstar pods and the Service', { timeoutMs: 10_000 });
      const dests = r.redirects.map((x) => x.destination).sort();
      t.ok(dests.includes(`${ds1.ip}:80`) && dests.includes(`${topo.pod('ds2').ip}:80`), `the deathstar pods' IPs: ${dests.join(' ')}`);
      t.ok(dests.includes(`${CLUSTER_IP}:80`), 'and the Service: this node\'s clients are DNATed here before any pod rule could see them');
      t.match(natRules(), /-A PREROUTING .*-j L7GUARD/, 'PREROUTING jumps to the chain');
      t.ok(dropped(await viaService(xw, 'POST', '/v1/request-landing')), 'xwing through the Service: dropped');
      t.ok(dropped(await viaPodIp(xw, 'POST', '/v1/request-landing')), 'xwing straight to a pod IP, bypassing the clusterIP: dropped too');
      t.ok(landed(await viaService(tf, 'POST', '/v1/request-landing')), 'tiefighter lands');
    });

    await t.test('the L7 rule through the API: PUT exhaust-port 403 by Service and by pod IP', async (t) => {
      await api.command({ op: 'apply', object: manifest('examples__minikube__sw_l3_l4_l7_policy.yaml') });
      await until(() => viaService(tf, 'PUT', '/v1/exhaust-port'), (r) => r.status === 403, 'exhaust-port denied', { timeoutMs: 10_000 });
      const before = journal.length;
      t.equal((await viaPodIp(tf, 'PUT', '/v1/exhaust-port')).status, 403, 'by pod IP too');
      t.same(journal.slice(before), [], 'no PUT reached deathstar');
    });

    await t.test('a pod added on the node is redirected; removed, it leaves no rule', async (t) => {
      const extraIp = ds1.ip.replace(/\.2$/, '.7');
      const ds = cluster.pods[0]!;
      const meta = ds.manifest['metadata'] as Record<string, unknown>;
      await api.command({ op: 'apply', object: onNode({ ...ds.manifest, metadata: { ...meta, name: 'deathstar-extra' }, status: { phase: 'Running', podIP: extraIp, podIPs: [{ ip: extraIp }] } }) });
      await until(interception, (x) => x.redirects.some((r) => r.destination === `${extraIp}:80`), 'the new pod redirected', { timeoutMs: 10_000 });
      t.match(natRules(), new RegExp(`-d ${extraIp.replace(/\./g, '\\.')}/32 .*--dport 80 .*REDIRECT`), 'its rule is in the chain');
      await api.command({ op: 'delete', kind: 'Pod', namespace: 'default', name: 'deathstar-extra' });
      await until(interception, (x) => !x.redirects.some((r) => r.destination === `${extraIp}:80`), 'the removed pod not redirected', { timeoutMs: 10_000 });
      t.notMatch(natRules(), new RegExp(extraIp.replace(/\./g, '\\.')), 'no rule names its IP');
    });

    await t.test('a Service created through the API is intercepted', async (t) => {
      const svc = cluster.service.manifest as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
      await api.command({ op: 'apply', object: { ...svc, metadata: { ...svc.metadata, name: 'deathstar-2' }, spec: { ...svc.spec, clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.11'] } } });
      await until(interception, (x) => x.redirects.some((r) => r.destination === '10.96.0.11:80'), 'the new Service redirected', { timeoutMs: 10_000 });
      t.pass('10.96.0.11:80 has its listener and rule');
    });

    await t.test('SIGTERM removes the chain and its jumps: iptables-save as before l7guard', async (t) => {
      await proxy.stop();
      running.proxy = undefined;
      t.equal(natRules(), before, 'the nat table is exactly as before');
      t.ok(landed(await viaService(xw, 'POST', '/v1/request-landing')), 'traffic flows straight to the pods again');
    });

    await t.test('after a SIGKILL, `l7guard iptables cleanup` removes what was left', async (t) => {
      const again = await startNetnsProxy(topo, cliPath, serveArgs);
      await until(interception, (x) => x.redirects.length >= 3, 'intercepting again', { timeoutMs: 10_000 });
      again.child.kill('SIGKILL');
      await new Promise((r) => again.child.once('exit', r));
      t.match(natRules(), /L7GUARD/, 'a killed instance leaves its chain');
      const out = run([process.execPath, cliPath, 'iptables', 'cleanup']);
      t.match(out, /removed chain L7GUARD/);
      t.equal(natRules(), before, 'the nat table is exactly as before');
    });

    await topo.destroy();
    t.same(topo.leftovers(), [], 'every namespace this run made is gone');
  });
}
