/**
 * One list+watch of one collection: @kubernetes/client-node's ListWatch (its cache, its relist on
 * 410 Gone, its resume from the last resourceVersion) driven through KubeWatch (transport.ts), plus
 * what the client leaves to its caller: reconnecting after an error with exponential backoff and
 * jitter, knowing when the first list is in ("synced"), and the state /config_dump shows.
 */
import { ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeWatch, listAll, type TransportOptions } from './transport.js';
import { trimObject, type WatchedKind } from './kinds.js';

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** client-go's reflector backs off from 800 ms to 30 s; we start lower, the API server is usually just restarting. */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 200, maxMs: 30_000 };

export interface InformerStatus {
  readonly kind: string;
  readonly path: string;
  readonly fieldSelector: string | undefined;
  readonly synced: boolean;
  readonly connected: boolean;
  readonly objects: number;
  readonly resourceVersion: string;
  /** Last completed list (ISO time). */
  readonly lastSync: string | undefined;
  /** Last event or bookmark received (ISO time). */
  readonly lastEvent: string | undefined;
  readonly errors: number;
  readonly lastError: string | undefined;
}

export interface InformerOptions {
  readonly kc: KubeConfig;
  readonly kind: WatchedKind;
  readonly path: string;
  readonly fieldSelector?: string | undefined;
  readonly transport: TransportOptions;
  readonly backoff: Backoff;
  readonly log: Logger;
  /** Any change of the cache (add, update, delete, including those a relist finds). */
  onChange(): void;
  /** A list or a watch failed (connection state changed). */
  onError?(err: Error): void;
}

export class Informer {
  readonly #opts: InformerOptions;
  readonly #lw: ListWatch<KubernetesObject>;
  #synced = false;
  #connected = false;
  #lastSync: string | undefined;
  #lastEvent: string | undefined;
  #errors = 0;
  #lastError: string | undefined;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #listed: Promise<void>;
  #resolveListed!: () => void;

  constructor(opts: InformerOptions) {
    this.#opts = opts;
    this.#listed = new Promise((resolve) => { this.#resolveListed = resolve; });
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const l = await listAll<KubernetesObject>(opts.kc, opts.path, { fieldSelector: opts.fieldSelector }, opts.transport.requestTimeoutMs) as KubernetesListObject<KubernetesObject>;
      // ListWatch fills its cache from `l` right after this promise settles, in the same task:
      // by the next macrotask the cache holds the list.
      setImmediate(() => this.#onListed());
      return l;
    };
    const opened = (): void => {
      this.#connected = true;
      this.#failures = 0;
    };
    this.#lw = new ListWatch(opts.path, new KubeWatch(opts.kc, opts.transport, opened, (err) => this.#onError(err)) as never, list, false, undefined, opts.fieldSelector);
    const changed = (o: KubernetesObject): void => {
      if (this.#stopped) return;
      // The cache holds this very object: trimmed here, it is trimmed for good (kinds.ts).
      trimObject(opts.kind.kind, o as unknown as Record<string, unknown>);
      this.#lastEvent = new Date().toISOString();
      this.#connected = true;
      this.#failures = 0;
      opts.onChange();
    };
    this.#lw.on('add', changed);
    this.#lw.on('update', changed);
    this.#lw.on('delete', () => {
      if (this.#stopped) return;
      this.#lastEvent = new Date().toISOString();
      opts.onChange();
    });
    this.#lw.on('error', (err: unknown) => this.#onError(err));
  }

  /** Starts listing and watching; resolves once the first list is in the cache. */
  start(): Promise<void> {
    this.#run();
    return this.#listed;
  }

  /**
   * One (re)start of the list+watch. ListWatch reports failures through its error callbacks, but a
   * credential plugin or a CA file that fails makes its promise reject too: both end in #onError.
   * A watch that a stop() raced is stopped again once it has started.
   */
  #run(): void {
    this.#lw.start().then(
      () => { if (this.#stopped) void this.#lw.stop(); },
      (err: unknown) => this.#onError(err),
    );
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    void this.#lw.stop();
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Every cached object (built-in kinds come without kind/apiVersion from a list: never read them). */
  objects(): readonly KubernetesObject[] {
    return this.#lw.list();
  }

  status(): InformerStatus {
    return {
      kind: this.#opts.kind.kind, path: this.#opts.path, fieldSelector: this.#opts.fieldSelector, synced: this.#synced,
      connected: this.#connected, objects: this.#lw.list().length, resourceVersion: this.#lw.latestResourceVersion(),
      lastSync: this.#lastSync, lastEvent: this.#lastEvent, errors: this.#errors, lastError: this.#lastError,
    };
  }

  #onListed(): void {
    const first = !this.#synced;
    this.#synced = true;
    this.#connected = true;
    this.#failures = 0;
    this.#lastSync = new Date().toISOString();
    if (first) this.#resolveListed();
    // A relist may have changed nothing the callbacks saw (an empty collection, say): say so anyway.
    this.#opts.onChange();
  }

  #onError(err: unknown): void {
    if (this.#stopped) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.#errors++;
    this.#connected = false;
    this.#lastError = e.message;
    this.#opts.onError?.(e);
    const { initialMs, maxMs } = this.#opts.backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 20));
    this.#failures++;
    // Full jitter around the base: N proxies restarted together do not reconnect in lockstep.
    const delay = Math.round(base * (0.5 + Math.random()));
    this.#opts.log.warn({ kind: this.#opts.kind.kind, path: this.#opts.path, err: e.message, retryInMs: delay }, 'kubernetes list/watch failed; retrying');
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (!this.#stopped) this.#run();
    }, delay);
    this.#retry.unref();
  }
}
