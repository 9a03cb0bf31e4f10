/**
 * One request from the moment it has a pod to its last byte: the judgement against that pod's
 * policy, the forward, and the retry when proxy/upstream/retry.ts allows one. One object per
 * request, and the upstream sink of every attempt too, so a forward allocates no closures beyond
 * the one res.onClose takes.
 */
import type { Backend, Destination, HeaderEdit, PolicyState, Source } from '../../policy/model.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import type { HandlerContext } from './handler-context.js';
import { upstreamErrorStatus, type UpstreamSink } from '../upstream/upstream.js';
import { replies, replyForUpstreamStatus, sendLocalReply } from './local-replies.js';
import { isWebSocketUpgrade, tunnelWebSocket } from './websocket-tunnel.js';
import { backendKey } from '../upstream/outlier.js';
import { MAX_ATTEMPTS, pickBackend, retryClass } from '../upstream/retry.js';
import { deniedResponse } from '../http1/response-writer.js';
import { fieldsPassUnchanged, forwardingFields, upstreamHeaders, type ForwardedRequest } from './request-headers.js';
import { downstreamHeaders, reasonPhrase } from './response-headers.js';
import { emitDrop, emitHttp, type HttpFlowSubject } from './flow-emit.js';
import { judgeStaged } from './staged.js';

export class Exchange implements UpstreamSink, ForwardedRequest, HttpFlowSubject {
  readonly ctx: HandlerContext;
  /** Read once per request: a retry is judged by the same revision as the first attempt. */
  readonly state: PolicyState;
  readonly req: FrontRequest;
  readonly res: FrontResponse;
  readonly src: Source;
  readonly dest: Destination;
  /** Normalised. */
  readonly path: string;
  /** An absolute-form target's authority: the host the L7 rules see (else the Host field). */
  readonly targetAuthority: string | undefined;
  /** What the request was routed by: target authority, Host, or the original destination. */
  readonly authority: string;
  #backend: Backend;
  /** Pods that could not be reached for this request. */
  #tried: Set<string> | undefined = undefined;
  /** 1 for the first. */
  #attempt = 1;
  /** Set by the allowing L7 rule of the current attempt. */
  #edits: readonly HeaderEdit[] | undefined = undefined;

  // The upstream attempt in flight, reset by each forward. Every attempt reports through this one
  // object, so the handover to a retry must be explicit (`#live`).
  /** Its outcome is this request's: false before the first forward and once a retry took over. */
  #live = false;
  /** The pod's response head arrived: from now on a failure can only close the connection. */
  #started = false;
  /**
   * We aborted the upstream exchange because the client left or the front end answered: the error
   * that follows is ours, not the pod's, and is neither logged, counted nor flowed as one.
   */
  #abandoned = false;
  /** undici's handles, known once it started writing the request (onStart). */
  #abort: ((err: Error) => void) | undefined = undefined;
  #pause: (() => void) | undefined = undefined;
  /** res.onClose is registered once, at the first forward, and serves every attempt after it. */
  #watching = false;

  constructor(
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
  ) {
    this.ctx = ctx;
    this.state = state;
    this.req = req;
    this.res = res;
    this.src = src;
    this.dest = dest;
    this.path = path;
    this.targetAuthority = targetAuthority;
    this.authority = authority;
    this.#backend = backend;
  }

  /** The pod of the current attempt. */
  get backend(): Backend {
    return this.#backend;
  }

  get edits(): readonly HeaderEdit[] | undefined {
    return this.#edits;
  }

  get tls(): boolean {
    return this.ctx.tls === true;
  }

