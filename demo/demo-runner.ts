/**
 * What the two Star Wars demo runners share: the loopback one (run.ts, `l7guard demo`) and the
 * network-namespace one (run-netns.ts, `l7guard demo --netns`). The transcript, the bookkeeping of
 * differences from Cilium's outcomes, the run skeleton (signals, work folder, deploy → steps → clean-up →
 * teardown, the OK / N differences summary) and the checks that do not depend on how processes
 * start or how a ship's request travels live here; each runner supplies those parts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { APP_MANIFEST } from '../fixtures/star-wars.js';
import { deleteObject } from '../proxy/admin/client.js';
import { EXPLODE_AFTER_MS } from './deathstar.js';
import { compactLine, readFlowFile } from './flows.js';
import { endExitCode, onDemoEnd, type DemoEnd } from './on-end.js';
import { curlCommandLine, expectedHits, STEPS, type DemoStep, type ShipCommand } from './steps.js';

/** dist/demo (both runners live here). */
export const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/demo -> the package root (bin/). */
export const ROOT = resolve(HERE, '..', '..');
export const SHOWN_MANIFESTS = 'demo/manifests';
export const PORT = 80;
export const FLOW_WAIT_MS = 2000;

/** A request a deathstar replica logged. */
export interface DemoHit {
  readonly pod: string;
  readonly method: string;
  readonly path: string;
}

export interface RunnerOptions {
  readonly out: NodeJS.WritableStream;
  /** Keep the work folder and print its path. */
  readonly keep?: boolean;
}

/** `key=value,...` in label order, as `kubectl get pod --show-labels` prints them. */
export function labelList(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
}

export abstract class DemoRunner {
  readonly #out: NodeJS.WritableStream;
  readonly #keep: boolean;
  readonly #workPrefix: string;
  readonly #mismatches: string[] = [];
  /** Pod names, one entry per crash seen. */
  readonly #crashes: string[] = [];
  #expectingCrash = false;
  #flowsSeen = 0;
  #teardown: Promise<void> | undefined;
  /** Nobody reads the transcript any more (EPIPE): say() writes nothing. */
  #outClosed = false;
  protected workDir: string | undefined;

  constructor(opts: RunnerOptions, workPrefix: string) {
    this.#out = opts.out;
    this.#keep = opts.keep === true;
    this.#workPrefix = workPrefix;
  }

  // --- what each runner supplies -------------------------------------------------------------

  /** Starts the deathstar replicas (and whatever else) and prints the deploy part of the transcript. */
  protected abstract deploy(): Promise<void>;
  /** After the step's title and `kubectl apply` line: gets the step's policies in force. */
  protected abstract applyStep(step: DemoStep): Promise<void>;
  /** Makes the ship's request, prints what curl shows and checks it against Cilium's outcome. */
  protected abstract shipRequest(c: ShipCommand): Promise<void>;
  /** Every request the replicas logged so far, in order. */
  protected abstract hitLog(): readonly DemoHit[];
  /** Waits until the restarted replica serves again; returns its restart count. */
  protected abstract replicaReady(name: string): Promise<number>;
  /** The proxy's flow log. */
  protected abstract flowsFile(): string;
  /** The demo's clean-up step. */
  protected abstract cleanupStep(): Promise<void>;
  /** Stops every process the demo started (once, from teardown). */
  protected abstract stopAll(): Promise<void>;
  /** After teardown, before the summary (e.g. checks that nothing is left behind). */
  protected afterTeardown(): void {}
  /** Appended to the OK line. */
  protected okSuffix(): string {
    return '';
  }

  // --- output and bookkeeping ----------------------------------------------------------------

  protected say(text = ''): void {
    if (this.#outClosed) return;
    this.#out.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  protected mismatch(expected: string, got: string): void {
    const line = `MISMATCH: expected ${expected}, got ${got}`;
    this.#mismatches.push(line);
    this.say(line);
  }

  protected table(rows: readonly (readonly string[])[]): void {
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) this.say(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd());
  }

