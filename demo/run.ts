/**
 * `l7guard demo`: Cilium's Star Wars demo (shared/seed/000_7189f68e33f5cc8a.txt), locally, with no
 * cluster. The real http-sw-app.yaml becomes processes on loopback addresses, l7guard stands on the
 * Service's clusterIP:80, and the seed's steps (steps.ts) run as real requests from the ships' pod IPs.
 * Every outcome is checked against the seed: the bytes the ship got, what reached deathstar (from the
 * replicas' request logs), and the decisions in Hubble's compact form. Any difference prints
 * `MISMATCH: ...` and makes the exit code 1.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { applyText, deleteObject } from '../proxy/reload/admin-client.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { curlView, sendShipRequest, type ShipResult } from './client.js';
import { EXPLODE_AFTER_MS } from './deathstar.js';
import { compactLine, readFlowFile } from './flows.js';
import { canBind, planNetwork, runInNetns } from './netns.js';
import { Replica, startProxy, stopChild, type CrashEvent, type ProxyRun, type ReplicaHit } from './processes.js';
import { curlCommandLine, expectedHits, SEED_OUTPUT, SERVICE_HOST, STEPS, type DemoStep, type ShipCommand } from './steps.js';
import { buildTopology, podNamed, podsOf, serviceNamed, writeClusterDir, type DemoTopology } from './topology.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/demo -> the package root (bin/, demo/manifests/). */
const ROOT = resolve(HERE, '..', '..');
const MANIFESTS = join(ROOT, 'demo', 'manifests');
const SHOWN_MANIFESTS = 'demo/manifests';
const PORT = 80;
const CLIENT_TIMEOUT_MS = 5000;
const FLOW_WAIT_MS = 2000;

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
  const topology = buildTopology(await readFile(join(MANIFESTS, 'http-sw-app.yaml'), 'utf8'), { block: opts.block });
  const svc = serviceNamed(topology, 'deathstar');
  const plan = await planNetwork(svc.clusterIP, opts.isolate ?? 'auto');
  if (plan.kind === 'impossible') {
    opts.out.write(`l7guard demo: ${plan.reason}\n`);
    return 2;
  }
  if (plan.kind === 'unshare') {
    opts.out.write('# not root: running in a new user + network namespace (unshare --user --map-root-user --net)\n');
    const passOn = { keep: opts.keep, block: opts.block, proxyCommand: opts.proxyCommand };
    return runInNetns(plan, join(HERE, 'demo-main.js'), opts.out, { [OPTS_ENV]: JSON.stringify(passOn) });
  }
  return new Demo(opts, topology).run();
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

class Demo {
  readonly #out: NodeJS.WritableStream;
  readonly #opts: DemoOptions;
  readonly #t: DemoTopology;
  readonly #clusterIP: string;
  readonly #hits: ReplicaHit[] = [];
  readonly #crashes: CrashEvent[] = [];
  readonly #mismatches: string[] = [];
  #replicas: Replica[] = [];
  #proxy: ProxyRun | undefined;
  /** Policy files already applied to the running proxy, in order. */
  readonly #applied: string[] = [];
  #proxyRuns = 0;
  #flowsSeen = 0;
  #workDir: string | undefined;
  #clusterFile = '';
  #expectingCrash = false;
  #tornDown = false;

