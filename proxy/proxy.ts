/**
 * `serve` in one process: the control plane (control-plane.ts) and the data plane (data-plane.ts)
 * side by side, sharing one StateRef. `--workers N` composes the same two across processes
 * (cluster/primary.ts, cluster/worker.ts).
 */
import { hostname } from 'node:os';
import { startControlPlane, type ControlPlaneOptions } from './control-plane.js';
import { createDataPlane, type DataPlane } from './data-plane.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from './listen/drain.js';
import { InterceptionController } from './interception/controller.js';
import { IptablesManager } from './interception/iptables.js';
import type { InterceptMode } from './interception/plan.js';
import { PortPool } from './interception/ports.js';
import { sendJson, type AdminRoute, type AdminServer } from './admin/server.js';
import type { ReloadController } from './reload/reload-controller.js';
import type { StateRef } from './state-ref.js';
import type { TlsServeOptions } from './tls/options.js';

export interface ProxyOptions extends ControlPlaneOptions {
  readonly listen: readonly string[];
  /** Also the flows' node name (default: the hostname). */
  readonly nodeName: string | undefined;
  /** `--server-name` (Envoy's `server_name`); absent: l7guard's default replies (proxy/exchange/handler-context.ts). */
  readonly serverName?: string | undefined;
  /** `--proxy-protocol-from` CIDRs (proxy/listen/proxy-protocol.ts). */
  readonly proxyProtocolFrom?: readonly string[] | undefined;
  /** `--listen-tls` listeners and `--identity-from mtls` (proxy/tls/). */
  readonly tls?: TlsServeOptions | undefined;
  /** `--manage-iptables` (proxy/interception/): absent, l7guard never touches the firewall. */
  readonly managedInterception?: ManagedInterception | undefined;
}

export interface ManagedInterception {
  readonly mode: InterceptMode;
  /** `FIRST-LAST`. */
  readonly ports: string;
  readonly chain: string;
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
  let ready = false;
  let data: DataPlane | undefined = undefined; // set below: the hooks read it once serving
  const { control, first } = await startControlPlane(opts, {
    ready: () => ready,
    connections: () => data?.connections ?? 0,
    health: () => data?.health(),
  });
  const { sink, metrics } = control;
  data = createDataPlane({
    state: control.state,
    listen: opts.listen,
    interception: opts.interception,
    tls: opts.tls,
    hardening: opts.hardening,
    proxyProtocolFrom: opts.proxyProtocolFrom,
    admin: adminAddresses(control.admin),
    nodeName: opts.nodeName ?? hostname(),
    audit: control.audit,
    serverName: opts.serverName,
    log: opts.log,
    report: {
      // Metrics are counted by the handler directly; flows are recorded only while someone keeps
      // them, and converted to Hubble JSON only when read (observe/flow-ring.ts).
      flows: { get enabled() { return sink.enabled; }, emit: (ev) => sink.emit(ev), record: (r) => sink.record(r) },
      counters: metrics,
      parseError: () => metrics.parseError(),
      upstreamError: (code) => metrics.upstreamError(code),
      downstreamTimeout: (code) => metrics.downstreamTimeout(code),
    },
  });
  let listening: readonly string[];
  try {
    listening = await data.start();
  } catch (err) {
    control.stopChanges(); // the watches (Kubernetes informers too) would keep the process alive
    await control.close();
    throw new StartupError(`cannot listen: ${(err as Error).message}`);
  }
  let interception: InterceptionController | undefined;
  if (opts.managedInterception !== undefined) {
    const m = opts.managedInterception;
    interception = new InterceptionController({
      data, rules: new IptablesManager({ chain: m.chain }), ports: PortPool.parse(m.ports), mode: m.mode, log: opts.log,
    });
    try {
      // The first revision's redirects are in place before /ready says so.
      await interception.reconcile(first);
    } catch (err) {
      await interception.stop().catch(() => undefined);
      control.stopChanges();
      await data.drain(0);
      await control.close();
      throw new StartupError(`--manage-iptables: ${(err as Error).message}`);
    }
    const ctl = interception;
    control.reload.onReload((e) => {
      if (e.result === 'success' && control.state.current !== undefined) void ctl.reconcile(control.state.current).catch(() => undefined);
    });
  }
  await control.serve(undefined, interception === undefined ? [] : [interceptionRoute(interception)]);
  ready = true;
  opts.log.info({ admin: control.admin.address, adminReadOnly: control.admin.readOnlyAddress, revision: first.revision, objects: first.objects.length }, 'ready');

  let stopping: Promise<void> | undefined;
  const drain = (timeoutMs: number): Promise<void> => {
    stopping ??= (async () => {
      control.stopChanges(); // /ready answers 503 from now on
      // The rules go first: traffic flows straight to the pods again while the listeners drain.
      await interception?.stop().catch((err: unknown) => opts.log.error({ err: (err as Error).message }, 'interception: removing the iptables chain failed; run `l7guard iptables cleanup`'));
      await data.drain(timeoutMs);
      await control.close();
    })();
    return stopping;
  };
  return {
    listening,
    admin: control.admin.address,
    state: control.state,
    reload: control.reload,
    drain,
    close: () => drain(DEFAULT_DRAIN_TIMEOUT_MS),
  };
}

/** Every admin listener bound, for the self-guard. */
export function adminAddresses(admin: AdminServer): string[] {
  return admin.readOnlyAddress === undefined ? [admin.address] : [admin.address, admin.readOnlyAddress];
}

/** `GET /interception`: what `--manage-iptables` redirects, through which listener. */
function interceptionRoute(c: InterceptionController): AdminRoute {
  return { method: 'GET', path: '/interception', handle: (_req, res) => sendJson(res, 200, c.status()) };
}
