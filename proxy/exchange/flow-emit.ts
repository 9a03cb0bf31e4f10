/**
 * Flows and counters of the data path. Counters are bumped for every decision; a flow is recorded
 * only when someone keeps flows, into one scratch record (the data path is synchronous: the
 * receiver reads it before we return), so a decision costs no allocation here.
 */
import type { Backend, PolicyState, RuleRef, Source } from '../../policy/model.js';
import { newFlowRecord, toFlowEvent, type FlowEvent, type FlowRecord } from '../../observe/flow-event.js';
import type { FrontRequest } from '../http1/types.js';
import type { HandlerContext } from './handler-context.js';

/** What an HTTP flow reports of its request (exchange.ts's Exchange is one). */
export interface HttpFlowSubject {
  readonly ctx: HandlerContext;
  readonly state: PolicyState;
  readonly req: FrontRequest;
  readonly src: Source;
  /** The pod of the current attempt. */
  readonly backend: Backend;
  readonly authority: string;
  readonly path: string;
}

const scratch: FlowRecord = newFlowRecord();

function recordFlow(ctx: HandlerContext, r: FlowRecord): void {
  const flows = ctx.flows;
  if (flows.record !== undefined) flows.record(r);
  else flows.emit(toFlowEvent(r));
}

/**
 * An L3/L4 drop: no HTTP fields. Not an exchange's method: a request is also dropped before it has
 * a pod (`backend` undefined), and is then shown against the address it was sent to. With verdict
 * AUDIT (`audited`), the policy drop that audit mode forwarded instead: one policy-verdict flow.
 */
export function emitDrop(
  ctx: HandlerContext,
  state: PolicyState,
  req: FrontRequest,
  src: Source,
  backend: Backend | undefined,
  reason: NonNullable<FlowEvent['dropReason']>,
  direction: 'INGRESS' | 'EGRESS' = 'INGRESS',
  by?: readonly RuleRef[],
  audited = false,
): void {
  if (audited) ctx.counters?.audited(direction);
  else ctx.counters?.dropped(reason, direction);
  if (!ctx.flows.enabled) return;
  const r = scratch;
  r.timeMs = Date.now();
  r.kind = 'drop';
  r.verdict = audited ? 'AUDIT' : 'DROPPED';
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
  r.staged = undefined;
  recordFlow(ctx, r);
}

/** One HTTP flow: a request's verdict (`code` 0) or its response. */
export function emitHttp(
  ex: HttpFlowSubject,
  kind: 'http-request' | 'http-response',
  verdict: FlowEvent['verdict'],
  code: number,
  by?: readonly RuleRef[],
): void {
  const ctx = ex.ctx;
  const req = ex.req;
  let latencyNs = -1;
  if (kind === 'http-response') {
    latencyNs = Math.max(0, (performance.now() - req.receivedAt) * 1e6);
    ctx.counters?.l7Response(req.method, req.versionMinor === 0, code, latencyNs, verdict === 'ERROR');
  } else {
    ctx.counters?.l7Request(verdict);
  }
  if (ctx.flows.enabled) recordHttp(ex, kind, verdict, code, latencyNs, by, undefined);
}

/**
 * What a staged policy (`key`: "kind/namespace/name") would have decided differently from the
 * policy in force: an extra request flow, verdict AUDIT, `staged`, naming the policy's rules.
 */
export function emitStaged(ex: HttpFlowSubject, key: string, change: 'deny' | 'allow', by: readonly RuleRef[]): void {
  ex.ctx.counters?.staged(key, change);
  if (ex.ctx.flows.enabled) recordHttp(ex, 'http-request', 'AUDIT', 0, -1, by, change);
}

function recordHttp(
  ex: HttpFlowSubject,
  kind: 'http-request' | 'http-response',
  verdict: FlowEvent['verdict'],
  code: number,
  latencyNs: number,
  by: readonly RuleRef[] | undefined,
  staged: FlowEvent['staged'],
): void {
  const req = ex.req;
  const backend = ex.backend;
  const src = ex.src;
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
  r.authority = ex.authority;
  r.path = ex.path;
  r.http10 = req.versionMinor === 0;
  r.code = code;
  r.latencyNs = latencyNs;
  r.revision = ex.state.revision;
  r.by = by;
  r.nodeName = ex.ctx.nodeName;
  r.staged = staged;
  recordFlow(ex.ctx, r);
}
