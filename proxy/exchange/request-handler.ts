import type { Backend, Destination, Endpoint, HeaderEdit, HeaderList, L7Request, PolicyState, RuleRef, Source } from '../../policy/model.js';
import { newFlowRecord, toFlowEvent, type FlowEvent, type FlowRecord } from '../../observe/flow-event.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import type { Balancer } from '../upstream/balancer.js';
import type { StateRef } from '../state-ref.js';
import type { SelfGuard } from '../listen/self-guard.js';
import type { Upstream } from '../upstream/upstream.js';
import type { OriginalDestination } from '../listen/original-destination.js';
import { upstreamErrorStatus } from '../upstream/upstream.js';
import { replies, replyForUpstreamStatus, type LocalReply } from './local-replies.js';
import { normalizeTarget } from '../http1/normalize-path.js';
import { isValidAuthority } from '../http1/authority.js';
import { isWebSocketUpgrade, tunnelWebSocket } from './websocket-tunnel.js';
import { backendKey, type OutlierDetector } from '../upstream/outlier.js';
import { MAX_ATTEMPTS, pickBackend, retryClass } from '../upstream/retry.js';
import { deniedResponse } from '../http1/response-writer.js';
import { stripRequestHopByHop, stripResponseHopByHop } from '../http1/hop-by-hop.js';

export interface FlowOutput {
  /** False when nobody listens: the handler then records no flow at all. */
  readonly enabled: boolean;
  emit(ev: FlowEvent): void;
  /**
   * Preferred over emit when present: the decision as a flat record the handler reuses (read it
   * synchronously, keep nothing), so no FlowEvent is built unless the receiver needs one.
   */
  record?(r: FlowRecord): void;
}

/** Metrics bumped directly per decision (observe/metrics.ts ProxyMetrics), independent of flows. */
export interface DataPathCounters {
  dropped(reason: FlowEvent['dropReason']): void;
  l7Request(denied: boolean): void;
  /** `code` 0 = none; `latencyNs` negative = unknown. */
  l7Response(method: string, http10: boolean, code: number, latencyNs: number, error: boolean): void;
}

export interface HandlerContext {
  readonly state: StateRef;
  readonly balancer: Balancer;
  readonly upstream: Upstream;
  readonly self: SelfGuard;
  readonly flows: FlowOutput;
  /** Absent: decisions are counted from the emitted flows instead (`--workers`: by the primary). */
  readonly counters?: DataPathCounters | undefined;
  readonly nodeName: string;
  readonly onUpstreamError?: (err: Error, backend: Backend) => void;
  /** Passive outlier ejection (proxy/upstream/outlier.ts); none: every pod is always eligible. */
  readonly outlier?: OutlierDetector;
  /** Set on a `--redirect` listener or in sidecar mode: where the connection was really going. */
  readonly original?: OriginalDestination | undefined;
  /** The requests were decrypted by a `--listen-tls` listener: `x-forwarded-proto: https`. */
  readonly tls?: boolean | undefined;
}

/**
 * The data path, one request at a time:
 * identify source → resolve destination → pick backend → decide (one PolicyState revision) →
 * drop | 403 | forward. Nothing here does I/O except the forward itself.
 */
export function createRequestHandler(ctx: HandlerContext): (req: FrontRequest, res: FrontResponse) => void {
  // Hot path: called per request — change with care.
  return function onRequest(req, res) {
    const state = ctx.state.current;
    if (state === undefined) {
      // Fail closed: nothing is served before the first successful load.
      res.drop();
      return;
    }
    const target = normalizeTarget(req.target);
    if ('error' in target) {
      localReply(res, replies.badRequest, true);
      return;
    }
    if ('redirect' in target) {
      res.writeHead(307, 'Temporary Redirect', ['location', target.redirect, 'content-length', '0'], { contentLength: 0 });
      res.end();
      return;
    }
    const src = state.identify(req.remoteAddress);
    // The original destination (issue 7) outranks the absolute-form authority and Host: a pinned
    // listener is never steered by what the client wrote, only the flow's URL shows its words.
    const original = ctx.original;
    const authority = target.authority ?? req.host ?? original?.authority(req.localPort);
    if (authority === undefined || !isValidAuthority(authority)) {
      localReply(res, replies.badRequest, true);
      return;
    }
    const dest = original === undefined
      ? state.resolve(authority, src.endpoint?.namespace)
      : original.destination(state, req.localPort);
    if (dest === undefined) {
      emitDrop(ctx, state, req, src, undefined, 'UNKNOWN_L3_TARGET_ADDRESS');
      localReply(res, replies.misdirected, false);
      return;
    }
    const backend = pickBackend(ctx.balancer, dest, ctx.outlier, undefined);
    if (backend === undefined) {
      emitDrop(ctx, state, req, src, undefined, 'NO_SERVICE');
      localReply(res, replies.noHealthyUpstream, false);
      return;
    }
    dispatch(ctx, state, req, res, src, dest, target.path, target.authority, authority, backend, undefined, 1);
  };
}

