/**
 * Observability routes of the admin API: `/metrics` (+ Envoy's `/stats/prometheus`), `/flows`
 * (Hubble's ring buffer as NDJSON, optionally followed), and the JSON the operator commands read
 * (`/v1/endpoints`, `/v1/identities`, `/v1/policy`, `/v1/policy/trace`). Nothing here is on the data path.
 */
import type { ServerResponse } from 'node:http';
import type { FlowSink } from '../../observe/flow-sink.js';
import { serializeFlow } from '../../observe/flow-sink.js';
import type { ProxyMetrics } from '../../observe/metrics.js';
import { endpointsView, identitiesView, policyView, type RejectedObject } from '../../observe/operator-views.js';
import type { AdminRoute } from './server.js';
import { sendJson, sendText } from './server.js';
import type { StateRef } from '../state-ref.js';
import type { AuditModes } from '../exchange/audit-modes.js';
import { traceRoute } from './trace-route.js';

/** A follower that has this much unsent is too slow: it loses flows rather than grow our memory. */
const FOLLOW_MAX_BUFFERED = 1024 * 1024;

/** `rejected`: the Kubernetes source's invalid objects, shown by `policy get`. */
export function observeRoutes(
  ref: StateRef, sink: FlowSink, metrics: ProxyMetrics, rejected?: () => readonly RejectedObject[], audit?: AuditModes,
): AdminRoute[] {
  const prometheus: AdminRoute['handle'] = async (_req, res) => {
    sendText(res, 200, await metrics.text(), metrics.contentType);
  };
  const state = (res: ServerResponse) => {
    const s = ref.current;
    if (s === undefined) sendText(res, 503, 'no policy loaded yet\n');
    return s;
  };
  return [
    { method: 'GET', path: '/metrics', handle: prometheus },
    { method: 'GET', path: '/stats/prometheus', handle: prometheus },
    {
      method: 'GET',
      path: '/flows',
      handle(req, res, url) {
        const follow = url.searchParams.get('follow') === '1' || url.searchParams.get('follow') === 'true';
        const lastParam = url.searchParams.get('last');
        const last = lastParam === null ? (follow ? 0 : sink.capacity) : Number(lastParam);
        if (!Number.isInteger(last) || last < 0) {
          sendText(res, 400, 'last must be a non-negative integer\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        let out = '';
        for (const f of sink.recent(last)) out += serializeFlow(f) + '\n';
        if (!follow) {
          res.end(out);
          return;
        }
        if (out !== '') res.write(out);
        res.flushHeaders();
        const off = sink.subscribe((f) => {
          if (res.writableLength > FOLLOW_MAX_BUFFERED) return;
          res.write(serializeFlow(f) + '\n');
        });
        const stop = () => off();
        req.on('close', stop);
        res.on('close', stop);
      },
    },
    {
      method: 'GET',
      path: '/v1/endpoints',
      handle(_req, res) {
        const s = state(res);
        if (s !== undefined) sendJson(res, 200, endpointsView(s, audit && ((ep) => audit.enabled(ep))));
      },
    },
    {
      method: 'GET',
      path: '/v1/identities',
      handle(_req, res) {
        const s = state(res);
        if (s !== undefined) sendJson(res, 200, identitiesView(s));
      },
    },
    {
      method: 'GET',
      path: '/v1/policy',
      handle(_req, res) {
        const s = state(res);
        if (s !== undefined) sendJson(res, 200, policyView(s, rejected?.()));
      },
    },
    traceRoute(ref),
  ];
}
