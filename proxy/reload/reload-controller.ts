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
 * Inputs:
 * - Files are re-read by file-triggered jobs only. API jobs compile against the files of the running
 *   revision, so a half-edited file on disk never blocks (or leaks into) an API change.
 * - The overlay holds objects applied through the API. It is applied after the files (so it wins on
 *   a name clash) and survives file reloads and SIGHUP until deleted through the API.
 *
 * Multi-worker hand-off (not built yet): a PolicyState holds compiled closures and cannot cross a
 * thread or process. `snapshot()` is the serialisable form of a revision (the validated objects and
 * its number); since buildPolicyState is deterministic given the same objects and previous state, a
 * worker that rebuilds every snapshot in order reaches the same identities and verdicts, and the
 * primary keeps owning watching, the admin API and validation.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  buildPolicyState, buildPolicyStateSliced, formatProblem, objectKey, PolicyLoadError, type BuildOptions, type PolicyState, type SourcedObject,
} from '../../policy/index.js';
import type { StateRef } from '../state-ref.js';
import { ApplyError } from './errors.js';
import { DEFAULT_WATCH, FileWatcher, type WatchOptions } from './file-watcher.js';
import { EMPTY_SNAPSHOT, readSnapshot, type FileSnapshot, type SourceFile } from './file-snapshot.js';

/** `file` of objects applied through the admin API (what LoadProblem and LoadedObject show). */
export const API_SOURCE = 'api';

export type ReloadTrigger = 'startup' | 'file' | 'poll' | 'SIGHUP' | 'admin' | 'api';

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
  /** `file:<path>` or `api`. */
  readonly source: string;
}

export interface ReloadStats {
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
}

export interface ReloadControllerOptions {
  readonly paths: readonly string[];
  readonly build: Omit<BuildOptions, 'previous' | 'revision'>;
  readonly ref: StateRef;
  readonly log: Logger;
  readonly watch?: WatchOptions;
}

export type ApplyResult = { readonly result: 'created' | 'configured' | 'unchanged'; readonly revision: number };

export class ReloadController {
  readonly #opts: ReloadControllerOptions;
  readonly #ref: StateRef;
  readonly #log: Logger;
  #tail: Promise<unknown> = Promise.resolve();
  /** A file job queued but not started: later file triggers join it (a burst becomes one read). */
  #queuedFiles: { trigger: ReloadTrigger; force: boolean; promise: Promise<ReloadOutcome> } | undefined;
  #files: FileSnapshot = EMPTY_SNAPSHOT;
  #overlay: ReadonlyMap<string, SourcedObject> = new Map();
  /** Inputs that failed last time: the poll does not count the same failure every 5 s. */
  #failedSignature: string | undefined;
  #watcher: FileWatcher | undefined;
  #closed = false;
  #reloads = 0;
  #failures = 0;
  #lastError: ReloadStats['lastError'];
  #lastReload: ReloadStats['lastReload'];
  #objects: readonly ObjectSource[] = [];
  readonly #listeners: ((e: ReloadEvent) => void)[] = [];

  constructor(opts: ReloadControllerOptions) {
    this.#opts = opts;
    this.#ref = opts.ref;
    this.#log = opts.log;
  }

