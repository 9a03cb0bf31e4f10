import type { PolicyState } from '../../policy/model.js';
import type { AdminRoute } from './server.js';
import { sendJson, sendText } from './server.js';
import type { StateRef } from '../state-ref.js';

/** What the core routes need to know about the running proxy. */
export interface AdminInfo {
  readonly version: string;
  readonly startedAt: number;
  readonly commandLine: readonly string[];
  /** True once the first policy load succeeded and every listener is bound. */
  ready(): boolean;
  draining(): boolean;
  sources(): readonly { readonly file: string; readonly sha256: string }[];
  /** Reload counters and where each object came from (`file:<path>` or `api`); reload/reload-controller.ts. */
  reload?(): { readonly objects: readonly unknown[]; readonly kubernetes?: unknown };
  /** Effective `limits` and `timeouts` (proxy/hardening.ts). */
  hardening?(): { readonly limits: unknown; readonly timeouts: unknown };
}

/** /ready, /healthz, /server_info, /config_dump. */
export function coreRoutes(ref: StateRef, info: AdminInfo): AdminRoute[] {
  const state = () => (info.draining() ? 'DRAINING' : info.ready() ? 'LIVE' : 'PRE_INITIALIZING');
  return [
    {
      method: 'GET',
      path: '/ready',
      handle(_req, res) {
        const s = state();
        sendText(res, s === 'LIVE' && ref.current !== undefined ? 200 : 503, `${s}\n`);
      },
    },
    { method: 'GET', path: '/healthz', handle: (_req, res) => sendText(res, 200, 'ok\n') },
    {
      // Envoy's /memory, in bytes: V8's heap (allocated = live objects and garbage not yet
      // collected) and the process's resident set.
      method: 'GET',
      path: '/memory',
      handle(_req, res) {
        const m = process.memoryUsage();
        sendJson(res, 200, { allocated: m.heapUsed, heap_size: m.heapTotal, external: m.external, array_buffers: m.arrayBuffers, resident: m.rss });
      },
    },
    {
      method: 'GET',
      path: '/server_info',
      handle(_req, res) {
        sendJson(res, 200, {
          version: info.version,
          state: state(),
          uptime_current_epoch: `${Math.floor((Date.now() - info.startedAt) / 1000)}s`,
          command_line_options: info.commandLine,
          policy_revision: ref.current?.revision ?? 0,
        });
      },
    },
    {
      method: 'GET',
      path: '/config_dump',
      handle(_req, res) {
        const s = ref.current;
        // Before the first revision, the Kubernetes source's state says what it is waiting for.
        const kubernetes = info.reload?.().kubernetes;
        sendJson(res, 200, s === undefined ? { revision: 0, kubernetes } : configDump(s, info));
      },
    },
  ];
}

function configDump(state: PolicyState, info: AdminInfo): unknown {
  const reload = info.reload?.();
  return {
    revision: state.revision,
    cluster_name: state.clusterName,
    sources: info.sources(),
    // JSON.stringify drops the undefined: objects are listed once, below, each with its source.
    ...(reload === undefined ? {} : { reload: { ...reload, objects: undefined, kubernetes: undefined } }),
    kubernetes: reload?.kubernetes,
    objects: reload?.objects ?? state.objects,
    warnings: state.warnings,
    ...info.hardening?.(),
    identities: [...state.identities.values()].map((i) => ({ id: i.id, labels: i.labels })),
    endpoints: state.endpoints.map((e) => ({ id: e.id, namespace: e.namespace, name: e.name, ips: e.ips, identity: e.identity.id })),
    services: state.services.map((s) => ({
      namespace: s.namespace,
      name: s.name,
      cluster_ips: s.clusterIPs,
      ports: s.ports,
      endpoints: s.endpoints.map((e) => `${e.namespace}/${e.name}`),
    })),
  };
}