  /**
   * Judge the request against the current pod's policy and drop / 403 / forward it. Run again for
   * a retry: a retry is judged afresh, against the new pod's policy, as Cilium judges after service
   * translation.
   */
  dispatch(): void {
    const { ctx, req, res } = this;
    const backend = this.#backend;
    this.#edits = undefined;
    if (ctx.self.isSelf(backend.ip, backend.port)) {
      emitDrop(ctx, this.state, req, this.src, backend, 'UNKNOWN_L3_TARGET_ADDRESS');
      sendLocalReply(res, replies.misdirected, false, ctx.serverName);
      return;
    }

    let decision = this.state.decide(this.src, backend.endpoint, backend.port);
    // AUDIT: policy denies, audit mode forwards (audit-modes.ts). Asked only of a denial.
    let verdict: 'FORWARDED' | 'AUDIT' = 'FORWARDED';
    let by = decision.by;
    if (decision.kind === 'drop') {
      // Each direction's drop is audited by its own endpoint, and the other direction's decision
      // (a drop, or L7 rules) still holds: one endpoint in audit mode never lifts another's policy.
      const audit = ctx.audit;
      const rest = audit === undefined
        ? undefined
        : this.state.decideAudited?.(this.src, backend.endpoint, backend.port, (d) => audit.enabled(d === 'EGRESS' ? this.src.endpoint : backend.endpoint));
      emitDrop(ctx, this.state, req, this.src, backend, decision.reason, decision.direction, decision.by, rest !== undefined);
      if (rest === undefined) {
        if (this.state.staged !== undefined) judgeStaged(this, this.state.staged, true);
        // L3/L4: the client gets no HTTP bytes at all, as when Cilium drops the SYN.
        res.drop();
        return;
      }
      verdict = 'AUDIT';
      decision = rest;
    }
    if (decision.kind === 'l7') {
      const result = decision.check({ method: req.method, path: this.path, host: this.targetAuthority ?? req.host, headers: req.headers });
      if (!result.allowed) {
        if (ctx.audit === undefined || !ctx.audit.l7Audited(this.src.endpoint, backend.endpoint, decision.by)) {
          emitHttp(this, 'http-request', 'DROPPED', 0, decision.by);
          if (this.state.staged !== undefined) judgeStaged(this, this.state.staged, true);
          emitHttp(this, 'http-response', 'FORWARDED', 403);
          res.writeRaw(deniedResponse(ctx.serverName), true);
          return;
        }
        verdict = 'AUDIT';
        by = decision.by;
      } else if (result.edits.length > 0) this.#edits = result.edits;
    }
    emitHttp(this, 'http-request', verdict, 0, by);
    if (this.state.staged !== undefined) judgeStaged(this, this.state.staged, verdict === 'AUDIT');
    if (req.upgrade !== undefined && isWebSocketUpgrade(req)) {
      // Judged above like any request; only now does the connection stop being HTTP.
      tunnelWebSocket(req, res, backend, this.path, upstreamHeaders(this), undefined, (err) => ctx.onUpstreamError?.(err, backend), ctx.serverName);
      return;
    }
    this.#forward();
  }

