/**
 * The one place policy changes happen. Every trigger — a file event, the poll, SIGHUP, `POST /reload`,
 * an admin `PUT`/`DELETE` — becomes a job on one serial queue, and every job runs the same pipeline:
 *
 *   inputs (the -f files + the API overlay) → parse → validate → compile (buildPolicyState with the
 *   previous state, so identity and endpoint numbers stay stable) → one StateRef.swap
 *
 * A job that fails at any stage swaps nothing: the running revision stays in force, the reason is
 * logged and counted. Requests never wait for this: they read `StateRef.current` once and keep it.
 *
 * Inputs are policy sources (proxy/sources/): the `-f` files, the Kubernetes API (`--kubernetes`)
 * and the admin API's overlay, combined in that order (a later one wins on a kind/namespace/name
 * clash). A job rebuilds with one source's new contribution and the others' contributions in force:
 * - Files are re-read by file-triggered jobs only, so a half-edited file on disk never blocks (or
 *   leaks into) an API or Kubernetes change. A bad file rejects the whole file change.
 * - The overlay survives file reloads and SIGHUP until deleted through the API.
 * - Kubernetes changes are isolated: an invalid object is left out alone (its last accepted version
 *   stays in force), since one bad object in one namespace must not freeze everybody's policy.
 *
 * Multi-worker hand-off: a PolicyState holds compiled closures and cannot cross a process.
 * `snapshot()` is the serialisable form of a revision (the validated objects and its number); since
 * buildPolicyState is deterministic given the same objects and previous state, a worker that
 * rebuilds every snapshot reaches the same identities and verdicts (cluster/messages.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  buildPolicyState, buildPolicyStateSliced, formatProblem, objectKey, PolicyLoadError, ProblemCodes, type BuildOptions, type LoadProblem,
  locateProblems, type PolicyState, type SourcedObject,
} from '../../policy/index.js';
import type { StateRef } from '../state-ref.js';
import { ApiSource } from '../sources/api-source.js';
import { FileSource } from '../sources/file-source.js';
import type { WatchOptions } from '../sources/file-watcher.js';
import { parsedTexts, type FileSnapshot, type SourceFile } from '../sources/file-snapshot.js';
import { provenance, type Isolation, type PolicySource, type RunningSource, type SourceHost, type SubmitTrigger } from '../sources/source.js';
import { ApplyError } from './errors.js';

export { API_SOURCE } from '../sources/api-source.js';

export type ReloadTrigger = SubmitTrigger;

/** Rounds of leaving out rejected objects before a Kubernetes change is refused as a whole. */
const MAX_ISOLATION_ROUNDS = 8;

export interface ReloadOutcome {
  /** True when the inputs compiled (a swap happened, or nothing had changed). */
  readonly ok: boolean;
  readonly changed: boolean;
  /** The revision in force after this job. */
  readonly revision: number;
  readonly error: PolicyLoadError | undefined;
}

/** One finished job, for metrics (`l7guard_policy_reload_total{result}` and the like). */
export interface ReloadEvent {
  readonly trigger: ReloadTrigger;
  readonly result: 'success' | 'failure' | 'unchanged';
  readonly revision: number;
  readonly durationMs: number;
}

export interface ObjectSource {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  /** `file:<path>`, `api` or `k8s:KIND/NS/NAME@resourceVersion`. */
  readonly source: string;
}

export interface ReloadStats {
  /**
   * False while the latest job's inputs are refused (the revision in force is older than them);
   * true again after a later job swaps or finds the inputs in force. `lastError` is kept either way.
   */
  readonly healthy: boolean;
  readonly revision: number;
  /** Successful swaps after the initial load. */
  readonly reloads: number;
  /** Jobs rejected (validation, compile or read errors); the running revision stayed. */
  readonly failures: number;
  readonly lastError: { readonly message: string; readonly trigger: ReloadTrigger; readonly at: string } | undefined;
  readonly lastReload: { readonly trigger: ReloadTrigger; readonly at: string; readonly durationMs: number } | undefined;
  readonly files: readonly SourceFile[];
  readonly objects: readonly ObjectSource[];
  readonly overlay: number;
  /** `--kubernetes`: the connection and the last sync per kind. */
  readonly kubernetes?: unknown;
}

