/**
 * `l7guard demo --netns`: the demo's steps (steps.ts) over real interception. The Star Wars pods
 * become Linux network namespaces (netns-topology.ts: a node namespace and one per pod, veth links,
 * 10.244.N.2 pod addresses), the deathstar Service's clusterIP 10.96.0.10 exists on no interface,
 * and the node's nat PREROUTING rule REDIRECTs 10.96.0.10:80 to l7guard's `--redirect` listener —
 * what a node-level CNI rule does. Ships run the real `curl` inside their namespaces. The transcript
 * and the checks are the loopback demo's (run.ts): the bytes each ship got, what reached deathstar,
 * the Hubble lines; any difference prints `MISMATCH: ...` and makes the exit code 1. Every namespace
 * (and with it every address, link and rule) is deleted at the end, on failure and on Ctrl-C too.
 * Needs root, iproute2, iptables and curl.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buildCluster, clusterYaml, deathstarPodNames, GENERATED_NAMING, manifestPath, podNamed, SERVICE_HOST, type StarWarsCluster,
} from '../fixtures/star-wars.js';
import { applyText } from '../proxy/admin/client.js';
import { DemoRunner, HERE, labelList, PORT, ROOT, type DemoHit } from './demo-runner.js';
import { curlCommand, curlFrom, startNetnsDeathstar, startNetnsProxy, type DeathstarLogLine, type NetnsDeathstar, type NetnsProxy } from './netns-processes.js';
import {
  CLUSTER_IP, netnsSupport, NetnsTopology, runTag, starWarsAddresses, starWarsPodSpecs, which, type NetnsPod,
} from './netns-topology.js';
import { SEED_OUTPUT, type DemoStep, type ShipCommand } from './steps.js';

const CLI = join(ROOT, 'bin', 'l7guard.js');
const DEATHSTAR_MAIN = join(HERE, 'deathstar-main.js');
/** The proxy port the node's rule redirects the deathstar Service to (deploy/daemonset.yaml's). */
const REDIRECT_PORT = 15080;

export interface NetnsDemoOptions {
  readonly out: NodeJS.WritableStream;
  readonly keep?: boolean;
}

export async function runNetnsDemo(opts: NetnsDemoOptions): Promise<number> {
  const tag = runTag('demo');
  const support = netnsSupport(tag);
  if (!support.ok) {
    opts.out.write(`l7guard demo --netns: ${support.reason}\n`);
    return 2;
  }
  if (which('curl') === undefined) {
    opts.out.write('l7guard demo --netns: `curl` is not installed (the ships run it inside their namespaces)\n');
    return 2;
  }
  // The loopback demo's Pod names, at the namespaces' addresses.
  const topo = await NetnsTopology.create(support.tools, tag, starWarsPodSpecs(deathstarPodNames(GENERATED_NAMING)));
  const cluster = buildCluster({ addresses: starWarsAddresses(topo), naming: GENERATED_NAMING });
  return new NetnsDemo(opts, cluster, topo).run();
}

class NetnsDemo extends DemoRunner {
  readonly #t: StarWarsCluster;
  readonly #topo: NetnsTopology;
  readonly #journal: DeathstarLogLine[] = [];
  readonly #replicas = new Map<string, NetnsDeathstar>();
  readonly #restarts = new Map<string, number>();
  #proxy: NetnsProxy | undefined;
  #admin = '';
  #flowsFile = '';

  constructor(opts: NetnsDemoOptions, t: StarWarsCluster, topo: NetnsTopology) {
    super(opts, 'l7guard-demo-netns-');
    this.#t = t;
    this.#topo = topo;
  }

  protected override afterTeardown(): void {
    const left = this.#topo.leftovers();
    if (left.length > 0) this.mismatch('every namespace deleted', `still there: ${left.join(', ')}`);
  }

  protected override okSuffix(): string {
    return `; namespaces ${this.#topo.node.replace(/-node$/, '')}-* deleted`;
  }

