/**
 * `serve --kubernetes`: the cluster as the API server says it is. One informer per kind
 * (kinds.ts), one per referenced Secret (secret-refs.ts); every change, coalesced, becomes one
 * contribution submitted to the ReloadController, which builds and swaps revisions.
 *
 * - Fail closed: initial() resolves only once every kind has been listed once; until then there is
 *   no revision, so /ready says 503 and nothing is served.
 * - Bursts: a change arms a short timer (coalesceMs) and every change until it fires joins the
 *   same contribution; one more that arrives during a build waits for it and goes out next. 1,000
 *   pod events make one or a few revisions, never 1,000 builds.
 * - Invalid objects are rejected alone (the controller's isolation): each keeps the version in
 *   force, if it has one. Cilium's agent does the same per CNP (it skips a policy that fails to
 *   sanitize and logs it, and the others are imported), but Cilium drops the bad version outright;
 *   we keep the last good one in force, since a typo in an update must not open or close a
 *   service that worked a minute ago.
 * - An API server that goes away never stops the data plane: the revision in force stays, the
 *   informers reconnect with backoff and resume from their resourceVersion (relisting on 410).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { formatProblem, type LoadProblem, type SourcedObject } from '../../../policy/index.js';
import type { RejectedObject } from '../../../observe/operator-views.js';
import type { Isolation, RunningSource, SourceHost } from '../source.js';
import type { ResolvedKubeConfig } from './config.js';
import { DEFAULT_BACKOFF, Informer, type Backoff, type InformerStatus } from './informer.js';
import { namespacedPath, SECRET_KIND, WATCHED_KINDS, type WatchedKind } from './kinds.js';
import { secretRefs } from './secret-refs.js';
import { DEFAULT_TRANSPORT, type TransportOptions } from './transport.js';

export interface KubernetesSourceOptions {
  readonly config: ResolvedKubeConfig;
  readonly log: Logger;
  readonly transport?: Partial<TransportOptions> | undefined;
  readonly backoff?: Backoff | undefined;
  /** How long a change waits for more to join it (default 25 ms). */
  readonly coalesceMs?: number | undefined;
}

/** A rejected object as `policy get` shows it, plus when and at which resourceVersion. */
export interface Rejection extends RejectedObject {
  readonly resourceVersion: string;
  readonly at: string;
}

export interface KubernetesStatus {
  readonly server: string;
  readonly config: string;
  /** Every informer is connected. */
  readonly connected: boolean;
  readonly synced: boolean;
  readonly kinds: readonly InformerStatus[];
  readonly secrets: readonly InformerStatus[];
  readonly rejected: readonly Rejection[];
  /** Rejections since start (a metric counter). */
  readonly rejections: number;
  readonly revisionsSubmitted: number;
}

const DEFAULT_COALESCE_MS = 25;
/** A Kubernetes change rejected as a whole is built again after this long. */
const RETRY_FAILED_MS = 5_000;

