/**
 * The data plane, built once: every listener (plain `--listen`/`--redirect` and `--listen-tls`, in
 * one loop), the request handler's context, the upstream pools, outlier ejection, active health
 * checks and the self-guard. A single-process `serve` and each `--workers` worker compose it the
 * same way; they differ only in where decisions are reported (`DataPlaneReport`) and where the
 * revision comes from (the StateRef they pass in).
 *
 * It owns no policy source and no admin API (control-plane.ts): it reads `state.current` per request
 * and never waits for anything but the proxying itself.
 */
import type { Logger } from 'pino';
import type { FrontEnd } from './listen/front-end.js';
import type { FrontErrorInfo, FrontRequest, FrontResponse } from './http1/types.js';
import { createFrontEnd } from './listen/front-end.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, drainFrontEnds } from './listen/drain.js';
import { parseHostPort } from './admin/server.js';
import { originalDestination, planListeners, type InterceptionOptions } from './listen/original-destination.js';
import { trustedPeers } from './listen/proxy-protocol.js';
import { SelfGuard } from './listen/self-guard.js';
import { createRequestHandler, type DataPathCounters, type FlowOutput, type HandlerContext } from './exchange/request-handler.js';
import { frontEndLimits, healthCheckOptions, outlierOptions, parseHardening, upstreamOptions, type Hardening } from './hardening.js';
import { Balancer } from './upstream/balancer.js';
import { HealthChecker } from './upstream/health-check.js';
import { OutlierDetector } from './upstream/outlier.js';
import { createUpstreamClient, followPods } from './upstream/pools.js';
import type { StateRef } from './state-ref.js';
import type { AuditModes } from './exchange/audit-modes.js';
import { TlsResources, tlsListener } from './tls/listener.js';
import type { TlsServeOptions } from './tls/options.js';

type RequestHandler = (req: FrontRequest, res: FrontResponse) => void;

/** Where the data plane reports what is not a flow: metrics in one process, the primary's IPC from a worker. */
export interface DataPlaneReport {
  readonly flows: FlowOutput;
  /** Absent: decisions are counted from the flows by whoever receives them (the `--workers` primary). */
  readonly counters?: DataPathCounters | undefined;
  parseError(): void;
  upstreamError(code: string | undefined): void;
  downstreamTimeout(code: string | undefined): void;
}

export interface DataPlaneOptions {
  readonly state: StateRef;
  /** `--listen` specs (HOST:PORT). */
  readonly listen: readonly string[];
  readonly interception?: InterceptionOptions | undefined;
  readonly tls?: TlsServeOptions | undefined;
  readonly hardening?: Hardening | undefined;
  /** `--proxy-protocol-from` CIDRs, validated by the CLI. */
  readonly proxyProtocolFrom?: readonly string[] | undefined;
  /** The admin listeners (HOST:PORT or unix:PATH): the self-guard never forwards to them. */
  readonly admin: readonly string[];
  readonly nodeName: string;
  /** Policy audit mode (exchange/audit-modes.ts); absent: every denial is enforced. */
  readonly audit?: AuditModes | undefined;
  /** `--server-name` (HandlerContext.serverName); absent: l7guard's default replies. */
  readonly serverName?: string | undefined;
  readonly report: DataPlaneReport;
  readonly log: Logger;
  /** Wraps every listener's handler (a worker's debug stamp); absent: the handler as built. */
  readonly wrapHandler?: ((h: RequestHandler) => RequestHandler) | undefined;
}

export interface DataPlane {
  /** Binds every listener (throws, with nothing left bound, when one cannot) and starts health checks. */
  start(): Promise<readonly string[]>;
  /**
   * A listener added while serving (l7guard-managed interception): every connection it accepts was
   * going to `dest` (a Pod IP:port or a Service clusterIP:port) before an iptables REDIRECT.
   */
  addRedirect(host: string, port: number, dest: { readonly ip: string; readonly port: number }): Promise<void>;
  /** Stops accepting on an added listener; its connections finish their responses in the background, as in a drain. */
  removeRedirect(port: number): Promise<void>;
  readonly connections: number;
  /** Active and passive upstream health, for /config_dump. */
  health(): { readonly active: unknown; readonly outlier: unknown };
  /** Stop accepting, let in-flight requests finish until `timeoutMs`, then close the pools. */
  drain(timeoutMs: number): Promise<void>;
}

/** Validates `--listen`/`--redirect` without binding anything (the primary checks before it forks). */
export function planDataPlane(listen: readonly string[], interception: InterceptionOptions | undefined): void {
  planListeners(listen.map(parseHostPort), interception);
}