  constructor(opts: DemoOptions, t: DemoTopology) {
    this.#out = opts.out;
    this.#opts = opts;
    this.#t = t;
    this.#clusterIP = serviceNamed(t, 'deathstar').clusterIP;
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
      this.#workDir = await mkdtemp(join(tmpdir(), 'l7guard-demo-'));
      this.#clusterFile = await writeClusterDir(this.#t, join(this.#workDir, 'cluster'));
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
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (this.#mismatches.length === 0) {
      this.#say(`\nOK: every outcome matches the seed (${secs} s).`);
      return 0;
    }
    this.#say(`\n${this.#mismatches.length} difference(s) from the seed (${secs} s):`);
    for (const m of this.#mismatches) this.#say(`  ${m}`);
    return 1;
  }

  async #deploy(): Promise<void> {
    this.#say('=== Deploy the Star Wars demo (http-sw-app.yaml) ===');
    this.#say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/http-sw-app.yaml`);
    this.#say('service/deathstar created\ndeployment.apps/deathstar created\npod/tiefighter created\npod/xwing created');
    this.#replicas = podsOf(this.#t, 'deathstar').map((pod) => new Replica({
      pod,
      mainScript: join(HERE, 'deathstar-main.js'),
      port: PORT,
      onHit: (name, hit) => this.#hits.push({ ...hit, pod: name, seq: this.#hits.length }),
      onCrash: (e) => this.#onCrash(e),
    }));
    await Promise.all(this.#replicas.map((r) => r.start()));
    this.#say('\n❯ kubectl get pod -o wide --show-labels');
    const rows = this.#t.pods.map((p) => [p.name, '1/1', 'Running', '0', p.ip,
      Object.entries(p.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',')]);
    this.#table([['NAME', 'READY', 'STATUS', 'RESTARTS', 'IP', 'LABELS'], ...rows]);
    const svc = serviceNamed(this.#t, 'deathstar');
    this.#say('\n❯ kubectl get svc,ep deathstar');
    this.#table([['NAME', 'TYPE', 'CLUSTER-IP', 'PORT(S)', 'ENDPOINTS'],
      ['service/deathstar', 'ClusterIP', svc.clusterIP, '80/TCP', this.#replicas.map((r) => `${r.pod.ip}:${PORT}`).join(',')]]);
    this.#say(`# tiefighter and xwing are their pod IPs: each curl leaves from that address; ${SERVICE_HOST} resolves to ${svc.clusterIP}.`);
  }

  #table(rows: readonly (readonly string[])[]): void {
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) this.#say(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd());
  }

  #onCrash(e: CrashEvent): void {
    const how = e.code !== null ? `exit code ${e.code}` : `signal ${e.signal}`;
    this.#crashes.push(e);
    this.#say(`# ${e.pod} crashed (${e.lastWords.trim() || how}; ${how}); restarting it, as the kubelet would`);
    if (!this.#expectingCrash) this.#mismatch(`${e.pod} to keep running`, `a crash (${how})`);
  }

  /** The proxy starts once, on the cluster alone; policies then arrive through hot reload. */
  async #ensureProxy(): Promise<void> {
    if (this.#proxy !== undefined) return;
    const command = this.#opts.proxyCommand ?? [process.execPath, join(ROOT, 'bin', 'l7guard.js')];
    this.#proxy = await startProxy({
      command, files: [this.#clusterFile], listen: `${this.#clusterIP}:${PORT}`, workDir: this.#workDir!, run: ++this.#proxyRuns,
    });
    this.#flowsSeen = 0;
    const shown = ['l7guard', ...this.#proxy.argv.slice(command.length)]
      .map((a) => a.startsWith(this.#workDir!) ? `$WORK${a.slice(this.#workDir!.length)}` : a.startsWith(ROOT) ? a.slice(ROOT.length + 1) : a);
    this.#say(`# started the proxy: ${shown.join(' ')}`);
  }

  /**
   * `kubectl apply -f` is `l7guard apply -f` against the running proxy's admin API: each object is
   * PUT, compiled and swapped in before the answer, so the next request is judged by it. The answer
   * lines are kubectl's and must be the seed's (`created`, then `configured` for the L7 rule1).
   */
  async #applyPolicies(policies: readonly string[], expected: string | undefined): Promise<void> {
    const fresh = policies.filter((p) => !this.#applied.includes(p));
    const lines: string[] = [];
    for (const p of fresh) {
      const file = join(MANIFESTS, p);
      for (const l of await applyText(this.#proxy!.adminAddr, await readFile(file, 'utf8'), file)) {
        lines.push(l.text);
        if (!l.ok) this.#mismatch(`${p} to apply`, l.text);
      }
      this.#applied.push(p);
    }
    if (lines.length > 0) this.#say(lines.join('\n'));
    if (expected !== undefined && lines.join('\n') !== expected) this.#mismatch(`kubectl's "${expected}"`, `"${lines.join('\n')}"`);
  }

  async #step(step: DemoStep): Promise<void> {
    this.#say(`\n=== ${step.title} ===`);
    if (step.apply !== undefined) this.#say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/${step.apply.file}`);
    await this.#ensureProxy();
    await this.#applyPolicies(step.policies, step.apply?.output);
    const flows: string[] = [];
    for (const c of step.commands) flows.push(...(await this.#command(c)));
    this.#say(`\n❯ hubble observe   # this step's decisions`);
    if (flows.length === 0) this.#say('(no flows)');
    for (const f of flows) this.#say(f);
  }

  async #command(c: ShipCommand): Promise<string[]> {
    const ship = podNamed(this.#t, c.ship);
    const hitStart = this.#hits.length;
    this.#say(`\n❯ ${curlCommandLine(c)}`);
    const r = await sendShipRequest({
      localAddress: ship.ip, ip: this.#clusterIP, port: PORT, host: SERVICE_HOST,
      method: c.method, path: c.path, timeoutMs: CLIENT_TIMEOUT_MS,
    });
    const view = curlView(r);
    if (view.stdout !== '') this.#say(view.stdout);
    if (view.exitCode !== 0) {
      this.#say(`command terminated with exit code ${view.exitCode}`);
      this.#say(`# ${describeResult(r)}. In a cluster the SYN itself is dropped and curl waits for its timeout (exit code 28).`);
    }

    const want = SEED_OUTPUT[c.expect];
    const ok = want === undefined
      ? r.kind === 'no-bytes'
      : r.kind === 'response' && r.status === want.status && r.body.equals(Buffer.from(want.body));
    if (!ok) this.#mismatch(`${c.ship} to get ${describeExpected(c)}`, describeResult(r));

    // deathstar logs a request synchronously before answering it; give the pipe a moment to deliver.
    await sleep(50);
    const hits = this.#hits.slice(hitStart);
    this.#say(hits.length === 0
      ? '# reached deathstar: nothing'
      : `# reached deathstar: ${hits.map((h) => `${h.pod} (${h.method} ${h.path})`).join(', ')}`);
    const range = expectedHits(c);
    const right = hits.filter((h) => h.method === c.method && h.path === c.path);
    if (hits.length < range.min || hits.length > range.max || right.length !== hits.length) {
      const want = range.max === 0 ? 'nothing to reach deathstar'
        : `${range.min === range.max ? range.min : `${range.min} to ${range.max}`} × ${c.method} ${c.path} at deathstar`;
      this.#mismatch(want, hits.length === 0 ? 'nothing' : hits.map((h) => `${h.method} ${h.path}`).join(', '));
    }
    if (c.expect === 'panic') await this.#awaitCrashes([...new Set(hits.map((h) => h.pod))]);
    return this.#flowsFor(c);
  }

  /** Each replica that got the exhaust-port call must die ~2 s later and be serving again afterwards. */
  async #awaitCrashes(pods: readonly string[]): Promise<void> {
    this.#expectingCrash = true;
    try {
      for (const name of pods) {
        const replica = this.#replicas.find((r) => r.pod.name === name)!;
        const before = this.#crashes.filter((e) => e.pod === name).length;
        const deadline = Date.now() + EXPLODE_AFTER_MS + 3000;
        while (this.#crashes.filter((e) => e.pod === name).length === before && Date.now() < deadline) await sleep(25);
        if (this.#crashes.filter((e) => e.pod === name).length === before) {
          this.#mismatch(`${name} to crash ~2 s after PUT /v1/exhaust-port, like quay.io/cilium/starwars`, 'it kept running');
          continue;
        }
        await replica.ready();
        this.#say(`❯ kubectl get pod ${name}`);
        this.#table([['NAME', 'READY', 'STATUS', 'RESTARTS'], [name, '1/1', 'Running', String(replica.restarts)]]);
      }
    } finally {
      this.#expectingCrash = false;
    }
  }

  /** This command's new flows, rendered; waits (bounded) for the ones the step table expects. */
  async #flowsFor(c: ShipCommand): Promise<string[]> {
    const proxy = this.#proxy!;
    const wanted = (c.flows ?? []).map((s) => ({ s, prefix: `default/${c.ship}:` }));
    const deadline = Date.now() + (wanted.length > 0 ? FLOW_WAIT_MS : 100);
    let lines: string[] = [];
    let missing = wanted;
    for (;;) {
      const all = await readFlowFile(proxy.flowsFile);
      lines = all.slice(this.#flowsSeen).map(compactLine);
      missing = wanted.filter((w) => !lines.some((l) => l.includes(w.prefix) && l.includes(w.s)));
      if (missing.length === 0 && wanted.length > 0) break;
      if (Date.now() >= deadline) break;
      await sleep(50);
    }
    this.#flowsSeen += lines.length;
    for (const m of missing) {
      this.#mismatch(`a flow "${m.prefix}… ${m.s}"`, lines.length === 0 ? 'no flows' : `only:\n    ${lines.join('\n    ')}`);
    }
    return lines;
  }

  async #cleanupStep(): Promise<void> {
    this.#say('\n=== 5. Clean-up ===');
    this.#say(`❯ kubectl delete -f ${SHOWN_MANIFESTS}/http-sw-app.yaml`);
    await Promise.all(this.#replicas.map((r) => r.stop()));
    this.#say('service "deathstar" deleted\ndeployment.apps "deathstar" deleted\npod "tiefighter" deleted\npod "xwing" deleted');
    this.#say('❯ kubectl delete cnp rule1');
    if (this.#proxy !== undefined) {
      const d = await deleteObject(this.#proxy.adminAddr, 'cnp', 'rule1');
      this.#say(d.text);
      if (d.text !== 'ciliumnetworkpolicy.cilium.io "rule1" deleted') this.#mismatch('kubectl\'s "ciliumnetworkpolicy.cilium.io "rule1" deleted"', d.text);
    }
    await stopChild(this.#proxy?.child);
    this.#proxy = undefined;
    // Everything must really be gone: every address the demo served on is free again.
    const addrs = [this.#clusterIP, ...this.#replicas.map((r) => r.pod.ip)];
    for (const ip of addrs) {
      if (!(await canBind(ip, PORT))) this.#mismatch(`${ip}:${PORT} to be free after clean-up`, 'it is still bound');
    }
  }

  async #teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    await stopChild(this.#proxy?.child).catch(() => undefined);
    await Promise.all(this.#replicas.map((r) => r.stop().catch(() => undefined)));
    if (this.#workDir === undefined) return;
    if (this.#opts.keep) this.#say(`# kept the work folder: ${this.#workDir}`);
    else await rm(this.#workDir, { recursive: true, force: true });
  }
}
