/**
 * `l7guard demo`: Cilium's Star Wars demo (docs/semantics.md#the-star-wars-demo), locally, with no
 * cluster. The real http-sw-app.yaml becomes processes on loopback addresses, l7guard stands on the
 * Service's clusterIP:80, and the demo's steps (steps.ts) run as real requests from the ships' pod IPs.
 * Every outcome is checked against Cilium's: the bytes the ship got, what reached deathstar (from the
 * replicas' request logs), and the decisions in Hubble's compact form. Any difference prints
 * `MISMATCH: ...` and makes the exit code 1.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildCluster, clusterYaml, deathstarPods, GENERATED_NAMING, loopbackAddresses, manifestPath, podNamed, SERVICE_HOST, type StarWarsCluster,
} from '../fixtures/star-wars.js';
import { applyText } from '../proxy/admin/client.js';
import { curlView, sendShipRequest, type ShipResult } from './client.js';
import { DemoRunner, HERE, labelList, PORT, ROOT, type DemoHit } from './demo-runner.js';
import { canBind, planNetwork, runInNetns } from './netns.js';
import { Replica, startProxy, stopChild, type CrashEvent, type ProxyRun, type ReplicaHit } from './processes.js';
import { SEED_OUTPUT, type DemoStep, type ShipCommand } from './steps.js';

const CLIENT_TIMEOUT_MS = 5000;

export interface DemoOptions {
  readonly out: NodeJS.WritableStream;
  /** Keep the work folder (cluster YAML, flows-N.jsonl, proxy-N.log) and print its path. */
  readonly keep?: boolean;
  /** Loopback /24 for Pods and Services (default 127.0.10.0/24). */
  readonly block?: string;
  /** The proxy's command line before `serve ...` (default: this node + <package>/bin/l7guard.js). */
  readonly proxyCommand?: readonly string[];
  /** 'never': fail (exit 2) instead of re-executing in a user + network namespace when not root. */
  readonly isolate?: 'auto' | 'never';
}

/** Options passed to the re-executed demo (demo-main.ts) through the environment. */
export const OPTS_ENV = 'L7GUARD_DEMO_OPTS';

export async function runDemo(opts: DemoOptions): Promise<number> {
  // The Deployment's Pods are named as the ReplicaSet controller would name them; addresses on loopback.
  const cluster = buildCluster({ addresses: loopbackAddresses(opts.block), naming: GENERATED_NAMING });
  const plan = await planNetwork(cluster.service.clusterIP, opts.isolate ?? 'auto');
  if (plan.kind === 'impossible') {
    opts.out.write(`l7guard demo: ${plan.reason}\n`);
    return 2;
  }
  if (plan.kind === 'unshare') {
    opts.out.write('# not root: running in a new user + network namespace (unshare --user --map-root-user --net)\n');
    const passOn = { keep: opts.keep, block: opts.block, proxyCommand: opts.proxyCommand };
    return runInNetns(plan, join(HERE, 'demo-main.js'), opts.out, { [OPTS_ENV]: JSON.stringify(passOn) });
  }
  return new Demo(opts, cluster).run();
}

function quote(b: Buffer | string, max = 120): string {
  const s = JSON.stringify(b.toString());
  return s.length > max ? `${s.slice(0, max)}..."` : s;
}

function describeResult(r: ShipResult): string {
  switch (r.kind) {
    case 'response':
      return `HTTP ${r.status} with body ${quote(r.body)}`;
    case 'no-bytes':
      return `no HTTP bytes (connection ${r.reset ? 'reset' : 'closed'} by the proxy)`;
    case 'garbage':
      return `${r.bytes} bytes that are not an HTTP response (${r.reason})`;
    case 'refused':
      return `connection refused (${r.error})`;
    case 'timeout':
      return `nothing within ${CLIENT_TIMEOUT_MS / 1000} s (${r.bytes} bytes), connection still open`;
  }
}

function describeExpected(c: ShipCommand): string {
  const want = SEED_OUTPUT[c.expect];
  if (want === undefined) return 'no HTTP bytes and a closed connection (a drop)';
  return `HTTP ${want.status} with body ${quote(want.body)}`;
}

class Demo extends DemoRunner {
  readonly #opts: DemoOptions;
  readonly #t: StarWarsCluster;
  readonly #clusterIP: string;
  readonly #hits: ReplicaHit[] = [];
  #replicas: Replica[] = [];
  #proxy: ProxyRun | undefined;
  /** Every proxy process started and not yet exited, ready or not. */
  readonly #proxyChildren = new Set<ChildProcess>();
  /** Policy files already applied to the running proxy, in order. */
  readonly #applied: string[] = [];
  #proxyRuns = 0;
  #clusterFile = '';

  constructor(opts: DemoOptions, t: StarWarsCluster) {
    super(opts, 'l7guard-demo-');
    this.#opts = opts;
    this.#t = t;
    this.#clusterIP = t.service.clusterIP;
  }