export class KubernetesSource implements RunningSource {
  readonly name = 'kubernetes' as const;
  readonly isolation: Isolation;
  readonly #opts: KubernetesSourceOptions;
  readonly #transport: TransportOptions;
  readonly #informers: readonly { kind: WatchedKind; informer: Informer }[];
  readonly #secrets = new Map<string, Informer>();
  /** A converted object per API object: unchanged objects keep their identity, so validation is reused. */
  readonly #converted = new WeakMap<KubernetesObject, SourcedObject>();
  #objects: readonly SourcedObject[] = [];
  #rejected = new Map<string, Rejection>();
  /** The rejections of the submission being built. */
  #judging: Map<string, Rejection> | undefined;
  #rejections = 0;
  #submitted = 0;
  #host: SourceHost | undefined;
  #timer: NodeJS.Timeout | undefined;
  #building = false;
  #dirty = false;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(opts: KubernetesSourceOptions) {
    this.#opts = opts;
    this.#transport = { ...DEFAULT_TRANSPORT, ...opts.transport };
    this.#informers = WATCHED_KINDS.map((kind) => ({ kind, informer: this.#informer(kind, kind.path, undefined) }));
    this.isolation = {
      rejected: (o, problems) => this.#reject(o, problems),
    };
  }

  get objects(): readonly SourcedObject[] {
    return this.#objects;
  }

  async initial(): Promise<readonly SourcedObject[]> {
    await Promise.all(this.#informers.map((i) => i.informer.start()));
    await this.#watchSecrets();
    this.#dirty = false;
    this.#judging = new Map();
    return this.#collect();
  }

  accept(used: readonly SourcedObject[]): void {
    this.#objects = used;
    // Every submission judges every object again (a rejected policy may be fine once the Secret it
    // needs exists): the rejections in force are the ones this build made.
    this.#rejected = this.#judging ?? new Map();
    this.#judging = undefined;
  }

  run(host: SourceHost): void {
    this.#host = host;
    // Changes that arrived between the first list and now.
    if (this.#dirty) this.#schedule();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#retryTimer);
    for (const { informer } of this.#informers) informer.stop();
    for (const i of this.#secrets.values()) i.stop();
  }

  status(): KubernetesStatus {
    const kinds = this.#informers.map((i) => i.informer.status());
    const secrets = [...this.#secrets.values()].map((i) => i.status());
    return {
      server: this.#opts.config.server,
      config: this.#opts.config.from,
      connected: [...kinds, ...secrets].every((s) => s.connected),
      synced: kinds.every((s) => s.synced),
      kinds,
      secrets,
      rejected: [...this.#rejected.values()],
      rejections: this.#rejections,
      revisionsSubmitted: this.#submitted,
    };
  }

  #informer(kind: WatchedKind, path: string, fieldSelector: string | undefined): Informer {
    return new Informer({
      kc: this.#opts.config.kc, kind, path, fieldSelector, transport: this.#transport, backoff: this.#opts.backoff ?? DEFAULT_BACKOFF,
      log: this.#opts.log, onChange: () => this.#changed(),
    });
  }

  #changed(): void {
    this.#dirty = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#host === undefined || this.#closed || this.#timer !== undefined || this.#building) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, this.#opts.coalesceMs ?? DEFAULT_COALESCE_MS);
  }

  async #flush(): Promise<void> {
    const host = this.#host;
    if (host === undefined || this.#closed || !this.#dirty) return;
    this.#building = true;
    this.#dirty = false;
    try {
      await this.#watchSecrets();
      const objects = this.#collect();
      this.#submitted++;
      this.#judging = new Map();
      const out = await host.submit(this, objects, 'kubernetes', (used) => this.accept(used), this.isolation);
      this.#judging = undefined;
      if (!out.ok) this.#retryLater();
      // Secrets only the previous revision named are not needed any more.
      this.#stopUnwantedSecrets(this.#wantedSecrets());
    } catch (err) {
      this.#opts.log.error({ err: (err as Error).message }, 'kubernetes: change not applied');
      this.#retryLater();
    } finally {
      this.#building = false;
    }
    if (this.#dirty) this.#schedule();
  }

  /**
   * A change that could not be built as a whole (a problem no single object carries) is tried again
   * after a while even if nothing else changes: the revision in force stays meanwhile.
   */
  #retryLater(): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#changed(), RETRY_FAILED_MS);
    this.#retryTimer.unref();
  }

  /**
   * Starts a watch for each newly referenced Secret (and waits for its first list, so the policy
   * that needs it does not build without it) and stops the watches of Secrets no policy names.
   */
  async #watchSecrets(): Promise<void> {
    const wanted = this.#wantedSecrets();
    this.#stopUnwantedSecrets(wanted);
    const starting: Promise<void>[] = [];
    for (const ref of wanted) {
      if (this.#secrets.has(ref)) continue;
      const [ns, name] = ref.split('/') as [string, string];
      const informer = this.#informer(SECRET_KIND, namespacedPath(SECRET_KIND, ns), `metadata.name=${name}`);
      this.#secrets.set(ref, informer);
      starting.push(informer.start());
    }
    if (starting.length === 0) return;
    // A Secret the API server will not give us (forbidden, down) must not hold every other change:
    // after the request deadline the policy builds without it (and is rejected alone if it needs it).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(starting), new Promise((resolve) => { timer = setTimeout(resolve, this.#transport.requestTimeoutMs); })]);
    clearTimeout(timer);
  }

  #stopUnwantedSecrets(wanted: ReadonlySet<string>): void {
    for (const [ref, informer] of this.#secrets) {
      if (wanted.has(ref)) continue;
      informer.stop();
      this.#secrets.delete(ref);
    }
  }

  /** "namespace/name" of every Secret a policy names: the cached policies and the versions in force. */
  #wantedSecrets(): Set<string> {
    const wanted = new Set<string>();
    for (const { kind, informer } of this.#informers) {
      if (kind.kind !== 'CiliumNetworkPolicy' && kind.kind !== 'CiliumClusterwideNetworkPolicy') continue;
      for (const o of informer.objects()) secretRefs(o as Record<string, unknown>, kind.namespaced ? o.metadata?.namespace : undefined, wanted);
    }
    // The versions in force too: when an update is rejected, the version kept in its place must
    // still find the Secrets it names, or it would fail in turn and the policy vanish.
    for (const o of this.#objects) {
      if (o.kind === 'CiliumNetworkPolicy' || o.kind === 'CiliumClusterwideNetworkPolicy') secretRefs(o.raw, o.namespace, wanted);
    }
    return wanted;
  }

  #collect(): SourcedObject[] {
    const out: SourcedObject[] = [];
    const add = (kind: WatchedKind, o: KubernetesObject): void => {
      let s = this.#converted.get(o);
      if (s === undefined) {
        s = toSourced(kind, o);
        this.#converted.set(o, s);
      }
      out.push(s);
    };
    for (const { kind, informer } of this.#informers) for (const o of informer.objects()) add(kind, o);
    for (const informer of this.#secrets.values()) for (const o of informer.objects()) add(SECRET_KIND, o);
    return out;
  }

  #reject(o: SourcedObject, problems: readonly LoadProblem[]): void {
    const key = `${o.kind}/${o.namespace ?? ''}/${o.name}`;
    const inForce = this.#objects.find((x) => x.kind === o.kind && x.namespace === o.namespace && x.name === o.name && x !== o);
    const previous = this.#rejected.get(key);
    if (previous?.source === o.file) {
      // The same version, judged again: already counted and logged.
      this.#judging?.set(key, previous);
      return;
    }
    this.#rejections++;
    const r: Rejection = {
      source: o.file, kind: o.kind, namespace: o.namespace, name: o.name, resourceVersion: resourceVersionOf(o),
      problems: problems.map(formatProblem), inForce: inForce?.file, at: new Date().toISOString(),
    };
    this.#judging?.set(key, r);
    this.#opts.log.error({ object: o.file, problems: r.problems, inForce: r.inForce ?? null }, 'kubernetes: object rejected; its version in force stays (none: it is absent)');
  }
}

function resourceVersionOf(o: SourcedObject): string {
  const at = o.file.lastIndexOf('@');
  return at < 0 ? '' : o.file.slice(at + 1);
}

/** The object as policy/ reads it; `file` names it and its version: `k8s:KIND/NS/NAME@resourceVersion`. */
export function toSourced(kind: WatchedKind, o: KubernetesObject): SourcedObject {
  const meta = o.metadata ?? {};
  const name = meta.name ?? '';
  const namespace = kind.namespaced ? (meta.namespace ?? 'default') : undefined;
  const where = namespace === undefined ? name : `${namespace}/${name}`;
  return {
    file: `k8s:${kind.kind}/${where}@${meta.resourceVersion ?? ''}`,
    line: undefined,
    // Lists leave kind/apiVersion out of built-in items: the collection says what they are.
    apiVersion: kind.apiVersion,
    kind: kind.kind,
    namespace,
    name,
    raw: o as unknown as Record<string, unknown>,
  };
}
