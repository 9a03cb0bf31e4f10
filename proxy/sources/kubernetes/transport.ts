/**
 * The HTTP side of list and watch, on node:http(s) with the credentials and TLS settings that
 * @kubernetes/client-node's KubeConfig resolves (`applyToHTTPSOptions`: CA, client certificate,
 * bearer token — re-read from the token file for in-cluster service accounts —, proxy agent).
 *
 * Why not the client's own `Watch`: it sends no `allowWatchBookmarks`, and it has no deadline on
 * the response headers nor on a silent stream, so an API server that accepts connections but never
 * answers (overloaded, partitioned) would hang the watch for ever. `KubeWatch` has the `Watch`
 * interface that the client's `ListWatch` drives, so the cache, the relist on 410 Gone and the
 * resume from the last resourceVersion stay the client's.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeError } from './errors.js';

export interface TransportOptions {
  /** Deadline for a list's whole answer and for a watch's response headers. */
  readonly requestTimeoutMs: number;
  /**
   * A watch that sends nothing (no event, no bookmark) for this long is presumed dead and
   * restarted from its resourceVersion. API servers send a bookmark about every minute when asked
   * (`allowWatchBookmarks`), so twice that is silence, not a quiet cluster.
   */
  readonly watchIdleMs: number;
  /** `timeoutSeconds` asked of the server: it ends the watch cleanly and we resume (spread by jitter). */
  readonly watchTimeoutSeconds: number;
}

export const DEFAULT_TRANSPORT: TransportOptions = { requestTimeoutMs: 30_000, watchIdleMs: 150_000, watchTimeoutSeconds: 300 };

async function requestOptions(kc: KubeConfig): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  opts.method = 'GET';
  return opts;
}