  protected async deploy(): Promise<void> {
    const dir = join(this.workDir!, 'cluster');
    await mkdir(dir, { recursive: true });
    this.#clusterFile = join(dir, 'cluster.yaml');
    await writeFile(this.#clusterFile, clusterYaml(this.#t), 'utf8');
    this.deployHeader();
    this.#replicas = deathstarPods(this.#t).map((pod) => new Replica({
      pod,
      mainScript: join(HERE, 'deathstar-main.js'),
      port: PORT,
      onHit: (name, hit) => this.#hits.push({ ...hit, pod: name, seq: this.#hits.length }),
      onCrash: (e) => this.#onCrash(e),
    }));
    await Promise.all(this.#replicas.map((r) => r.start()));
    this.say('\n❯ kubectl get pod -o wide --show-labels');
    const rows = this.#t.pods.map((p) => [p.name, '1/1', 'Running', '0', p.ip, labelList(p.labels)]);
    this.table([['NAME', 'READY', 'STATUS', 'RESTARTS', 'IP', 'LABELS'], ...rows]);
    const svc = this.#t.service;
    this.say('\n❯ kubectl get svc,ep deathstar');
    this.table([['NAME', 'TYPE', 'CLUSTER-IP', 'PORT(S)', 'ENDPOINTS'],
      ['service/deathstar', 'ClusterIP', svc.clusterIP, '80/TCP', this.#replicas.map((r) => `${r.pod.ip}:${PORT}`).join(',')]]);
    this.say(`# tiefighter and xwing are their pod IPs: each curl leaves from that address; ${SERVICE_HOST} resolves to ${svc.clusterIP}.`);
  }

  #onCrash(e: CrashEvent): void {
    const how = e.code !== null ? `exit code ${e.code}` : `signal ${e.signal}`;
    this.crashed(e.pod, how, `${e.lastWords.trim() || how}; ${how}`);
  }

  /** The proxy starts once, on the cluster alone; policies then arrive through hot reload. */
  async #ensureProxy(): Promise<void> {
    if (this.#proxy !== undefined) return;
    const command = this.#opts.proxyCommand ?? [process.execPath, join(ROOT, 'bin', 'l7guard.js')];
    const workDir = this.workDir!;
    this.#proxy = await startProxy({
      command, files: [this.#clusterFile], listen: `${this.#clusterIP}:${PORT}`, workDir, run: ++this.#proxyRuns,
      onSpawn: (child) => {
        this.#proxyChildren.add(child);
        child.once('exit', () => this.#proxyChildren.delete(child));
        if (this.tornDown) void stopChild(child);
      },
    });
    this.resetFlows();
    const shown = ['l7guard', ...this.#proxy.argv.slice(command.length)]
      .map((a) => a.startsWith(workDir) ? `$WORK${a.slice(workDir.length)}` : a.startsWith(ROOT) ? a.slice(ROOT.length + 1) : a);
    this.say(`# started the proxy: ${shown.join(' ')}`);
  }

  protected async applyStep(step: DemoStep): Promise<void> {
    await this.#ensureProxy();
    await this.#applyPolicies(step.policies, step.apply?.output);
  }

  /**
   * `kubectl apply -f` is `l7guard apply -f` against the running proxy's admin API: each object is
   * PUT, compiled and swapped in before the answer, so the next request is judged by it. The answer
   * lines are kubectl's and must be what kubectl prints (`created`, then `configured` for the L7 rule1).
   */
  async #applyPolicies(policies: readonly string[], expected: string | undefined): Promise<void> {
    const fresh = policies.filter((p) => !this.#applied.includes(p));
    const lines: string[] = [];
    for (const p of fresh) {
      const file = manifestPath(p);
      for (const l of await applyText(this.#proxy!.adminAddr, await readFile(file, 'utf8'), file)) {
        lines.push(l.text);
        if (!l.ok) this.mismatch(`${p} to apply`, l.text);
      }
      this.#applied.push(p);
    }
    if (lines.length > 0) this.say(lines.join('\n'));
    if (expected !== undefined && lines.join('\n') !== expected) this.mismatch(`kubectl's "${expected}"`, `"${lines.join('\n')}"`);
  }

  protected async shipRequest(c: ShipCommand): Promise<void> {
    const ship = podNamed(this.#t, c.ship);
    const r = await sendShipRequest({
      localAddress: ship.ip, ip: this.#clusterIP, port: PORT, host: SERVICE_HOST,
      method: c.method, path: c.path, timeoutMs: CLIENT_TIMEOUT_MS,
    });
    const view = curlView(r);
    if (view.stdout !== '') this.say(view.stdout);
    if (view.exitCode !== 0) {
      this.say(`command terminated with exit code ${view.exitCode}`);
      this.say(`# ${describeResult(r)}. In a cluster the SYN itself is dropped and curl waits for its timeout (exit code 28).`);
    }

    const want = SEED_OUTPUT[c.expect];
    const ok = want === undefined
      ? r.kind === 'no-bytes'
      : r.kind === 'response' && r.status === want.status && r.body.equals(Buffer.from(want.body));
    if (!ok) this.mismatch(`${c.ship} to get ${describeExpected(c)}`, describeResult(r));
  }

  protected hitLog(): readonly DemoHit[] {
    return this.#hits;
  }

  protected async replicaReady(name: string): Promise<number> {
    const replica = this.#replicas.find((r) => r.pod.name === name)!;
    await replica.ready();
    return replica.restarts;
  }

  protected flowsFile(): string {
    return this.#proxy!.flowsFile;
  }

  protected async cleanupStep(): Promise<void> {
    this.cleanupHeader();
    await Promise.all(this.#replicas.map((r) => r.stop()));
    this.appDeleted();
    if (this.#proxy !== undefined) await this.deleteRule1(this.#proxy.adminAddr);
    await stopChild(this.#proxy?.child);
    this.#proxy = undefined;
    // Everything must really be gone: every address the demo served on is free again.
    const addrs = [this.#clusterIP, ...this.#replicas.map((r) => r.pod.ip)];
    for (const ip of addrs) {
      if (!(await canBind(ip, PORT))) this.mismatch(`${ip}:${PORT} to be free after clean-up`, 'it is still bound');
    }
  }

  protected async stopAll(): Promise<void> {
    await Promise.all([...this.#proxyChildren].map((c) => stopChild(c).catch(() => undefined)));
    await Promise.all(this.#replicas.map((r) => r.stop().catch(() => undefined)));
  }
}