export interface ReloadControllerOptions {
  readonly paths: readonly string[];
  readonly build: Omit<BuildOptions, 'previous' | 'revision'>;
  readonly ref: StateRef;
  readonly log: Logger;
  readonly watch?: WatchOptions;
  /** `serve --kubernetes`: read before the first revision, then submitting its changes. */
  readonly kubernetes?: RunningSource | undefined;
}

export type ApplyResult = { readonly result: 'created' | 'configured' | 'unchanged'; readonly revision: number };

export class ReloadController implements SourceHost {
  readonly #opts: ReloadControllerOptions;
  readonly #ref: StateRef;
  readonly #log: Logger;
  #tail: Promise<unknown> = Promise.resolve();
  /** A file job queued but not started: later file triggers join it (a burst becomes one read). */
  #queuedFiles: { trigger: ReloadTrigger; force: boolean; promise: Promise<ReloadOutcome> } | undefined;
  readonly #files: FileSource;
  readonly #api = new ApiSource();
  readonly #kube: RunningSource | undefined;
  /** Lowest precedence first (proxy/sources/source.ts SOURCE_ORDER). */
  readonly #sources: readonly PolicySource[];
  #closed = false;
  #reloads = 0;
  #failures = 0;
  #lastError: ReloadStats['lastError'];
  #healthy = true;
  #lastReload: ReloadStats['lastReload'];
  #objects: readonly ObjectSource[] = [];
  readonly #listeners: ((e: ReloadEvent) => void)[] = [];

  constructor(opts: ReloadControllerOptions) {
    this.#opts = opts;
    this.#ref = opts.ref;
    this.#log = opts.log;
    this.#files = new FileSource(opts.paths);
    this.#kube = opts.kubernetes;
    this.#sources = opts.kubernetes === undefined ? [this.#files, this.#api] : [opts.kubernetes, this.#files, this.#api];
  }

  /** The initial load: throws PolicyLoadError (nothing is served) instead of keeping a previous state. */
  async start(): Promise<PolicyState> {
    const t0 = performance.now();
    const snap = await this.#files.read();
    for (const w of snap.warnings) this.#log.warn(w);
    if (snap.problems.length > 0) throw new PolicyLoadError(snap.problems);
    // Either the first revision builds with these files or start() throws and nothing is served.
    this.#files.accept(snap);
    const kube = this.#kube;
    const out = kube === undefined
      ? await this.#commit('startup', this.#files, snap.objects, () => undefined, t0)
      // Every kind listed once; its invalid objects are left out alone, the files' are fatal.
      : await this.#isolated(kube, await kube.initial(), 'startup', (used) => kube.accept(used), kube.isolation, false);
    if (out.error !== undefined) throw out.error;
    return this.#ref.current!;
  }

  /** Watches the `-f` paths (debounced, with a content-hash poll as fallback); starts the Kubernetes source's watches. */
  async watch(): Promise<void> {
    await this.#files.watch((why) => void this.reload(why), this.#opts.watch,
      (err, path) => this.#log.warn({ err: err.message, path }, 'file watch failed; the poll keeps checking'));
    this.#kube?.run(this);
  }

  /** SourceHost: a source's new contribution, built and swapped in turn with every other job. */
  submit(
    source: PolicySource,
    objects: readonly SourcedObject[],
    trigger: ReloadTrigger,
    accept: (used: readonly SourcedObject[]) => void,
    isolate?: Isolation,
  ): Promise<ReloadOutcome> {
    if (this.#closed) return Promise.resolve(this.#outcome(true, false, undefined));
    return this.#enqueue(() => this.#isolated(source, objects, trigger, accept, isolate, true));
  }

  /**
   * Re-reads the files. `force` (SIGHUP, POST /reload) compiles and swaps even when no byte
   * changed; otherwise identical inputs are a no-op.
   */
  reload(trigger: ReloadTrigger, force = false): Promise<ReloadOutcome> {
    if (this.#closed) return Promise.resolve(this.#outcome(true, false, undefined));
    const q = this.#queuedFiles;
    if (q !== undefined) {
      if (force && !q.force) {
        q.force = true;
        q.trigger = trigger;
      }
      return q.promise;
    }
    const entry = { trigger, force, promise: undefined as unknown as Promise<ReloadOutcome> };
    entry.promise = this.#enqueue(() => {
      this.#queuedFiles = undefined;
      return this.#reloadFiles(entry.trigger, entry.force);
    });
    this.#queuedFiles = entry;
    return entry.promise;
  }

