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
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(statusError(res.statusCode ?? 0, text, url.pathname));
        try {
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

type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;

/** The `Watch` of @kubernetes/client-node (what its ListWatch calls), with deadlines and bookmarks. */
export class KubeWatch {
  readonly #kc: KubeConfig;
  readonly #opts: TransportOptions;

  constructor(kc: KubeConfig, opts: TransportOptions) {
    this.#kc = kc;
    this.#opts = opts;
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
    let finished = false;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.destroy();
      done(err);
    };
    let timer: NodeJS.Timeout = setTimeout(
      () => finish(new KubeError('L7G_ERR_KUBE_TIMEOUT', `watch ${path}: no answer in ${this.#opts.requestTimeoutMs} ms`)),
      this.#opts.requestTimeoutMs,
    );
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
          if (typeof ev.type === 'string') callback(ev.type, ev.object, ev);
          // An ERROR event (410 Expired among them) ends this watch; ListWatch saw it above.
          if (ev.type === 'ERROR') return finish(null);
        }
      });
      res.on('end', () => finish(null));
      res.on('error', (err) => finish(controller.signal.aborted ? null : err));
    });
    req.on('error', (err) => finish(controller.signal.aborted ? null : err));
    req.end();
    return controller;
  }
}
