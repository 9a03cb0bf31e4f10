/**
 * `GET /v1/policy/trace` — `l7guard policy trace` against the running revision. Read-only, so a GET
 * with the CLI's flags as query parameters (`src-labels`, `src-pod`, `dst-labels`, `dst-pod`,
 * `dport`, `http-method`, `http-path`, `http-host`, `http-header`; list flags repeat). Answers the
 * TraceResult JSON (policy/trace.ts), or with `dst-service` a ServiceTraceResult (one per backend); 400 with `{code, message}` for a bad or unresolvable query.
 */
import { trace, TraceError, traceQuery, traceService } from '../../policy/trace.js';
import type { AdminRoute } from './server.js';
import { sendJson, sendText } from './server.js';
import type { StateRef } from '../state-ref.js';

export function traceRoute(ref: StateRef): AdminRoute {
  return {
    method: 'GET',
    path: '/v1/policy/trace',
    handle(_req, res, url) {
      const s = ref.current;
      if (s === undefined) {
        sendText(res, 503, 'no policy loaded yet\n');
        return;
      }
      const q = url.searchParams;
      const one = (k: string) => q.get(k) ?? undefined;
      try {
        const o = {
          srcLabels: q.getAll('src-labels'), srcPod: one('src-pod'), dstLabels: q.getAll('dst-labels'), dstPod: one('dst-pod'),
          dport: one('dport'), httpMethod: one('http-method'), httpPath: one('http-path'), httpHost: one('http-host'), httpHeaders: q.getAll('http-header'),
        };
        const service = one('dst-service');
        sendJson(res, 200, service === undefined ? trace(s, traceQuery(s, o)) : traceService(s, { ...o, dstService: service }));
      } catch (err) {
        if (!(err instanceof TraceError)) throw err;
        sendJson(res, 400, { code: err.code, message: err.message });
      }
    },
  };
}