  protected async deploy(): Promise<void> {
    const workDir = this.workDir!;
    this.deployHeader(' in network namespaces');
    const clusterFile = join(workDir, 'cluster.yaml');
    await writeFile(clusterFile, clusterYaml(this.#t), 'utf8');
    for (const p of this.#topo.pods.values()) if (p.role.startsWith('ds')) await this.#startReplica(p);
    this.say('\n❯ kubectl get pod -o wide --show-labels   # NODE: the namespace that holds the pod');
    const rows = [...this.#topo.pods.values()].map((np) => {
      const p = podNamed(this.#t, np.name);
      return [p.name, '1/1', 'Running', '0', np.ip, np.netns, labelList(p.labels)];
    });
    this.table([['NAME', 'READY', 'STATUS', 'RESTARTS', 'IP', 'NODE', 'LABELS'], ...rows]);
    this.say('\n❯ kubectl get svc,ep deathstar');
    const eps = [...this.#replicas.values()].map((r) => `${r.pod.ip}:${PORT}`).join(',');
    this.table([['NAME', 'TYPE', 'CLUSTER-IP', 'PORT(S)', 'ENDPOINTS'], ['service/deathstar', 'ClusterIP', CLUSTER_IP, '80/TCP', eps]]);

    this.say(`\n# the node's redirect (namespace ${this.#topo.node}), as a node-level CNI rule installs it:`);
    const rule = await this.#topo.redirect(CLUSTER_IP, PORT, REDIRECT_PORT);
    this.say(`❯ ip netns exec ${this.#topo.node} ${rule.join(' ')}`);
    this.#admin = `unix:${join(workDir, 'admin.sock')}`;
    this.#flowsFile = join(workDir, 'flows.jsonl');
    const args = ['-f', clusterFile, '--redirect', `0.0.0.0:${REDIRECT_PORT}=${CLUSTER_IP}:${PORT}`,
      '--admin', this.#admin, '--flows', this.#flowsFile, '--cluster-name', 'default'];
    this.#proxy = await startNetnsProxy(this.#topo, CLI, args);
    this.say(`# started the proxy: ip netns exec ${this.#topo.node} l7guard serve ${args.join(' ').replaceAll(workDir, '$WORK')}`);
    this.say(`# ${SERVICE_HOST} resolves to ${CLUSTER_IP} (curl --resolve); each ship's packets leave its own namespace from its pod IP.`);
  }

  async #startReplica(pod: NetnsPod): Promise<void> {
    const r = await startNetnsDeathstar(this.#topo, pod, DEATHSTAR_MAIN, this.#journal, PORT);
    this.#replicas.set(pod.name, r);
    r.child.once('exit', (code, signal) => this.#onExit(pod, r.child, code, signal));
  }

  /** A replica that dies is restarted, as the kubelet restarts the container. */
  #onExit(pod: NetnsPod, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.tornDown || this.#replicas.get(pod.name)?.child !== child) return;
    const how = code !== null ? `exit code ${code}` : `signal ${signal}`;
    this.#restarts.set(pod.name, (this.#restarts.get(pod.name) ?? 0) + 1);
    this.crashed(pod.name, how);
    this.#startReplica(pod).catch((err: Error) => this.mismatch(`${pod.name} to restart`, err.message));
  }

  protected async applyStep(step: DemoStep): Promise<void> {
    if (step.apply === undefined) return;
    const file = manifestPath(step.apply.file);
    const lines = await applyText(this.#admin, await readFile(file, 'utf8'), file);
    const text = lines.map((l) => l.text).join('\n');
    this.say(text);
    if (lines.some((l) => !l.ok)) this.mismatch(`${step.apply.file} to apply`, text);
    if (text !== step.apply.output) this.mismatch(`kubectl's "${step.apply.output}"`, `"${text}"`);
  }

  protected async shipRequest(c: ShipCommand): Promise<void> {
    const ship = this.#topo.pod(c.ship === 'tiefighter' ? 'tf' : 'xw');
    const req = { method: c.method, url: `http://${SERVICE_HOST}${c.path}`, resolve: `${SERVICE_HOST}:${PORT}:${CLUSTER_IP}` };
    this.say(`# = ${curlCommand(ship, req)}`);
    const r = await curlFrom(this.#topo, ship, req);
    if (r.body !== '') this.say(r.body);
    if (r.exitCode !== 0) {
      this.say(`command terminated with exit code ${String(r.exitCode)}`);
      this.say('# no HTTP bytes: the proxy closed the connection. In a cluster the SYN itself is dropped and curl waits for its timeout (exit code 28).');
    }
    const want = SEED_OUTPUT[c.expect];
    const got = r.status === 0 ? `no HTTP response (curl exit ${String(r.exitCode)}${r.body === '' ? '' : `, ${r.body.length} bytes`})` : `HTTP ${r.status} with body ${JSON.stringify(r.body)}`;
    // curl 52 = empty reply, 56 = reset: the two faces of a zero-byte drop.
    const ok = want === undefined
      ? r.status === 0 && r.body === '' && (r.exitCode === 52 || r.exitCode === 56)
      : r.exitCode === 0 && r.status === want.status && r.body === want.body;
    if (!ok) this.mismatch(`${c.ship} to get ${want === undefined ? 'no HTTP bytes and a closed connection (a drop)' : `HTTP ${want.status} with body ${JSON.stringify(want.body)}`}`, got);
  }

  protected hitLog(): readonly DemoHit[] {
    return this.#journal;
  }

  /** Serving again: the restarted replica printed "Serving deathstar" (startNetnsDeathstar waits for it). */
  protected async replicaReady(name: string): Promise<number> {
    const until = Date.now() + 10_000;
    while (this.#replicas.get(name)?.child.exitCode !== null && Date.now() < until) await sleep(25);
    await sleep(100);
    return this.#restarts.get(name) ?? 0;
  }

  protected flowsFile(): string {
    return this.#flowsFile;
  }

  protected async cleanupStep(): Promise<void> {
    this.cleanupHeader();
    this.appDeleted();
    await this.deleteRule1(this.#admin);
    await this.teardown();
    this.say(`❯ ip netns del ${[this.#topo.node, ...[...this.#topo.pods.values()].map((p) => p.netns)].join(' ')}   # links, addresses and the rule go with them`);
  }

  protected async stopAll(): Promise<void> {
    await this.#proxy?.stop().catch(() => undefined);
    await this.#topo.destroy();
  }
}