  #forward(): void {
    const { req, res } = this;
    const upstream = this.ctx.upstream;
    // The client's field lines go untouched when nothing in them needs an edit (request-headers.ts).
    const rawFields = upstream.takesRawFields === true && req.rawFields !== undefined && fieldsPassUnchanged(this) ? req.rawFields : undefined;
    const headers = rawFields === undefined ? upstreamHeaders(this) : forwardingFields(this);
    // RFC 9110 §10.1.1: no 100 when the framing says there is no content to wait for.
    if (req.expectContinue && req.hasBody) res.sendContinue();
    // Reset before send(): undici may call onStart synchronously (an idle pooled connection).
    this.#live = true;
    this.#started = false;
    this.#abandoned = false;
    this.#abort = undefined;
    this.#pause = undefined;
    if (!this.#watching) {
      this.#watching = true;
      res.onClose(() => this.#clientGone());
    }
    upstream.send(this.#backend, { method: req.method, path: this.path, headers, rawFields, body: req.body }, this);
  }

  /**
   * The client is gone (before or during the response), or the front end gave up on the exchange
   * (a timeout): stop the upstream exchange too, or a paused upstream body would hold a pooled
   * connection until undici's body timeout.
   */
  #clientGone(): void {
    if (!this.#live) return;
    // No `res.finished` check: onClose only fires for an unfinished response, and the front end
    // marks the response finished before calling it (server-response.ts #notifyAborted).
    this.#abandoned = true;
    if (this.#abort !== undefined) this.#abort(new Error('client closed the connection'));
    // The front end answered in our place (a timeout's 408/504, a malformed body's 400): that
    // answer is this request's response, and like an upstream failure's 502 it gets its flow and
    // counts.
    const status = this.res.localStatus;
    if (status !== undefined) emitHttp(this, 'http-response', 'ERROR', status);
  }

  onStart(abort: (err: Error) => void, pause: () => void, resume: () => void): void {
    // A request waiting in undici's queue for a connection has no abort handle yet: when the
    // client left or the front end answered (a timeout) meanwhile, it must not be sent now.
    if (this.res.finished) {
      this.#abandoned = true;
      abort(new Error('client closed the connection'));
      return;
    }
    this.#abort = abort;
    this.res.onDrain(resume);
    this.#pause = pause;
  }

  onHeaders(status: number, reason: string, h: string[], contentLength: number | undefined): void {
    this.#started = true;
    this.ctx.outlier?.success(this.#backend);
    const flat = downstreamHeaders(h, this.ctx.serverName);
    this.res.writeHead(status, reasonPhrase(status, reason), flat, contentLength === undefined ? {} : { contentLength });
    emitHttp(this, 'http-response', 'FORWARDED', status);
  }

  onData(chunk: Buffer): void {
    if (!this.res.write(chunk) && this.#pause !== undefined) this.#pause();
  }

  onEnd(): void {
    this.res.end();
  }

  onError(err: Error, unsent: boolean): void {
    if (this.#abandoned) return;
    const res = this.res;
    this.ctx.onUpstreamError?.(err, this.#backend);
    if (!this.#started && !res.sent && this.#retry(err, unsent)) return;
    if (this.#started || res.sent) {
      // Bytes of this response are already on the wire: the only honest signal left is to close.
      res.drop();
      return;
    }
    const status = upstreamErrorStatus(err);
    emitHttp(this, 'http-response', 'ERROR', status);
    sendLocalReply(res, replyForUpstreamStatus(status), true, this.ctx.serverName);
  }

  /**
   * Another attempt when no byte of the request can have reached the pod (proxy/upstream/retry.ts):
   * on another pod when this one could not be reached, on the next in turn when a pooled connection
   * was found closed before the request was written. True: the next attempt owns the request now.
   */
  #retry(err: Error, unsent: boolean): boolean {
    const why = retryClass(err, unsent, this.req.body);
    if (why === undefined) return false;
    if (why === 'unreachable') {
      this.ctx.outlier?.failure(this.#backend);
      (this.#tried ??= new Set<string>()).add(backendKey(this.#backend));
    }
    if (this.#attempt >= MAX_ATTEMPTS) return false;
    const next = pickBackend(this.ctx.balancer, this.dest, this.ctx.outlier, this.#tried);
    if (next === undefined) return false;
    // Handed over before the next attempt starts: from now on what befalls the client is the next
    // attempt's to report, or nobody's if it never forwards.
    this.#live = false;
    this.#backend = next;
    this.#attempt++;
    if (why === 'unreachable') {
      this.dispatch();
      return true;
    }
    // A pod that drops one pooled connection usually drops them all (restart, idle sweep), and the
    // resets of the others may already be read by the kernel but not yet by undici: after this
    // turn of the event loop they are, so the one retry does not land on another dead connection.
    setImmediate(dispatchIfStillWanted, this);
    return true;
  }
}

/** The deferred retry: not when the client left or the front end answered (a timeout) meanwhile. */
function dispatchIfStillWanted(ex: Exchange): void {
  if (!ex.res.finished) ex.dispatch();
}
