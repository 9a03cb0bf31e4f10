/**
 * `l7guard demo --netns`: the seed's steps (steps.ts) over real interception. The Star Wars pods
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
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { applyText, deleteObject } from '../proxy/reload/admin-client.js';
import { EXPLODE_AFTER_MS } from './deathstar.js';
import { compactLine, readFlowFile } from './flows.js';
import { curlCommand, curlFrom, startNetnsDeathstar, startNetnsProxy, type DeathstarLogLine, type NetnsDeathstar, type NetnsProxy } from './netns-processes.js';
import { netnsSupport, NetnsTopology, runTag, which, type NetnsPod } from './netns-topology.js';
import { curlCommandLine, expectedHits, SEED_OUTPUT, SERVICE_HOST, STEPS, type DemoStep, type ShipCommand } from './steps.js';
import { buildTopology, podsOf, serviceNamed, topologyYaml, type DemoTopology } from './topology.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const MANIFESTS = join(ROOT, 'demo', 'manifests');
const SHOWN_MANIFESTS = 'demo/manifests';
const CLI = join(ROOT, 'bin', 'l7guard.js');
const DEATHSTAR_MAIN = join(HERE, 'deathstar-main.js');
/** The Service range of a default kubeadm cluster; on no interface, only in the redirect rule. */
const CLUSTER_IP = '10.96.0.10';
const PORT = 80;
/** The proxy port the node's rule redirects the deathstar Service to (deploy/daemonset.yaml's). */
const REDIRECT_PORT = 15080;
const FLOW_WAIT_MS = 2000;

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
  const t = buildTopology(await readFile(join(MANIFESTS, 'http-sw-app.yaml'), 'utf8'));
  const roles = [
    { role: 'tf', name: 'tiefighter' },
    { role: 'xw', name: 'xwing' },
    ...podsOf(t, 'deathstar').map((p, i) => ({ role: `ds${i + 1}`, name: p.name })),
  ];
  const topo = await NetnsTopology.create(support.tools, tag, roles);
  return new NetnsDemo(opts, t, topo).run();
}

/** The cluster YAML with the namespaces' addresses instead of the loopback plan's. */
function retarget(t: DemoTopology, topo: NetnsTopology): string {
  const to = new Map<string, string>();
  for (const p of topo.pods.values()) to.set(t.pods.find((x) => x.name === p.name)!.ip, p.ip);
  to.set(serviceNamed(t, 'deathstar').clusterIP, CLUSTER_IP);
  return topologyYaml(t).replace(/\b127\.\d+\.\d+\.\d+\b/g, (ip) => to.get(ip) ?? ip);
}

class NetnsDemo {
  readonly #out: NodeJS.WritableStream;
  readonly #opts: NetnsDemoOptions;
  readonly #t: DemoTopology;
  readonly #topo: NetnsTopology;
  readonly #journal: DeathstarLogLine[] = [];
  readonly #mismatches: string[] = [];
  readonly #replicas = new Map<string, NetnsDeathstar>();
  readonly #restarts = new Map<string, number>();
  #crashes: string[] = [];
  #expectingCrash = false;
  #proxy: NetnsProxy | undefined;
  #workDir = '';
  #admin = '';
  #flowsFile = '';
  #flowsSeen = 0;
  #tornDown = false;

  constructor(opts: NetnsDemoOptions, t: DemoTopology, topo: NetnsTopology) {
    this.#out = opts.out;
    this.#opts = opts;
    this.#t = t;
    this.#topo = topo;
  }