  /** Adds or replaces one overlay object; rejects (ApplyError) without swapping when it does not validate. */
  apply(obj: SourcedObject): Promise<ApplyResult> {
    return this.#enqueue(async () => {
      this.#assertOpen();
      const key = objectKey(obj);
      const before = this.#api.get(key);
      if (before !== undefined && JSON.stringify(before.raw) === JSON.stringify(obj.raw)) {
        return { result: 'unchanged' as const, revision: this.#revision() };
      }
      const existed = before !== undefined || this.#sources.some((s) => s.objects.some((o) => objectKey(o) === key));
      const next = this.#api.with(obj);
      const out = await this.#commit('api', this.#api, [...next.values()], () => this.#api.accept(next), performance.now());
      if (out.error !== undefined) throw new ApplyError('L7G_ERR_APPLY_INVALID', undefined, out.error.problems);
      return { result: existed ? ('configured' as const) : ('created' as const), revision: out.revision };
    });
  }

  /** Removes one overlay object (a file object underneath, if any, is in force again). */
  remove(kind: string, namespace: string | undefined, name: string): Promise<{ revision: number }> {
    return this.#enqueue(async () => {
      this.#assertOpen();
      const key = objectKey({ kind, namespace, name } as SourcedObject);
      if (this.#api.get(key) === undefined) {
        for (const s of this.#sources) {
          const there = s.objects.find((o) => objectKey(o) === key);
          if (there !== undefined) throw new ApplyError('L7G_ERR_APPLY_NOT_FOUND', `${kind} ${namespace ?? ''}/${name} comes from ${provenance(there)}; remove it there`);
        }
        throw new ApplyError('L7G_ERR_APPLY_NOT_FOUND', `${kind} ${namespace ?? ''}/${name}`);
      }
      const next = this.#api.without(key);
      const out = await this.#commit('api', this.#api, [...next.values()], () => this.#api.accept(next), performance.now());
      if (out.error !== undefined) throw new ApplyError('L7G_ERR_APPLY_INVALID', 'deleting it would leave an invalid set', out.error.problems);
      return { revision: out.revision };
    });
  }

  /** Stops watching and refuses further jobs (drain). Jobs already queued still finish. */
  close(): void {
    this.#closed = true;
    this.#files.close();
    this.#kube?.close();
  }

  /** Called after every finished job (success, failure, or unchanged). */
  onReload(l: (e: ReloadEvent) => void): void {
    this.#listeners.push(l);
  }

  /** For /config_dump and metrics: cheap, consistent with the revision in force. */
  stats(): ReloadStats {
    return {
      healthy: this.#healthy, revision: this.#revision(), reloads: this.#reloads, failures: this.#failures, lastError: this.#lastError,
      lastReload: this.#lastReload, files: this.#files.snapshot.files, objects: this.#objects, overlay: this.#api.size,
      kubernetes: this.#kube?.status(),
    };
  }

  /** The serialisable form of the revision in force (see the hand-off note above). */
  snapshot(): { readonly revision: number; readonly objects: readonly SourcedObject[] } {
    return { revision: this.#revision(), objects: this.#sources.flatMap((s) => s.objects) };
  }

  // --- pipeline -------------------------------------------------------------------------------

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(job);
    this.#tail = p.catch(() => undefined);
    return p;
  }

  async #reloadFiles(trigger: ReloadTrigger, force: boolean): Promise<ReloadOutcome> {
    if (this.#closed) return this.#outcome(true, false, undefined);
    const t0 = performance.now();
    const files = this.#files;
    const snap = await files.read();
    if (!force && snap.signature === files.snapshot.signature) {
      // The files are those in force again (a bad edit undone): nothing refused is pending.
      this.#healthy = true;
      this.#emit({ trigger, result: 'unchanged', revision: this.#revision(), durationMs: performance.now() - t0 });
      return this.#outcome(true, false, undefined);
    }
    if (!force && snap.signature === files.failedSignature) return this.#outcome(false, false, undefined);
    for (const w of snap.warnings) if (!files.snapshot.warnings.includes(w)) this.#log.warn({ trigger }, w);
    if (snap.problems.length > 0) return this.#failFiles(trigger, new PolicyLoadError(snap.problems), snap, t0);
    const out = await this.#commit(trigger, files, snap.objects, () => files.accept(snap), t0);
    if (out.error !== undefined && trigger !== 'startup') files.failedSignature = snap.signature;
    return out;
  }

  /**
   * Compile and swap, or record the failure. A reload's build is sliced (policy/steps.ts) so that
   * requests keep being served with the revision in force while it runs; jobs are serialised
   * (#enqueue), so nothing else swaps meanwhile. The startup build runs at once: nothing is served.
   * `objects` is `source`'s new contribution; `accept` makes it the one in force, right before the swap.
   */
  async #commit(trigger: ReloadTrigger, source: PolicySource, objects: readonly SourcedObject[], accept: () => void, t0: number): Promise<ReloadOutcome> {
    const built = this.#build(trigger, source, objects);
    const state = built instanceof PolicyLoadError ? built : await built;
    if (state instanceof PolicyLoadError) return this.#fail(trigger, await located(state), t0);
    accept();
    this.#swap(trigger, state, t0);
    return this.#outcome(true, true, undefined);
  }

  /**
   * #commit for a source whose invalid objects are rejected alone: each object a problem names is
   * replaced by its version in force (or left out when it has none) and the build is tried again,
   * so one bad object cannot block the others. Problems that name no object of this source (a
   * clash with a file object, say) reject the change as a whole, as for the other sources.
   */
  async #isolated(
    source: PolicySource, objects: readonly SourcedObject[], trigger: ReloadTrigger,
    accept: (used: readonly SourcedObject[]) => void, isolate: Isolation | undefined, sliced: boolean,
  ): Promise<ReloadOutcome> {
    const t0 = performance.now();
    if (isolate === undefined) return this.#commit(trigger, source, objects, () => accept(objects), t0);
    let candidate = objects;
    for (let round = 0; round < MAX_ISOLATION_ROUNDS; round++) {
      const built = this.#build(sliced ? trigger : 'startup', source, candidate);
      const state = built instanceof PolicyLoadError ? built : await built;
      if (!(state instanceof PolicyLoadError)) {
        accept(candidate);
        this.#swap(trigger, state, t0);
        return this.#outcome(true, true, undefined);
      }
      const byFile = new Map<string, LoadProblem[]>();
      for (const p of state.problems) {
        const list = byFile.get(p.file);
        if (list === undefined) byFile.set(p.file, [p]);
        else list.push(p);
      }
      const inForce = new Map(source.objects.map((o) => [objectKey(o), o]));
      let left = 0;
      const next: SourcedObject[] = [];
      for (const o of candidate) {
        const problems = byFile.get(o.file);
        if (problems === undefined) {
          next.push(o);
          continue;
        }
        left++;
        isolate.rejected(o, problems);
        const previous = inForce.get(objectKey(o));
        if (previous !== undefined && previous !== o) next.push(previous);
      }
      if (left === 0) return this.#fail(trigger, await located(state), t0);
      this.#log.warn({ trigger, rejected: left, problems: state.problems.map(formatProblem) }, `${source.name}: invalid objects left out; their versions in force (if any) stay`);
      candidate = next;
    }
    return this.#fail(trigger, new PolicyLoadError([{
      code: ProblemCodes.L7G_ERR_POLICY_VALUE, file: '', object: undefined, field: undefined, line: undefined,
      message: `${source.name}: still invalid after leaving out rejected objects ${MAX_ISOLATION_ROUNDS} times`,
    }]), t0);
  }

  /** The build of the inputs with `source`'s contribution replaced; a PolicyLoadError instead of a throw. */
  #build(trigger: ReloadTrigger, source: PolicySource, objects: readonly SourcedObject[]): PolicyState | PolicyLoadError | Promise<PolicyState | PolicyLoadError> {
    const previous = this.#ref.current;
    const input: SourcedObject[] = [];
    for (const s of this.#sources) for (const o of s === source ? objects : s.objects) input.push(o);
    const opts = { ...this.#opts.build, previous, revision: (previous?.revision ?? 0) + 1 };
    const asError = (err: unknown): PolicyLoadError => {
      if (err instanceof PolicyLoadError) return err;
      throw err;
    };
    if (trigger === 'startup') {
      try {
        return buildPolicyState(input, opts);
      } catch (err) {
        return asError(err);
      }
    }
    return buildPolicyStateSliced(input, opts).catch(asError);
  }

  #swap(trigger: ReloadTrigger, state: PolicyState, t0: number): void {
    const previous = this.#ref.current;
    this.#objects = state.objects.map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, source: provenance(o) }));
    this.#ref.swap(state);
    this.#healthy = true;
    const durationMs = performance.now() - t0;
    if (previous !== undefined) {
      this.#reloads++;
      this.#lastReload = { trigger, at: new Date().toISOString(), durationMs: round(durationMs) };
      this.#log.info({ revision: state.revision, previous: previous.revision, trigger, objects: state.objects.length, durationMs: round(durationMs) }, 'policy swapped');
      // Only what this revision brought: a cluster's standing warnings are logged once, not per revision.
      const before = new Set(previous.warnings);
      for (const w of state.warnings) if (!before.has(w)) this.#log.warn({ revision: state.revision }, w);
    } else {
      for (const w of state.warnings) this.#log.warn({ revision: state.revision }, w);
    }
    this.#emit({ trigger, result: 'success', revision: state.revision, durationMs });
  }

  #failFiles(trigger: ReloadTrigger, err: PolicyLoadError, snap: FileSnapshot, t0: number): ReloadOutcome {
    if (trigger !== 'startup') this.#files.failedSignature = snap.signature;
    return this.#fail(trigger, err, t0);
  }

  #fail(trigger: ReloadTrigger, err: PolicyLoadError, t0: number): ReloadOutcome {
    if (this.#ref.current === undefined) return this.#outcome(false, false, err);
    this.#failures++;
    this.#healthy = false;
    const revision = this.#revision();
    this.#lastError = { message: err.problems.map(formatProblem).join('\n'), trigger, at: new Date().toISOString() };
    this.#log.error({ trigger, revision, code: err.code, problems: err.problems.map(formatProblem) }, `policy reload rejected; revision ${revision} stays in force`);
    this.#emit({ trigger, result: 'failure', revision, durationMs: performance.now() - t0 });
    return this.#outcome(false, false, err);
  }

  #emit(e: ReloadEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'reload listener threw');
      }
    }
  }

  #outcome(ok: boolean, changed: boolean, error: PolicyLoadError | undefined): ReloadOutcome {
    return { ok, changed, revision: this.#revision(), error };
  }

  #revision(): number {
    return this.#ref.current?.revision ?? 0;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ApplyError('L7G_ERR_RELOAD_CLOSED');
  }
}

/**
 * Problems of `-f` files placed at their field's line and column. Only documents up to 128 KiB are
 * parsed again (~0.1 s with `yaml`; the event loop serves requests meanwhile); problems in bigger
 * ones keep the object's line and the field path.
 */
async function located(err: PolicyLoadError): Promise<PolicyLoadError> {
  const texts = await parsedTexts(new Set(err.problems.map((p) => p.file)));
  if (texts.size === 0) return err;
  return new PolicyLoadError(locateProblems(err.problems, (f) => texts.get(f), { maxDocumentBytes: 128 * 1024 }));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