export function createDataPlane(opts: DataPlaneOptions): DataPlane {
  const hardening = opts.hardening ?? parseHardening({});
  const { log, report } = opts;
  const planned = planListeners(opts.listen.map(parseHostPort), opts.interception);
  const tlsSpecs = opts.tls?.listeners ?? [];
  const adminSpec = opts.admin.filter((a) => !a.startsWith('unix:')).map(parseHostPort);
  const self = new SelfGuard([...planned, ...adminSpec, ...tlsSpecs]);
  const outlier = new OutlierDetector(outlierOptions(hardening));
  // In `--workers` mode each worker probes for itself (N workers = N probes per pod and interval):
  // health is decided where the balancer runs, with no primary round trip and nothing to go stale.
  const health = new HealthChecker(opts.state, outlier, healthCheckOptions(hardening), log);
  const upstream = createUpstreamClient(upstreamOptions(hardening));
  const tlsResources = new TlsResources(upstream, upstreamOptions(hardening));
  followPods(opts.state, () => [upstream, tlsResources]);
  const ctx: HandlerContext = {
    state: opts.state,
    balancer: new Balancer(),
    outlier,
    upstream,
    self,
    flows: report.flows,
    counters: report.counters,
    nodeName: opts.nodeName,
    audit: opts.audit,
    serverName: opts.serverName,
    onUpstreamError: (err, backend) => {
      const code = (err as { code?: string }).code;
      report.upstreamError(code);
      log.warn({ err: err.message, code, backend: `${backend.ip}:${backend.port}` }, 'upstream error');
    },
  };
  const onError = (err: Error & { code?: string }, info: FrontErrorInfo): void => {
    if (info.phase === 'parse') report.parseError();
    else if (info.phase === 'timeout') report.downstreamTimeout(err.code);
    log.debug({ err: err.message, code: err.code }, 'client error');
  };
  const wrap = opts.wrapHandler ?? ((h: RequestHandler) => h);
  const limits = frontEndLimits(hardening);
  const proxyProtocolFrom = trustedPeers(opts.proxyProtocolFrom ?? []);
  const plain = createRequestHandler(ctx);

  /** One list for both kinds of listener: what to bind, the front end's options, what to log. */
  const specs = [
    ...planned.map((l) => ({
      host: l.host, port: l.port, logged: { redirect: l.redirect },
      frontEnd: { proxyProtocolFrom, onRequest: wrap(l.original === undefined ? plain : createRequestHandler({ ...ctx, original: l.original })) },
    })),
    ...tlsSpecs.map((t) => {
      const l = tlsListener(ctx, tlsResources, {
        servicePort: t.servicePort, handshakeTimeoutMs: limits.headersTimeoutMs ?? 60_000, mtls: opts.tls?.mtls,
        upstreamOptions: upstreamOptions(hardening),
        onRefused: (reason, remote, sni) => log.debug({ reason, remote, sni }, 'tls connection refused'),
      });
      return { host: t.host, port: t.port, logged: { tls: true, servicePort: t.servicePort }, frontEnd: { wrap: l.wrap, onRequest: wrap(l.onRequest) } };
    }),
  ];
  const frontEnds: FrontEnd[] = [];
  const redirects = new Map<number, FrontEnd>();

  return {
    async start() {
      const listening: string[] = [];
      try {
        for (const s of specs) {
          const fe = createFrontEnd({ ...s.frontEnd, limits, maxConnections: hardening.maxConnections, onError, serverName: opts.serverName });
          const a = await fe.listen(s.host, s.port);
          self.add(a.address, a.port);
          frontEnds.push(fe);
          const shown = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
          listening.push(shown);
          log.info({ address: shown, revision: opts.state.current?.revision, ...s.logged }, 'listening');
        }
      } catch (err) {
        await Promise.allSettled(frontEnds.map((f) => f.close()));
        frontEnds.length = 0;
        throw err;
      }
      health.start();
      return listening;
    },
    async addRedirect(host, port, dest) {
      const original = originalDestination({ kind: 'node' }, { ip: dest.ip, port: dest.port });
      const fe = createFrontEnd({ proxyProtocolFrom, onRequest: wrap(createRequestHandler({ ...ctx, original })), limits, maxConnections: hardening.maxConnections, onError, serverName: opts.serverName });
      const a = await fe.listen(host, port);
      self.add(a.address, a.port);
      frontEnds.push(fe);
      redirects.set(port, fe);
      log.info({ address: `${a.address}:${a.port}`, redirect: `${dest.ip}:${dest.port}` }, 'redirect listener added');
    },
    async removeRedirect(port) {
      const fe = redirects.get(port);
      if (fe === undefined) return;
      redirects.delete(port);
      // Stop accepting at once and return: the connections still open finish their responses in
      // the background (reset at the drain deadline), so a long stream never holds up the next
      // reconcile. Until they are gone the front end stays in `frontEnds`, so drain() covers it.
      const timer = setTimeout(() => fe.closeAll(), DEFAULT_DRAIN_TIMEOUT_MS);
      timer.unref();
      void fe.close().then(() => {
        clearTimeout(timer);
        const i = frontEnds.indexOf(fe);
        if (i >= 0) frontEnds.splice(i, 1);
      });
    },
    get connections() {
      let n = 0;
      for (const f of frontEnds) n += f.connections;
      return n;
    },
    health: () => ({ active: health.snapshot(), outlier: outlier.snapshot() }),
    async drain(timeoutMs) {
      health.stop();
      await drainFrontEnds(frontEnds, timeoutMs, log);
      await upstream.close();
      await tlsResources.close();
    },
  };
}