/**
 * Judge the request against the chosen pod's policy and drop / 403 / forward it. Called again with
 * another pod when the first could not be reached, or with the next pod in turn when a pooled
 * connection was found closed before the request was written (proxy/upstream/retry.ts): a retry is judged
 * afresh, against the new pod's policy, as Cilium judges after service translation.
 * `tried`: pods that could not be reached for this request; `attempt`: 1 for the first.
 */
function dispatch(
  ctx: HandlerContext,
  state: PolicyState,
  req: FrontRequest,
  res: FrontResponse,
  src: Source,
  dest: Destination,
  path: string,
  targetAuthority: string | undefined,
  authority: string,
  backend: Backend,
  tried: Set<string> | undefined,
  attempt: number,
): void {
  if (ctx.self.isSelf(backend.ip, backend.port)) {
    emitDrop(ctx, state, req, src, backend, 'UNKNOWN_L3_TARGET_ADDRESS');
    localReply(res, replies.misdirected, false);
    return;
  }

  const decision = state.decide(src, backend.endpoint, backend.port);
  let edits: readonly HeaderEdit[] | undefined;
  if (decision.kind === 'drop') {
    // L3/L4: the client gets no HTTP bytes at all, as when Cilium drops the SYN.
    emitDrop(ctx, state, req, src, backend, decision.reason, decision.direction, decision.by);
    res.drop();
    return;
  }
  if (decision.kind === 'l7') {
    const l7req: L7Request = { method: req.method, path, host: targetAuthority ?? req.host, headers: req.headers };
    const result = decision.check(l7req);
    if (!result.allowed) {
      emitHttp(ctx, state, req, src, backend, authority, path, 'http-request', 'DROPPED', 0, decision.by);
      emitHttp(ctx, state, req, src, backend, authority, path, 'http-response', 'FORWARDED', 403);
      res.writeRaw(deniedResponse(), true);
      return;
    }
    if (result.edits.length > 0) edits = result.edits;
  }
  emitHttp(ctx, state, req, src, backend, authority, path, 'http-request', 'FORWARDED', 0, decision.by);
  if (req.upgrade !== undefined && isWebSocketUpgrade(req)) {
    // Judged above like any request; only now does the connection stop being HTTP.
    tunnelWebSocket(req, res, backend, path, upstreamHeaders(req, edits, authority, ctx.tls === true), undefined, (err) => ctx.onUpstreamError?.(err, backend));
    return;
  }
  const retry = (err: Error, unsent: boolean): boolean => {
    const why = retryClass(err, unsent, req.body);
    if (why === undefined) return false;
    let exclude = tried;
    if (why === 'unreachable') {
      ctx.outlier?.failure(backend);
      exclude = tried ?? new Set<string>();
      exclude.add(backendKey(backend));
    }
    if (attempt >= MAX_ATTEMPTS) return false;
    const next = pickBackend(ctx.balancer, dest, ctx.outlier, exclude);
    if (next === undefined) return false;
    if (why === 'unreachable') {
      dispatch(ctx, state, req, res, src, dest, path, targetAuthority, authority, next, exclude, attempt + 1);
      return true;
    }
    // A pod that drops one pooled connection usually drops them all (restart, idle sweep), and the
    // resets of the others may already be read by the kernel but not yet by undici: after this
    // turn of the event loop they are, so the one retry does not land on another dead connection.
    setImmediate(() => {
      if (!res.finished) dispatch(ctx, state, req, res, src, dest, path, targetAuthority, authority, next, exclude, attempt + 1);
    });
    return true;
  };
  forward(ctx, state, req, res, src, backend, authority, path, edits, retry);
}

function localReply(res: FrontResponse, r: LocalReply, close: boolean): void {
  if (close) res.closeAfterResponse();
  res.writeHead(r.status, r.reason, ['content-length', String(r.body.length), 'content-type', 'text/plain'], {
    contentLength: r.body.length,
  });
  res.end(r.body);
}

