/**
 * A policy source: where objects come from (the `-f` files, the Kubernetes API, the admin API).
 * Every source hands its changes to one ReloadController (proxy/reload/), which builds and swaps
 * revisions one at a time; a source never builds or swaps anything itself.
 *
 * A change is a whole new contribution (the source's full list of objects), submitted with
 * `SourceHost.submit`. The controller builds it with the other sources' contributions in force, and
 * only when that build succeeds does the contribution become the source's `objects`.
 *
 * Precedence, when the same kind/namespace/name comes from two sources: later in
 * `SOURCE_ORDER` wins (the Kubernetes API, then the files, then the admin API's overlay).
 */
import type { LoadProblem, PolicyLoadError, SourcedObject } from '../../policy/index.js';

export type SourceName = 'kubernetes' | 'file' | 'api';

/** Lowest precedence first. */
export const SOURCE_ORDER: readonly SourceName[] = ['kubernetes', 'file', 'api'];

export interface PolicySource {
  readonly name: SourceName;
  /** The contribution of the revision in force. */
  readonly objects: readonly SourcedObject[];
}

export type SubmitTrigger = 'startup' | 'file' | 'poll' | 'SIGHUP' | 'admin' | 'api' | 'kubernetes';

export interface SubmitResult {
  /** The change is in force (or changed nothing). */
  readonly ok: boolean;
  readonly revision: number;
  readonly error: PolicyLoadError | undefined;
}

/**
 * How a source whose objects are owned by many people (the Kubernetes API) wants invalid objects
 * handled: rejected alone, each keeping its last accepted version (or none), instead of the whole
 * change being rejected.
 */
export interface Isolation {
  /** Called for every object left out of the revision, with the problems that excluded it. */
  rejected(object: SourcedObject, problems: readonly LoadProblem[]): void;
}

export interface SourceHost {
  /**
   * Builds a revision with `objects` as `source`'s contribution and swaps it in. `accept` runs
   * right before the swap with the contribution actually used (with `isolate`, the invalid objects
   * are replaced by their versions in force, or left out).
   */
  submit(
    source: PolicySource,
    objects: readonly SourcedObject[],
    trigger: SubmitTrigger,
    accept: (used: readonly SourcedObject[]) => void,
    isolate?: Isolation,
  ): Promise<SubmitResult>;
}

/** The `source` /config_dump shows for an object: `file:<path>`, `api` or `k8s:KIND/NS/NAME@resourceVersion`. */
export function provenance(o: { readonly file: string }): string {
  return o.file === 'api' || o.file.startsWith('k8s:') ? o.file : `file:${o.file}`;
}

/**
 * A source that runs by itself once started (the Kubernetes API): it reads its first contribution
 * before anything is served, then submits every later change to the host.
 */
export interface RunningSource extends PolicySource {
  /** Resolves with the first contribution once everything was read once (Kubernetes: every kind listed). */
  initial(): Promise<readonly SourcedObject[]>;
  /** Present: invalid objects are rejected alone (see Isolation). */
  readonly isolation?: Isolation | undefined;
  /** The contribution now in force (the host calls it right before the swap). */
  accept(used: readonly SourcedObject[]): void;
  /** From now on, every change goes to `host.submit`. */
  run(host: SourceHost): void;
  close(): void;
  /** For /config_dump. */
  status(): unknown;
}
