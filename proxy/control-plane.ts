/**
 * The control plane, built once: the policy sources and the ReloadController that turns them into
 * revisions, the admin API, the flow sink and the metrics. A single-process `serve` and the
 * `--workers` primary compose it; workers never build one (they rebuild what the primary sends).
 *
 * Two steps, because the admin port must answer `/ready` 503 while the first policy loads, and the
 * routes that read flows, metrics or change policy only make sense once something serves:
 *   startControlPlane(): admin up, first load (throws with nothing left open: nothing is served)
 *   serve():             policy-changing and observing routes, watches, ready
 */
import type { Logger } from 'pino';
import type { PolicyState } from '../policy/index.js';
import { FlowSink } from '../observe/flow-sink.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { coreRoutes } from './admin/core-routes.js';
import { observeRoutes } from './admin/observe-routes.js';
import { endpointConfigRoutes } from './admin/endpoint-config-routes.js';
import { AuditModes } from './exchange/audit-modes.js';
import { reloadRoutes, type ReloadTarget } from './admin/reload-routes.js';
import { startAdmin, type AdminRoute, type AdminServer } from './admin/server.js';
import { hardeningDump, parseHardening, type Hardening } from './hardening.js';
import { checkInterception, type InterceptionOptions } from './listen/original-destination.js';
import { ReloadController } from './reload/reload-controller.js';
import type { KubernetesSource } from './sources/kubernetes/kubernetes-source.js';
import { StateRef } from './state-ref.js';

/** The `serve` options the control plane reads (ProxyOptions adds the data plane's). */
export interface ControlPlaneOptions {
  /** `-f` paths. */
  readonly paths: readonly string[];
  readonly admin: string;
  /** `--admin-readonly`: a second admin listener that answers GET and HEAD only. */
  readonly adminReadOnly?: string | undefined;
  readonly nodeIPs: readonly string[];
  readonly clusterName: string;
  readonly allowLocalhost: 'always' | 'policy';
  readonly flowsFile: string | undefined;
  /** `--flow-buffer N`: flows kept for /flows (default 4096; 0 = none). */
  readonly flowBuffer?: number | undefined;
  /** `--policy-audit-mode`: every endpoint's denials are forwarded and flowed as AUDIT. */
  readonly policyAuditMode?: boolean | undefined;
  /** `--node-name` as given: which pods are this node's (policy/build.ts). */
  readonly nodeName?: string | undefined;
  readonly version: string;
  readonly commandLine: readonly string[];
  readonly log: Logger;
  /** `--mode`, `--pod` and `--redirect` listeners (listen/original-destination.ts); absent: node mode. */
  readonly interception?: InterceptionOptions | undefined;
  /** Timeouts and limits (proxy/hardening.ts); absent: every default. */
  readonly hardening?: Hardening | undefined;
  /** `--kubernetes`: objects from the API server too (proxy/sources/kubernetes/). */
  readonly kubernetes?: { readonly kubeconfig: string | undefined; readonly requestTimeoutMs: number | undefined } | undefined;
}

/** What only the composition knows: when it serves, how many connections it has, its upstream health. */
export interface ControlPlaneHooks {
  ready(): boolean;
  connections(): number;
  health?(): unknown;
}