function forward(
  ctx: HandlerContext,
  state: PolicyState,
  req: FrontRequest,
  res: FrontResponse,
  src: Source,
  backend: Backend,
  authority: string,
  path: string,
  edits: readonly HeaderEdit[] | undefined,
  retry: ((err: Error, unsent: boolean) => boolean) | undefined,
): void {
  const headers = upstreamHeaders(req, edits, authority, ctx.tls === true);
  if (req.expectContinue) res.sendContinue();
  let started = false;
  /** This attempt handed the request to a retry: the retry's own callbacks report from now on. */
  let retired = false;
  /**
   * We aborted the upstream exchange because the client left or the front end answered: the error
   * that follows is ours, not the pod's, and is neither logged, counted nor flowed as one.
   */
  let abandoned = false;
  let abortUpstream: ((err: Error) => void) | undefined;
  // Declared before send(): undici may call onStart synchronously (an idle pooled connection).
  let pausing: (() => void) | undefined;
  res.onClose(() => {
    if (retired) return;
    // The client is gone (before or during the response), or the front end gave up on the
    // exchange (a timeout): stop the upstream exchange too, or a paused upstream body would hold a
    // pooled connection until undici's body timeout.
    // No `res.finished` check: onClose only fires for an unfinished response, and the front end
    // marks the response finished before calling it (server-response.ts #notifyAborted).
    abandoned = true;
    if (abortUpstream !== undefined) abortUpstream(new Error('client closed the connection'));
    // The front end answered in our place (a timeout's 408/504, a malformed body's 400): that
    // answer is this request's response, and like an upstream failure's 502 it gets its flow and
    // counts.
    const status = res.localStatus;
    if (status !== undefined) emitHttp(ctx, state, req, src, backend, authority, path, 'http-response', 'ERROR', status);
  });
  ctx.upstream.send(
    backend,
    { method: req.method, path, headers, body: req.body },
    {
      onStart(abort, pause, resume) {
        // A request waiting in undici's queue for a connection has no abort handle yet: when the
        // client left or the front end answered (a timeout) meanwhile, it must not be sent now.
        if (res.finished) {
          abandoned = true;
          abort(new Error('client closed the connection'));
          return;
        }
        abortUpstream = abort;
        res.onDrain(resume);
        pausing = pause;
      },
      onHeaders(status, reason, h) {
        started = true;
        ctx.outlier?.success(backend);
        const flat = stripResponseHopByHop(flattenHeaders(h));
        const cl = h['content-length'];
        const contentLength = typeof cl === 'string' ? Number(cl) : undefined;
        res.writeHead(status, reason || defaultReason(status), flat, contentLength === undefined ? {} : { contentLength });
        emitHttp(ctx, state, req, src, backend, authority, path, 'http-response', 'FORWARDED', status);
      },
      onData(chunk) {
        if (!res.write(chunk) && pausing !== undefined) pausing();
      },
      onEnd() {
        res.end();
      },
      onError(err, unsent) {
        if (abandoned) return;
        ctx.onUpstreamError?.(err, backend);
        if (!started && !res.sent && retry !== undefined && retry(err, unsent)) {
          retired = true;
          return;
        }
        if (started || res.sent) {
          // Bytes of this response are already on the wire: the only honest signal left is to close.
          res.drop();
          return;
        }
        const status = upstreamErrorStatus(err);
        emitHttp(ctx, state, req, src, backend, authority, path, 'http-response', 'ERROR', status);
        localReply(res, replyForUpstreamStatus(status), true);
      },
    },
  );
}

/** Request headers for the backend: hop-by-hop removed (RFC 9110 §7.6.1), L7 edits applied, X-Forwarded-* set. */
function upstreamHeaders(req: FrontRequest, edits: readonly HeaderEdit[] | undefined, authority: string, tls: boolean): string[] {
  const out = stripRequestHopByHop(req.headers);
  if (authority !== req.host) setRoutedHost(out, authority);
  let xff: string | undefined;
  for (let i = out.length - 2; i >= 0; i -= 2) {
    const name = out[i]!;
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') {
      xff = xff === undefined ? out[i + 1]! : `${out[i + 1]!}, ${xff}`;
      out.splice(i, 2);
    } else if (name.length === 17 && name.toLowerCase() === 'x-forwarded-proto') {
      out.splice(i, 2);
    }
  }
  out.push('x-forwarded-for', xff === undefined ? req.remoteAddress : `${xff}, ${req.remoteAddress}`);
  out.push('x-forwarded-proto', tls ? 'https' : 'http');
  if (edits !== undefined) applyEdits(out, edits);
  return out;
}

/**
 * RFC 9112 §3.2.2: a proxy that forwards a request with an absolute-form target MUST ignore the
 * received Host and generate one from the target's authority, so the backend acts on the same
 * authority that was routed and judged.
 */
