import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { PolicyState } from '../policy/model.js';
import { FlowSink } from '../observe/flow-sink.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { observeRoutes } from './admin/observe-routes.js';
import { createFrontEnd } from './listen/front-end.js';
import { startAdmin, parseHostPort, type AdminServer } from './admin/server.js';
import { coreRoutes } from './admin/core-routes.js';
import { Balancer } from './upstream/balancer.js';
import { OutlierDetector } from './upstream/outlier.js';
import { HealthChecker } from './upstream/health-check.js';
import { trustedPeers } from './listen/proxy-protocol.js';
import { frontEndLimits, hardeningDump, healthCheckOptions, outlierOptions, parseHardening, upstreamOptions, type Hardening } from './hardening.js';
import { createRequestHandler, type FlowOutput, type HandlerContext } from './exchange/request-handler.js';
import { SelfGuard } from './listen/self-guard.js';
import { StateRef } from './state-ref.js';
import { Upstream } from './upstream/upstream.js';
import { checkInterception, planListeners, type InterceptionOptions } from './listen/original-destination.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, drainFrontEnds } from './listen/drain.js';
import { reloadRoutes } from './admin/reload-routes.js';
import { TlsResources, tlsListener } from './tls/listener.js';
import type { TlsServeOptions } from './tls/options.js';
import { ReloadController } from './reload/reload-controller.js';

export interface ProxyOptions {
  readonly paths: readonly string[];
  readonly listen: readonly string[];
  readonly admin: string;
  readonly nodeIPs: readonly string[];
  readonly clusterName: string;
  readonly allowLocalhost: 'always' | 'policy';
  readonly flowsFile: string | undefined;
  /** `--flow-buffer N`: flows kept for /flows (default 4096; 0 = none). */
  readonly flowBuffer?: number | undefined;
  readonly nodeName: string | undefined;
  readonly version: string;
  readonly commandLine: readonly string[];
  readonly log: Logger;
  /** `--mode`, `--pod` and `--redirect` listeners (original-destination.ts); absent: node mode. */
  readonly interception?: InterceptionOptions | undefined;
  /** Timeouts and limits (proxy/hardening.ts); absent: every default. */
  readonly hardening?: Hardening | undefined;
  /** `--proxy-protocol-from` CIDRs (proxy/listen/proxy-protocol.ts). */
  readonly proxyProtocolFrom?: readonly string[] | undefined;
  /** `--listen-tls` listeners and `--identity-from mtls` (proxy/tls/). */
  readonly tls?: TlsServeOptions | undefined;
}

export interface RunningProxy {
  readonly listening: readonly string[];
  readonly admin: string;
  readonly state: StateRef;
  /** File watch, SIGHUP and the admin object API all go through it (reload/reload-controller.ts). */
  readonly reload: ReloadController;
  /** Stop accepting, finish in-flight requests, reset what is left after `timeoutMs`; then close everything. */
  drain(timeoutMs: number): Promise<void>;
  /** drain() with the default timeout. */
  close(): Promise<void>;
}

/** A load that fails before anything is served: the caller exits non-zero with this message. */
export class StartupError extends Error {
  readonly code = 'L7G_ERR_STARTUP';
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const state = new StateRef();
  let ready = false;
  let draining = false;
  const listenSpecs = opts.listen.map(parseHostPort);
  const listeners = planListeners(listenSpecs, opts.interception);
  const reload = new ReloadController({
    paths: opts.paths,
    build: { clusterName: opts.clusterName, nodeIPs: opts.nodeIPs, allowLocalhost: opts.allowLocalhost },
    ref: state,
    log: opts.log,
  });

  // Passive ejection and active health checks (outlier.ts, health-check.ts); probes start once serving.
  const outlierDetector = new OutlierDetector(outlierOptions(opts.hardening ?? parseHardening({})));
  const healthChecker = new HealthChecker(state, outlierDetector, healthCheckOptions(opts.hardening ?? parseHardening({})), opts.log);
  // The admin port comes up first so that /ready can say 503 while the policy loads.
  const admin: AdminServer = await startAdmin(
    opts.admin,
    coreRoutes(state, {
      version: opts.version,
      startedAt: Date.now(),
      commandLine: opts.commandLine,
      ready: () => ready,
      draining: () => draining,
      sources: () => reload.stats().files,
      reload: () => reload.stats(),
      hardening: () => ({
        ...hardeningDump(opts.hardening ?? parseHardening({})),
        // Active and passive upstream health (proxy/upstream/health-check.ts, proxy/upstream/outlier.ts), set once serving.
        upstream_health: { active: healthChecker.snapshot(), outlier: outlierDetector.snapshot() },
      }),
    }),
  );