  protected get tornDown(): boolean {
    return this.#teardown !== undefined;
  }

  /** A replica died: counted, reported, and a difference unless a crash was due. */
  protected crashed(pod: string, how: string, said = how): void {
    this.#crashes.push(pod);
    this.say(`# ${pod} crashed (${said}); restarting it, as the kubelet would`);
    if (!this.#expectingCrash) this.mismatch(`${pod} to keep running`, `a crash (${how})`);
  }

  // --- the run ------------------------------------------------------------------------------

  async run(): Promise<number> {
    // Ended from outside: stop everything, remove the folder, then exit with the shell's code for it.
    const release = onDemoEnd(this.#out, (end: DemoEnd) => {
      if (end.kind === 'signal') this.say(`\n# ${end.signal}: cleaning up`);
      else if (end.kind === 'output-closed') this.#outClosed = true;
      else process.stderr.write(`l7guard demo: internal error (a bug; cleaning up): ${(end.error as Error)?.stack ?? String(end.error)}\n`);
      void this.teardown().finally(() => process.exit(endExitCode(end)));
    });
    const started = Date.now();
    try {
      const dir = await mkdtemp(join(tmpdir(), this.#workPrefix));
      if (this.tornDown) await rm(dir, { recursive: true, force: true }); // ended while it was being made
      this.workDir = dir;
      await this.deploy();
      for (const step of STEPS) await this.#step(step);
      await this.cleanupStep();
    } catch (err) {
      this.#mismatches.push(String(err));
      this.say(`\nFAILED: ${(err as Error).message}`);
    } finally {
      await this.teardown();
    }
    try {
      this.afterTeardown();
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (this.#mismatches.length === 0) {
        this.say(`\nOK: every outcome matches Cilium's (${secs} s)${this.okSuffix()}.`);
        return 0;
      }
      this.say(`\n${this.#mismatches.length} difference(s) from Cilium's outcomes (${secs} s):`);
      for (const m of this.#mismatches) this.say(`  ${m}`);
      return 1;
    } finally {
      release();
    }
  }

  /** The deploy step's opening lines. */
  protected deployHeader(where = ''): void {
    this.say(`=== Deploy the Star Wars demo (${APP_MANIFEST})${where} ===`);
    this.say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/${APP_MANIFEST}`);
    this.say('service/deathstar created\ndeployment.apps/deathstar created\npod/tiefighter created\npod/xwing created');
  }

  async #step(step: DemoStep): Promise<void> {
    this.say(`\n=== ${step.title} ===`);
    if (step.apply !== undefined) this.say(`❯ kubectl apply -f ${SHOWN_MANIFESTS}/${step.apply.file}`);
    await this.applyStep(step);
    const flows: string[] = [];
    for (const c of step.commands) flows.push(...(await this.#command(c)));
    this.say(`\n❯ hubble observe   # this step's decisions`);
    if (flows.length === 0) this.say('(no flows)');
    for (const f of flows) this.say(f);
  }

  async #command(c: ShipCommand): Promise<string[]> {
    const hitStart = this.hitLog().length;
    this.say(`\n❯ ${curlCommandLine(c)}`);
    await this.shipRequest(c);

    // deathstar logs a request synchronously before answering it; give the pipe a moment to deliver.
    await sleep(50);
    const hits = this.hitLog().slice(hitStart);
    this.say(hits.length === 0
      ? '# reached deathstar: nothing'
      : `# reached deathstar: ${hits.map((h) => `${h.pod} (${h.method} ${h.path})`).join(', ')}`);
    const range = expectedHits(c);
    const right = hits.filter((h) => h.method === c.method && h.path === c.path);
    if (hits.length < range.min || hits.length > range.max || right.length !== hits.length) {
      const want = range.max === 0 ? 'nothing to reach deathstar'
        : `${range.min === range.max ? range.min : `${range.min} to ${range.max}`} × ${c.method} ${c.path} at deathstar`;
      this.mismatch(want, hits.length === 0 ? 'nothing' : hits.map((h) => `${h.method} ${h.path}`).join(', '));
    }
    if (c.expect === 'panic') await this.#awaitCrashes([...new Set(hits.map((h) => h.pod))]);
    return this.#flowsFor(c);
  }

  /** Each replica that got the exhaust-port call must die ~2 s later and be serving again afterwards. */
  async #awaitCrashes(pods: readonly string[]): Promise<void> {
    this.#expectingCrash = true;
    try {
      for (const name of pods) {
        const crashes = () => this.#crashes.filter((p) => p === name).length;
        const before = crashes();
        const deadline = Date.now() + EXPLODE_AFTER_MS + 3000;
        while (crashes() === before && Date.now() < deadline) await sleep(25);
        if (crashes() === before) {
          this.mismatch(`${name} to crash ~2 s after PUT /v1/exhaust-port, like quay.io/cilium/starwars`, 'it kept running');
          continue;
        }
        const restarts = await this.replicaReady(name);
        this.say(`❯ kubectl get pod ${name}`);
        this.table([['NAME', 'READY', 'STATUS', 'RESTARTS'], [name, '1/1', 'Running', String(restarts)]]);
      }
    } finally {
      this.#expectingCrash = false;
    }
  }

  /** A fresh proxy writes a fresh flow log: start counting its lines from the top. */
  protected resetFlows(): void {
    this.#flowsSeen = 0;
  }

  /** This command's new flows, rendered; waits (bounded) for the ones the step table expects. */
  async #flowsFor(c: ShipCommand): Promise<string[]> {
    const file = this.flowsFile();
    const wanted = (c.flows ?? []).map((s) => ({ s, prefix: `default/${c.ship}:` }));
    const deadline = Date.now() + (wanted.length > 0 ? FLOW_WAIT_MS : 100);
    let lines: string[] = [];
    let missing = wanted;
    for (;;) {
      lines = (await readFlowFile(file)).slice(this.#flowsSeen).map(compactLine);
      missing = wanted.filter((w) => !lines.some((l) => l.includes(w.prefix) && l.includes(w.s)));
      if ((missing.length === 0 && wanted.length > 0) || Date.now() >= deadline) break;
      await sleep(50);
    }
    this.#flowsSeen += lines.length;
    for (const m of missing) {
      this.mismatch(`a flow "${m.prefix}… ${m.s}"`, lines.length === 0 ? 'no flows' : `only:\n    ${lines.join('\n    ')}`);
    }
    return lines;
  }

  /** The clean-up step's opening lines. */
  protected cleanupHeader(): void {
    this.say('\n=== 5. Clean-up ===');
    this.say(`❯ kubectl delete -f ${SHOWN_MANIFESTS}/${APP_MANIFEST}`);
  }

  /** kubectl's answer to deleting http-sw-app.yaml, then the policy's deletion command line. */
  protected appDeleted(): void {
    this.say('service "deathstar" deleted\ndeployment.apps "deathstar" deleted\npod "tiefighter" deleted\npod "xwing" deleted');
    this.say('❯ kubectl delete cnp rule1');
  }

  /** `kubectl delete cnp rule1` against the proxy's admin API; the answer must be kubectl's. */
  protected async deleteRule1(adminAddr: string): Promise<void> {
    const d = await deleteObject(adminAddr, 'cnp', 'rule1');
    this.say(d.text);
    if (d.text !== 'ciliumnetworkpolicy.cilium.io "rule1" deleted') this.mismatch('kubectl\'s "ciliumnetworkpolicy.cilium.io "rule1" deleted"', d.text);
  }

  /**
   * Stops everything once (at the end, on failure, on a signal) and removes or keeps the work folder;
   * every caller waits for the same clean-up.
   */
  protected teardown(): Promise<void> {
    this.#teardown ??= (async () => {
      await this.stopAll();
      if (this.workDir === undefined) return;
      if (this.#keep) this.say(`# kept the work folder: ${this.workDir}`);
      else await rm(this.workDir, { recursive: true, force: true });
    })();
    return this.#teardown;
  }
}