function setRoutedHost(headers: string[], authority: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === 4 && headers[i]!.toLowerCase() === 'host') headers.splice(i, 2);
  }
  headers.unshift('host', authority);
}

/** headerMatches mismatch actions (cilium-semantics.md §3.3): ADD appends, DELETE removes, REPLACE sets. */
export function applyEdits(headers: string[], edits: readonly HeaderEdit[]): void {
  for (const e of edits) {
    if (e.op === 'add') {
      headers.push(e.name, e.value);
      continue;
    }
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (headers[i]!.toLowerCase() === e.name) headers.splice(i, 2);
    }
    if (e.op === 'replace') headers.push(e.name, e.value);
  }
}

function flattenHeaders(h: Record<string, string | string[]>): string[] {
  const out: string[] = [];
  for (const name in h) {
    const v = h[name]!;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  return out;
}

function defaultReason(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request',
  401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Content Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

// --- flows and counters ---------------------------------------------------------------------------
// Counters are bumped for every decision; a flow is recorded only when someone keeps flows, into
// one scratch record (the data path is synchronous: the receiver reads it before we return).

const scratch: FlowRecord = newFlowRecord();

function recordFlow(ctx: HandlerContext, r: FlowRecord): void {
  const flows = ctx.flows;
  if (flows.record !== undefined) flows.record(r);
  else flows.emit(toFlowEvent(r));
}

function emitDrop(
  ctx: HandlerContext,
  state: PolicyState,
  req: FrontRequest,
  src: Source,
  backend: Backend | undefined,
  reason: NonNullable<FlowEvent['dropReason']>,
  direction: 'INGRESS' | 'EGRESS' = 'INGRESS',
  by?: readonly RuleRef[],
): void {
  ctx.counters?.dropped(reason);
  if (!ctx.flows.enabled) return;
  const r = scratch;
  r.timeMs = Date.now();
  r.kind = 'drop';
  r.verdict = 'DROPPED';
  r.dropReason = reason;
  r.direction = direction;
  r.srcIp = req.remoteAddress;
  r.srcPort = req.remotePort;
  r.srcIdentity = src.identity;
  r.srcEndpoint = src.endpoint;
  if (backend === undefined) {
    r.dstIp = req.localAddress;
    r.dstPort = req.localPort;
    r.dstIdentity = state.identify(req.localAddress).identity;
    r.dstEndpoint = undefined;
  } else {
    r.dstIp = backend.ip;
    r.dstPort = backend.port;
    r.dstIdentity = backend.endpoint.identity;
    r.dstEndpoint = backend.endpoint;
  }
  r.method = '';
  r.authority = '';
  r.path = '';
  r.http10 = false;
  r.code = 0;
  r.latencyNs = -1;
  r.revision = state.revision;
  r.by = by;
  r.nodeName = ctx.nodeName;
  recordFlow(ctx, r);
}

/** `code` 0: none (requests). */
function emitHttp(
  ctx: HandlerContext,
  state: PolicyState,
  req: FrontRequest,
  src: Source,
  backend: Backend,
  authority: string,
  path: string,
  kind: 'http-request' | 'http-response',
  verdict: FlowEvent['verdict'],
  code: number,
  by?: readonly RuleRef[],
): void {
  const http10 = req.versionMinor === 0;
  let latencyNs = -1;
  if (kind === 'http-response') {
    latencyNs = Math.max(0, (performance.now() - req.receivedAt) * 1e6);
    ctx.counters?.l7Response(req.method, http10, code, latencyNs, verdict === 'ERROR');
  } else {
    ctx.counters?.l7Request(verdict === 'DROPPED');
  }
  if (!ctx.flows.enabled) return;
  const r = scratch;
  r.timeMs = Date.now();
  r.kind = kind;
  r.verdict = verdict;
  r.dropReason = undefined;
  r.direction = 'INGRESS';
  r.srcIp = req.remoteAddress;
  r.srcPort = req.remotePort;
  r.srcIdentity = src.identity;
  r.srcEndpoint = src.endpoint;
  r.dstIp = backend.ip;
  r.dstPort = backend.port;
  r.dstIdentity = backend.endpoint.identity;
  r.dstEndpoint = backend.endpoint;
  r.method = req.method;
  r.authority = authority;
  r.path = path;
  r.http10 = http10;
  r.code = code;
  r.latencyNs = latencyNs;
  r.revision = state.revision;
  r.by = by;
  r.nodeName = ctx.nodeName;
  recordFlow(ctx, r);
}

export type { Endpoint, HeaderList };