export interface ControlPlane {
  readonly state: StateRef;
  readonly reload: ReloadController;
  readonly admin: AdminServer;
  readonly sink: FlowSink;
  readonly metrics: ProxyMetrics;
  /** Policy audit mode, the flag and each endpoint's option (`endpoint config`). */
  readonly audit: AuditModes;
  /**
   * Adds the routes that change policy (through `target`: the controller itself, or the primary's
   * wrapper that answers once every worker has the revision) and observe it, plus `extra`; starts
   * the watches. Call once the data plane serves.
   */
  serve(target?: ReloadTarget, extra?: readonly AdminRoute[]): Promise<void>;
  /** Stops the watches and refuses further changes; /ready answers 503 from now on. */
  stopChanges(): void;
  /** Closes the flow sink and the admin API. */
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions, hooks: ControlPlaneHooks): Promise<{ control: ControlPlane; first: PolicyState }> {
  const state = new StateRef();
  const audit = new AuditModes(opts.policyAuditMode === true);
  state.onSwap((s) => audit.index(s.endpoints));
  const hardening = opts.hardening ?? parseHardening({});
  let draining = false;
  const kubernetes = opts.kubernetes === undefined ? undefined : await kubernetesSource(opts.kubernetes, opts.log);
  const reload = new ReloadController({
    paths: opts.paths,
    // Only an explicit --node-name says which pods are local (policy/build.ts BuildOptions.nodeName).
    build: { clusterName: opts.clusterName, nodeIPs: opts.nodeIPs, allowLocalhost: opts.allowLocalhost, nodeName: opts.nodeName },
    ref: state,
    log: opts.log,
    kubernetes,
  });
  const admin = await startAdmin(
    opts.admin,
    coreRoutes(state, {
      version: opts.version,
      startedAt: Date.now(),
      commandLine: opts.commandLine,
      ready: hooks.ready,
      draining: () => draining,
      sources: () => reload.stats().files,
      reload: () => reload.stats(),
      hardening: () => (hooks.health === undefined
        ? hardeningDump(hardening)
        : { ...hardeningDump(hardening), upstream_health: hooks.health() }),
    }),
    opts.adminReadOnly,
  );

  let first: PolicyState;
  try {
    first = await reload.start();
    if (opts.interception !== undefined) checkInterception(first, opts.interception);
  } catch (err) {
    reload.close();
    await admin.close();
    throw err;
  }

  // The ring buffer (admin /flows, `l7guard observe`) unless --flow-buffer 0; the file only with --flows.
  const sink = new FlowSink({
    file: opts.flowsFile, clusterName: opts.clusterName, capacity: opts.flowBuffer,
    onError: (err) => opts.log.warn({ err: err.message, file: opts.flowsFile }, 'flow log error'),
  });
  const metrics = new ProxyMetrics({
    revision: () => state.current?.revision ?? 0,
    connectionsActive: hooks.connections,
    reloads: () => reload.stats(),
    kubernetes: kubernetes === undefined ? undefined : () => kubernetes.status(),
    flowFile: opts.flowsFile === undefined ? undefined : () => sink.stats,
  });

  const control: ControlPlane = {
    state, reload, admin, sink, metrics, audit,
    async serve(target = reload, extra = []) {
      admin.addRoutes(reloadRoutes(target));
      admin.addRoutes(observeRoutes(state, sink, metrics, kubernetes === undefined ? undefined : () => kubernetes.status().rejected, audit));
      admin.addRoutes(endpointConfigRoutes(state, audit));
      if (extra.length > 0) admin.addRoutes(extra);
      await reload.watch();
      // Catches an edit made between the first read and the watch being set up (a no-op otherwise).
      void reload.reload('file');
    },
    stopChanges() {
      draining = true;
      reload.close();
    },
    async close() {
      await sink.close();
      await admin.close();
    },
  };
  return { control, first };
}

/**
 * Loaded only with `--kubernetes`: @kubernetes/client-node is ~800 modules, ~40 MB of heap and ~75 MB of
 * RSS once imported, which a `serve -f` (files only) would carry for nothing (docs/benchmarks.md, idle).
 */
async function kubernetesSource(k: NonNullable<ControlPlaneOptions['kubernetes']>, log: Logger): Promise<KubernetesSource> {
  const [{ resolveKubeConfig }, { KubernetesSource }] = await Promise.all([
    import('./sources/kubernetes/config.js'),
    import('./sources/kubernetes/kubernetes-source.js'),
  ]);
  return new KubernetesSource({
    // A configuration problem is a startup error (exit 1, message on stderr), before any port opens.
    config: resolveKubeConfig(k.kubeconfig),
    log,
    transport: k.requestTimeoutMs === undefined ? undefined : { requestTimeoutMs: k.requestTimeoutMs },
  });
}