  #say(text = ''): void {
    this.#out.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  #mismatch(expected: string, got: string): void {
    const line = `MISMATCH: expected ${expected}, got ${got}`;
    this.#mismatches.push(line);
    this.#say(line);
  }

  async run(): Promise<number> {
    const onSignal = (sig: NodeJS.Signals) => {
      this.#say(`\n# ${sig}: cleaning up`);
      void this.#teardown().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const started = Date.now();
    try {
      this.#workDir = await mkdtemp(join(tmpdir(), 'l7guard-demo-netns-'));
      await this.#deploy();
      for (const step of STEPS) await this.#step(step);
      await this.#cleanupStep();
    } catch (err) {
      this.#mismatches.push(String(err));
      this.#say(`\nFAILED: ${(err as Error).message}`);
    } finally {
      await this.#teardown();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const left = this.#topo.leftovers();
    if (left.length > 0) this.#mismatch('every namespace deleted', `still there: ${left.join(', ')}`);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (this.#mismatches.length === 0) {
      this.#say(`\nOK: every outcome matches the seed (${secs} s); namespaces ${this.#topo.node.replace(/-node$/, '')}-* deleted.`);
      return 0;
    }
    this.#say(`\n${this.#mismatches.length} difference(s) from the seed (${secs} s):`);
    for (const m of this.#mismatches) this.#say(`  ${m}`);
    return 1;
  }

  async #deploy(): Promise<void> {
    this.#say('=== Deploy the Star Wars demo (http-sw-app.yaml) in network namespaces ===');
    this.#say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/http-sw-app.yaml`);
    this.#say('service/deathstar created\ndeployment.apps/deathstar created\npod/tiefighter created\npod/xwing created');
    const clusterFile = join(this.#workDir, 'cluster.yaml');
    await writeFile(clusterFile, retarget(this.#t, this.#topo), 'utf8');
    for (const p of this.#topo.pods.values()) if (p.role.startsWith('ds')) await this.#startReplica(p);
    this.#say('\n❯ kubectl get pod -o wide --show-labels   # NODE: the namespace that holds the pod');
    const rows = [...this.#topo.pods.values()].map((np) => {
      const p = this.#t.pods.find((x) => x.name === np.name)!;
      return [p.name, '1/1', 'Running', '0', np.ip, np.netns, Object.entries(p.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',')];
    });
    this.#table([['NAME', 'READY', 'STATUS', 'RESTARTS', 'IP', 'NODE', 'LABELS'], ...rows]);
    this.#say('\n❯ kubectl get svc,ep deathstar');
    const eps = [...this.#replicas.values()].map((r) => `${r.pod.ip}:${PORT}`).join(',');
    this.#table([['NAME', 'TYPE', 'CLUSTER-IP', 'PORT(S)', 'ENDPOINTS'], ['service/deathstar', 'ClusterIP', CLUSTER_IP, '80/TCP', eps]]);

    this.#say(`\n# the node's redirect (namespace ${this.#topo.node}), as a node-level CNI rule installs it:`);
    const rule = await this.#topo.redirect(CLUSTER_IP, PORT, REDIRECT_PORT);
    this.#say(`❯ ip netns exec ${this.#topo.node} ${rule.join(' ')}`);
    this.#admin = `unix:${join(this.#workDir, 'admin.sock')}`;
    this.#flowsFile = join(this.#workDir, 'flows.jsonl');
    const args = ['-f', clusterFile, '--redirect', `0.0.0.0:${REDIRECT_PORT}=${CLUSTER_IP}:${PORT}`,
      '--admin', this.#admin, '--flows', this.#flowsFile, '--cluster-name', 'default'];
    this.#proxy = await startNetnsProxy(this.#topo, CLI, args);
    this.#say(`# started the proxy: ip netns exec ${this.#topo.node} l7guard serve ${args.join(' ').replaceAll(this.#workDir, '$WORK')}`);
    this.#say(`# ${SERVICE_HOST} resolves to ${CLUSTER_IP} (curl --resolve); each ship's packets leave its own namespace from its pod IP.`);
  }

  async #startReplica(pod: NetnsPod): Promise<void> {
    const r = await startNetnsDeathstar(this.#topo, pod, DEATHSTAR_MAIN, this.#journal, PORT);
    this.#replicas.set(pod.name, r);
    r.child.once('exit', (code, signal) => this.#onExit(pod, r.child, code, signal));
  }

  /** A replica that dies is restarted, as the kubelet restarts the container. */
  #onExit(pod: NetnsPod, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#tornDown || this.#replicas.get(pod.name)?.child !== child) return;
    const how = code !== null ? `exit code ${code}` : `signal ${signal}`;
    this.#crashes.push(pod.name);
    this.#restarts.set(pod.name, (this.#restarts.get(pod.name) ?? 0) + 1);
    this.#say(`# ${pod.name} crashed (${how}); restarting it, as the kubelet would`);
    if (!this.#expectingCrash) this.#mismatch(`${pod.name} to keep running`, `a crash (${how})`);
    this.#startReplica(pod).catch((err: Error) => this.#mismatch(`${pod.name} to restart`, err.message));
  }

  #table(rows: readonly (readonly string[])[]): void {
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) this.#say(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd());
  }

  async #step(step: DemoStep): Promise<void> {
    this.#say(`\n=== ${step.title} ===`);
    if (step.apply !== undefined) {
      this.#say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/${step.apply.file}`);
      const file = join(MANIFESTS, step.apply.file);
      const lines = await applyText(this.#admin, await readFile(file, 'utf8'), file);
      const text = lines.map((l) => l.text).join('\n');
      this.#say(text);
      if (lines.some((l) => !l.ok)) this.#mismatch(`${step.apply.file} to apply`, text);
      if (text !== step.apply.output) this.#mismatch(`kubectl's "${step.apply.output}"`, `"${text}"`);
    }
    const flows: string[] = [];
    for (const c of step.commands) flows.push(...(await this.#command(c)));
    this.#say(`\n❯ hubble observe   # this step's decisions`);
    if (flows.length === 0) this.#say('(no flows)');
    for (const f of flows) this.#say(f);
  }

  async #command(c: ShipCommand): Promise<string[]> {
    const ship = this.#topo.pod(c.ship === 'tiefighter' ? 'tf' : 'xw');
    const req = { method: c.method, url: `http://${SERVICE_HOST}${c.path}`, resolve: `${SERVICE_HOST}:${PORT}:${CLUSTER_IP}` };
    const hitStart = this.#journal.length;
    this.#say(`\n❯ ${curlCommandLine(c)}`);
    this.#say(`# = ${curlCommand(ship, req)}`);
    const r = await curlFrom(this.#topo, ship, req);
    if (r.body !== '') this.#say(r.body);
    if (r.exitCode !== 0) {
      this.#say(`command terminated with exit code ${String(r.exitCode)}`);
      this.#say('# no HTTP bytes: the proxy closed the connection. In a cluster the SYN itself is dropped and curl waits for its timeout (exit code 28).');
    }
    const want = SEED_OUTPUT[c.expect];
    const got = r.status === 0 ? `no HTTP response (curl exit ${String(r.exitCode)}${r.body === '' ? '' : `, ${r.body.length} bytes`})` : `HTTP ${r.status} with body ${JSON.stringify(r.body)}`;
    // curl 52 = empty reply, 56 = reset: the two faces of a zero-byte drop.
    const ok = want === undefined
      ? r.status === 0 && r.body === '' && (r.exitCode === 52 || r.exitCode === 56)
      : r.exitCode === 0 && r.status === want.status && r.body === want.body;
    if (!ok) this.#mismatch(`${c.ship} to get ${want === undefined ? 'no HTTP bytes and a closed connection (a drop)' : `HTTP ${want.status} with body ${JSON.stringify(want.body)}`}`, got);

    await sleep(50); // deathstar logs a request before answering it; let the pipe deliver the line
    const hits = this.#journal.slice(hitStart);
    this.#say(hits.length === 0 ? '# reached deathstar: nothing' : `# reached deathstar: ${hits.map((h) => `${h.pod} (${h.method} ${h.path})`).join(', ')}`);
    const range = expectedHits(c);
    const right = hits.filter((h) => h.method === c.method && h.path === c.path);
    if (hits.length < range.min || hits.length > range.max || right.length !== hits.length) {
      const w = range.max === 0 ? 'nothing to reach deathstar' : `${range.min === range.max ? range.min : `${range.min} to ${range.max}`} × ${c.method} ${c.path} at deathstar`;
      this.#mismatch(w, hits.length === 0 ? 'nothing' : hits.map((h) => `${h.method} ${h.path}`).join(', '));
    }
    if (c.expect === 'panic') await this.#awaitCrashes([...new Set(hits.map((h) => h.pod))]);
    return this.#flowsFor(c);
  }

  async #awaitCrashes(pods: readonly string[]): Promise<void> {
    this.#expectingCrash = true;
    try {
      for (const name of pods) {
        const before = this.#crashes.filter((p) => p === name).length;
        const deadline = Date.now() + EXPLODE_AFTER_MS + 3000;
        while (this.#crashes.filter((p) => p === name).length === before && Date.now() < deadline) await sleep(25);
        if (this.#crashes.filter((p) => p === name).length === before) {
          this.#mismatch(`${name} to crash ~2 s after PUT /v1/exhaust-port, like quay.io/cilium/starwars`, 'it kept running');
          continue;
        }
        // Serving again: the restarted replica printed "Serving deathstar" (startNetnsDeathstar waits for it).
        const until = Date.now() + 10_000;
        while (this.#replicas.get(name)?.child.exitCode !== null && Date.now() < until) await sleep(25);
        await sleep(100);
        this.#say(`❯ kubectl get pod ${name}`);
        this.#table([['NAME', 'READY', 'STATUS', 'RESTARTS'], [name, '1/1', 'Running', String(this.#restarts.get(name) ?? 0)]]);
      }
    } finally {
      this.#expectingCrash = false;
    }
  }

  async #flowsFor(c: ShipCommand): Promise<string[]> {
    const wanted = (c.flows ?? []).map((s) => ({ s, prefix: `default/${c.ship}:` }));
    const deadline = Date.now() + (wanted.length > 0 ? FLOW_WAIT_MS : 100);
    let lines: string[] = [];
    let missing = wanted;
    for (;;) {
      lines = (await readFlowFile(this.#flowsFile)).slice(this.#flowsSeen).map(compactLine);
      missing = wanted.filter((w) => !lines.some((l) => l.includes(w.prefix) && l.includes(w.s)));
      if ((missing.length === 0 && wanted.length > 0) || Date.now() >= deadline) break;
      await sleep(50);
    }
    this.#flowsSeen += lines.length;
    for (const m of missing) this.#mismatch(`a flow "${m.prefix}… ${m.s}"`, lines.length === 0 ? 'no flows' : `only:\n    ${lines.join('\n    ')}`);
    return lines;
  }

  async #cleanupStep(): Promise<void> {
    this.#say('\n=== 5. Clean-up ===');
    this.#say(`❯ kubectl delete -f ${SHOWN_MANIFESTS}/http-sw-app.yaml`);
    this.#say('service "deathstar" deleted\ndeployment.apps "deathstar" deleted\npod "tiefighter" deleted\npod "xwing" deleted');
    this.#say('❯ kubectl delete cnp rule1');
    const d = await deleteObject(this.#admin, 'cnp', 'rule1');
    this.#say(d.text);
    if (d.text !== 'ciliumnetworkpolicy.cilium.io "rule1" deleted') this.#mismatch('kubectl\'s "ciliumnetworkpolicy.cilium.io "rule1" deleted"', d.text);
    await this.#teardown();
    this.#say(`❯ ip netns del ${[this.#topo.node, ...[...this.#topo.pods.values()].map((p) => p.netns)].join(' ')}   # links, addresses and the rule go with them`);
  }

  async #teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    await this.#proxy?.stop().catch(() => undefined);
    await this.#topo.destroy();
    if (this.#workDir === '') return;
    if (this.#opts.keep) this.#say(`# kept the work folder: ${this.#workDir}`);
    else await rm(this.#workDir, { recursive: true, force: true });
  }
}