  let first: PolicyState;
  try {
    first = await reload.start();
    if (opts.interception !== undefined) checkInterception(first, opts.interception);
  } catch (err) {
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
    connectionsActive: () => frontEnds.reduce((n, f) => n + f.connections, 0),
    reloads: () => reload.stats(),
    flowFile: opts.flowsFile === undefined ? undefined : () => sink.stats,
  });
  // Metrics are counted by the handler directly (`counters`); flows are recorded only while
  // someone keeps them, and converted to Hubble JSON only when read (observe/flow-ring.ts).
  const flows: FlowOutput = {
    get enabled() { return sink.enabled; },
    emit: (ev) => sink.emit(ev),
    record: (r) => sink.record(r),
  };
  const hardening = opts.hardening ?? parseHardening({});
  // CIDRs were validated by the CLI (trustedPeers throws only on programming errors here).
  const proxyProtocolFrom = trustedPeers(opts.proxyProtocolFrom ?? []);
  const upstream = new Upstream(upstreamOptions(hardening));
  const adminSpec = opts.admin.startsWith('unix:') ? [] : [parseHostPort(admin.address)];
  const self = new SelfGuard([...listeners, ...adminSpec, ...(opts.tls?.listeners ?? [])]);
  const handlerContext: HandlerContext = {
    state,
    balancer: new Balancer(),
    outlier: outlierDetector,
    upstream,
    self,
    flows,
    counters: metrics,
    nodeName: opts.nodeName ?? hostname(),
    onUpstreamError: (err, backend) => {
      metrics.upstreamError((err as { code?: string }).code);
      opts.log.warn({ err: err.message, code: (err as { code?: string }).code, backend: `${backend.ip}:${backend.port}` }, 'upstream error');
    },
  };
  const handler = createRequestHandler(handlerContext);
  const tlsResources = new TlsResources(upstream, upstreamOptions(hardening));

  const frontEnds: ReturnType<typeof createFrontEnd>[] = [];
  const listening: string[] = [];
  try {
    for (const { host, port, original, redirect } of listeners) {
      const fe = createFrontEnd({
        limits: frontEndLimits(hardening),
        maxConnections: hardening.maxConnections,
        proxyProtocolFrom,
        onRequest: original === undefined ? handler : createRequestHandler({ ...handlerContext, original }),
        onError: (err: Error & { code?: string }, info) => {
          if (info.phase === 'parse') metrics.parseError();
          else if (info.phase === 'timeout') metrics.downstreamTimeout(err.code);
          opts.log.debug({ err: err.message, code: err.code }, 'client error');
        },
      });
      const a = await fe.listen(host, port);
      self.add(a.address, a.port);
      frontEnds.push(fe);
      const shown = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      listening.push(shown);
      opts.log.info({ address: shown, revision: first.revision, redirect }, 'listening');
    }
    for (const t of opts.tls?.listeners ?? []) {
      const l = tlsListener(handlerContext, tlsResources, {
        servicePort: t.servicePort, handshakeTimeoutMs: frontEndLimits(hardening).headersTimeoutMs ?? 60_000, mtls: opts.tls?.mtls,
        upstreamOptions: upstreamOptions(hardening),
        onRefused: (reason, remote, sni) => opts.log.debug({ reason, remote, sni }, 'tls connection refused'),
      });
      const fe = createFrontEnd({
        limits: frontEndLimits(hardening), maxConnections: hardening.maxConnections, wrap: l.wrap, onRequest: l.onRequest,
        onError: (err: Error & { code?: string }, info) => {
          if (info.phase === 'parse') metrics.parseError();
          else if (info.phase === 'timeout') metrics.downstreamTimeout(err.code);
          opts.log.debug({ err: err.message, code: err.code }, 'client error');
        },
      });
      const a = await fe.listen(t.host, t.port);
      self.add(a.address, a.port);
      frontEnds.push(fe);
      const shown = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      listening.push(shown);
      opts.log.info({ address: shown, revision: first.revision, tls: true, servicePort: t.servicePort }, 'listening');
    }
  } catch (err) {
    await Promise.allSettled(frontEnds.map((f) => f.close()));
    await admin.close();
    throw new StartupError(`cannot listen: ${(err as Error).message}`);
  }
  admin.addRoutes(reloadRoutes(reload));
  admin.addRoutes(observeRoutes(state, sink, metrics));
  await reload.watch();
  // Catches an edit made between the first read and the watch being set up (a no-op otherwise).
  void reload.reload('file');
  healthChecker.start();
  ready = true;
  opts.log.info({ admin: admin.address, revision: first.revision, objects: first.objects.length }, 'ready');

  let stopping: Promise<void> | undefined;
  const drain = (timeoutMs: number): Promise<void> => {
    stopping ??= (async () => {
      draining = true; // /ready answers 503 from now on
      reload.close();
      healthChecker.stop();
      await drainFrontEnds(frontEnds, timeoutMs, opts.log);
      await upstream.close();
      await tlsResources.close();
      await sink?.close();
      await admin.close();
    })();
    return stopping;
  };
  return {
    listening,
    admin: admin.address,
    state,
    reload,
    drain,
    close: () => drain(DEFAULT_DRAIN_TIMEOUT_MS),
  };
}