function serverUrl(kc: KubeConfig, path: string, query: Record<string, string | undefined>): URL {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeError('L7G_ERR_KUBE_CONFIG', 'the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, v);
  return url;
}

function statusError(status: number, body: string, path: string): KubeError {
  let message = body.slice(0, 300);
  try {
    const s = JSON.parse(body) as { message?: string };
    if (typeof s.message === 'string') message = s.message;
  } catch {
    // not a Status: keep the text
  }
  return new KubeError('L7G_ERR_KUBE_STATUS', `GET ${path}: ${status} ${message}`, status);
}

/** One GET answered with JSON (a list, or one object). */
export async function getJson<T>(kc: KubeConfig, path: string, query: Record<string, string | undefined>, timeoutMs: number): Promise<T> {
  const url = serverUrl(kc, path, query);
  const opts = await requestOptions(kc);
  return new Promise<T>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        try {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(statusError(res.statusCode ?? 0, text, url.pathname));
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(new KubeError('L7G_ERR_KUBE_DECODE', `GET ${url.pathname}: ${(err as Error).message}`));
        }
      });
    });
    const timer = setTimeout(() => req.destroy(new KubeError('L7G_ERR_KUBE_TIMEOUT', `GET ${url.pathname}: no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** Items per list page: big collections come in pieces, not as one string of hundreds of MB. */
export const LIST_PAGE = 500;

interface ListPage<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/**
 * A whole collection, in pages (`limit` + `continue`): every page of one list is the same
 * snapshot, at the first page's resourceVersion (API Concepts, "Retrieving large results sets in
 * chunks"). A continue token that expired (410) makes the caller list again from the start.
 */
export async function listAll<T>(kc: KubeConfig, path: string, query: Record<string, string | undefined>, timeoutMs: number): Promise<ListPage<T> & { items: T[] }> {
  let page = await getJson<ListPage<T>>(kc, path, { ...query, limit: String(LIST_PAGE) }, timeoutMs);
  const first = page;
  const items: T[] = [...(page.items ?? [])];
  while (page.metadata?.continue) {
    page = await getJson<ListPage<T>>(kc, path, { ...query, limit: String(LIST_PAGE), continue: page.metadata.continue }, timeoutMs);
    for (const it of page.items ?? []) items.push(it);
  }
  return { ...first, metadata: { ...first.metadata, continue: undefined }, items };
}

type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;

/**
 * A watch that ends sooner than this with no event at all is a failure, not the server's timeout:
 * reconnecting at once would loop against an API server (or a load balancer) that closes every
 * stream, so it goes through the informer's backoff instead (client-go's reflector has the same
 * "very short watch" check).
 */
const SHORT_WATCH_MS = 1000;

/** The `Watch` of @kubernetes/client-node (what its ListWatch calls), with deadlines and bookmarks. */
export class KubeWatch {
  readonly #kc: KubeConfig;
  readonly #opts: TransportOptions;
  readonly #onOpen: () => void;
  readonly #onFailure: (err: unknown) => void;

  /**
   * `onOpen`: the server accepted a watch (200): the connection is back. `onFailure`: the caller's
   * `done` itself failed (ListWatch's next watch could not start: a credential plugin, a CA file).
   */
  constructor(kc: KubeConfig, opts: TransportOptions, onOpen: () => void = () => undefined, onFailure: (err: unknown) => void = () => undefined) {
    this.#kc = kc;
    this.#opts = opts;
    this.#onOpen = onOpen;
    this.#onFailure = onFailure;
  }

  /**
   * Starts a watch; `done(err)` once it ends (null: a clean end, resume from the last version).
   * Returns at once with the handle that aborts it, so a watch stuck before its headers can be
   * stopped too.
   */
  async watch(path: string, query: Record<string, unknown>, callback: WatchCallback, done: (err: unknown) => void): Promise<AbortController> {
    const controller = new AbortController();
    const q: Record<string, string | undefined> = { watch: 'true', allowWatchBookmarks: 'true' };
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q[k] = String(v);
    // Spread the server-side ends of many watches over time, as client-go's reflector does.
    q['timeoutSeconds'] = String(Math.round(this.#opts.watchTimeoutSeconds * (1 + Math.random())));
    const url = serverUrl(this.#kc, path, q);
    const opts = await requestOptions(this.#kc);
    const started = Date.now();
    let events = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      // Only called from the request's own callbacks and timers, after `req` exists.
      req.destroy();
      if (err === null && events === 0 && Date.now() - started < SHORT_WATCH_MS && !controller.signal.aborted) {
        err = new KubeError('L7G_ERR_KUBE_STATUS', `watch ${path}: the server ended it at once, with no event`);
      }
      // ListWatch's `done` is async (it starts the next list or watch): its failure is ours to report.
      const next = done(err) as unknown;
      if (next instanceof Promise) next.catch((e: unknown) => this.#onFailure(e));
    };
    const idle = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new KubeError('L7G_ERR_KUBE_TIMEOUT', `watch ${path}: silent for ${this.#opts.watchIdleMs} ms`)), this.#opts.watchIdleMs);
    };
    const req = (url.protocol === 'https:' ? https : http).request(url, { ...opts, signal: controller.signal }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { if (body.length < 4096) body += c; });
        res.on('end', () => finish(statusError(res.statusCode ?? 0, body, url.pathname)));
        res.on('error', finish);
        return;
      }
      idle();
      this.#onOpen();
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        idle();
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line === '') continue;
          let ev: { type?: string; object?: unknown };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            return finish(new KubeError('L7G_ERR_KUBE_DECODE', `watch ${path}: undecodable event`));
          }
          events++;
          if (typeof ev.type === 'string') callback(ev.type, ev.object, ev);
          if (ev.type === 'ERROR') {
            // 410 Expired: ListWatch saw it above and lists again on this clean end. Any other
            // Status is a failure, retried with backoff.
            const code = (ev.object as { code?: unknown } | undefined)?.code;
            const message = (ev.object as { message?: unknown } | undefined)?.message;
            return finish(code === 410 ? null : new KubeError('L7G_ERR_KUBE_STATUS', `watch ${path}: ${String(code)} ${String(message)}`, typeof code === 'number' ? code : undefined));
          }
        }
      });
      res.on('end', () => finish(null));
      res.on('error', (err) => finish(controller.signal.aborted ? null : err));
    });
    req.on('error', (err) => finish(controller.signal.aborted ? null : err));
    timer = setTimeout(
      () => finish(new KubeError('L7G_ERR_KUBE_TIMEOUT', `watch ${path}: no answer in ${this.#opts.requestTimeoutMs} ms`)),
      this.#opts.requestTimeoutMs,
    );
    req.end();
    return controller;
  }
}
