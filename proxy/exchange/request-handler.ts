import type { Endpoint, HeaderList } from '../../policy/model.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import type { HandlerContext } from './handler-context.js';
import { replies, sendLocalReply, sendRedirect } from './local-replies.js';
import { normalizeTarget } from '../http1/normalize-path.js';
import { isValidAuthority } from '../http1/authority.js';
import { pickBackend } from '../upstream/retry.js';
import { Exchange } from './exchange.js';
import { emitDrop } from './flow-emit.js';

export type { DataPathCounters, FlowOutput, HandlerContext } from './handler-context.js';

/**
 * The data path, one request at a time:
 * identify source → resolve destination → pick backend → decide (one PolicyState revision) →
 * drop | 403 | forward. From the pod on, the request is an Exchange (exchange.ts); nothing does
 * I/O except its forward.
 */
export function createRequestHandler(ctx: HandlerContext): (req: FrontRequest, res: FrontResponse) => void {
  const server = ctx.serverName;
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
      sendLocalReply(res, replies.badRequest, true, server);
      return;
    }
    if ('redirect' in target) {
      sendRedirect(res, target.redirect, server);
      return;
    }
    const src = state.identify(req.remoteAddress);
    // The original destination (a --redirect or managed listener, or sidecar mode) outranks the
    // absolute-form authority and Host: a pinned listener is never steered by what the client
    // wrote, only the flow's URL shows its words.
    const original = ctx.original;
    const authority = target.authority ?? req.host ?? original?.authority(req.localPort);
    if (authority === undefined || !isValidAuthority(authority)) {
      sendLocalReply(res, replies.badRequest, true, server);
      return;
    }
    const dest = original === undefined
      ? state.resolve(authority, src.endpoint?.namespace)
      : original.destination(state, req.localPort);
    if (dest === undefined) {
      emitDrop(ctx, state, req, src, undefined, 'UNKNOWN_L3_TARGET_ADDRESS');
      sendLocalReply(res, replies.misdirected, false, server);
      return;
    }
    const backend = pickBackend(ctx.balancer, dest, ctx.outlier, undefined);
    if (backend === undefined) {
      emitDrop(ctx, state, req, src, undefined, 'NO_SERVICE');
      sendLocalReply(res, replies.noHealthyUpstream, false, server);
      return;
    }
    new Exchange(ctx, state, req, res, src, dest, target.path, target.authority, authority, backend).dispatch();
  };
}

export { applyEdits } from './request-headers.js';
export type { Endpoint, HeaderList };