  /** The initial load: throws PolicyLoadError (nothing is served) instead of keeping a previous state. */
  async start(): Promise<PolicyState> {
    const snap = await readSnapshot(this.#opts.paths);
    if (snap.problems.length > 0) throw new PolicyLoadError(snap.problems);
    const out = await this.#commit('startup', snap, this.#overlay, performance.now());
    if (out.error !== undefined) throw out.error;
    return this.#ref.current!;
  }

  /** Watches the `-f` paths (debounced) with a content-hash poll as fallback. */
  async watch(): Promise<void> {
    const w = new FileWatcher((why) => void this.reload(why), {
      ...DEFAULT_WATCH,
      ...this.#opts.watch,
      onError: (err, path) => this.#log.warn({ err: err.message, path }, 'file watch failed; the poll keeps checking'),
    });
    this.#watcher = w;
    await w.start(this.#opts.paths);
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
      const before = this.#overlay.get(key);
      if (before !== undefined && JSON.stringify(before.raw) === JSON.stringify(obj.raw)) {
        return { result: 'unchanged' as const, revision: this.#revision() };
      }
      const existed = before !== undefined || this.#files.objects.some((o) => objectKey(o) === key);
      const next = new Map(this.#overlay).set(key, obj);
      const out = await this.#commit('api', this.#files, next, performance.now());
      if (out.error !== undefined) throw new ApplyError('L7G_ERR_APPLY_INVALID', undefined, out.error.problems);
      return { result: existed ? ('configured' as const) : ('created' as const), revision: out.revision };
    });
  }

  /** Removes one overlay object (a file object underneath, if any, is in force again). */
  remove(kind: string, namespace: string | undefined, name: string): Promise<{ revision: number }> {
    return this.#enqueue(async () => {
      this.#assertOpen();
      const key = objectKey({ kind, namespace, name } as SourcedObject);
      if (!this.#overlay.has(key)) {
        const inFile = this.#files.objects.find((o) => objectKey(o) === key);
        if (inFile !== undefined) throw new ApplyError('L7G_ERR_APPLY_NOT_FOUND', `${kind} ${namespace ?? ''}/${name} comes from file:${inFile.file}; remove it there`);
        throw new ApplyError('L7G_ERR_APPLY_NOT_FOUND', `${kind} ${namespace ?? ''}/${name}`);
      }
      const next = new Map(this.#overlay);
      next.delete(key);
      const out = await this.#commit('api', this.#files, next, performance.now());
      if (out.error !== undefined) throw new ApplyError('L7G_ERR_APPLY_INVALID', 'deleting it would leave an invalid set', out.error.problems);
      return { revision: out.revision };
    });
  }

  /** Stops watching and refuses further jobs (drain). Jobs already queued still finish. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
  }

  /** Called after every finished job (success, failure, or unchanged). */
  onReload(l: (e: ReloadEvent) => void): void {
    this.#listeners.push(l);
  }

  /** For /config_dump and metrics: cheap, consistent with the revision in force. */
  stats(): ReloadStats {
    return {
      revision: this.#revision(), reloads: this.#reloads, failures: this.#failures, lastError: this.#lastError,
      lastReload: this.#lastReload, files: this.#files.files, objects: this.#objects, overlay: this.#overlay.size,
    };
  }

  /** The serialisable form of the revision in force (see the hand-off note above). */
  snapshot(): { readonly revision: number; readonly objects: readonly SourcedObject[] } {
    return { revision: this.#revision(), objects: [...this.#files.objects, ...this.#overlay.values()] };
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
    const snap = await readSnapshot(this.#opts.paths);
    if (!force && snap.signature === this.#files.signature) {
      this.#emit({ trigger, result: 'unchanged', revision: this.#revision(), durationMs: performance.now() - t0 });
      return this.#outcome(true, false, undefined);
    }
    if (!force && snap.signature === this.#failedSignature) return this.#outcome(false, false, undefined);
    if (snap.problems.length > 0) return this.#fail(trigger, new PolicyLoadError(snap.problems), snap.signature, t0);
    return this.#commit(trigger, snap, this.#overlay, t0);
  }

  /**
   * Compile and swap, or record the failure. A reload's build is sliced (policy/steps.ts) so that
   * requests keep being served with the revision in force while it runs; jobs are serialised
   * (#enqueue), so nothing else swaps meanwhile. The startup build runs at once: nothing is served.
   */
  async #commit(trigger: ReloadTrigger, files: FileSnapshot, overlay: ReadonlyMap<string, SourcedObject>, t0: number): Promise<ReloadOutcome> {
    const previous = this.#ref.current;
    let state: PolicyState;
    try {
      const input = [...files.objects, ...overlay.values()];
      const opts = { ...this.#opts.build, previous, revision: (previous?.revision ?? 0) + 1 };
      state = trigger === 'startup' ? buildPolicyState(input, opts) : await buildPolicyStateSliced(input, opts);
    } catch (err) {
      if (err instanceof PolicyLoadError) return this.#fail(trigger, err, trigger === 'api' ? undefined : files.signature, t0);
      throw err;
    }
    this.#files = files;
    this.#overlay = overlay;
    this.#failedSignature = undefined;
    this.#objects = state.objects.map((o) => ({
      kind: o.kind, namespace: o.namespace, name: o.name, source: o.file === API_SOURCE ? API_SOURCE : `file:${o.file}`,
    }));
    this.#ref.swap(state);
    const durationMs = performance.now() - t0;
    if (trigger !== 'startup') {
      this.#reloads++;
      this.#lastReload = { trigger, at: new Date().toISOString(), durationMs: round(durationMs) };
      this.#log.info({ revision: state.revision, previous: previous?.revision, trigger, objects: state.objects.length, durationMs: round(durationMs) }, 'policy swapped');
      for (const w of state.warnings) this.#log.debug({ revision: state.revision }, w);
    } else {
      for (const w of state.warnings) this.#log.warn({ revision: state.revision }, w);
    }
    this.#emit({ trigger, result: 'success', revision: state.revision, durationMs });
    return this.#outcome(true, true, undefined);
  }

  #fail(trigger: ReloadTrigger, err: PolicyLoadError, signature: string | undefined, t0: number): ReloadOutcome {
    if (trigger === 'startup') return this.#outcome(false, false, err);
    this.#failures++;
    if (signature !== undefined) this.#failedSignature = signature;
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

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
