/**
 * One `--workers` data-plane process (node:cluster worker). It owns no policy source: it builds
 * whatever revision the primary sends (messages.ts), serves only once it has the current one, and
 * sends every decision back (flows, counters) so the primary's /flows, --flows file and /metrics
 * cover all workers. Its listeners are the cluster's shared handles (see primary.ts for why
 * round-robin). The composition below mirrors proxy.ts's data-plane half: keep them in step.
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { buildPolicyState, buildPolicyStateSliced, PolicyLoadError, formatProblem } from '../../policy/index.js';
import { createLogger } from '../../observe/log.js';
import type { FlowEvent } from '../../observe/flow-event.js';
import { parseHostPort } from '../admin/server.js';
import { Balancer } from '../upstream/balancer.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, drainFrontEnds } from '../listen/drain.js';
import { createFrontEnd, type FrontEnd, type FrontRequest, type FrontResponse } from '../listen/front-end.js';
import { frontEndLimits, healthCheckOptions, outlierOptions, parseHardening, upstreamOptions } from '../hardening.js';
import { HealthChecker } from '../upstream/health-check.js';
import { checkInterception, planListeners } from '../listen/original-destination.js';
import { OutlierDetector } from '../upstream/outlier.js';
import { trustedPeers } from '../listen/proxy-protocol.js';
import { createRequestHandler, type FlowOutput, type HandlerContext } from '../exchange/request-handler.js';
import { SelfGuard } from '../listen/self-guard.js';
import { StateRef } from '../state-ref.js';
import { Upstream } from '../upstream/upstream.js';
import { slimEvent } from './flow-wire.js';
import { numberingSeed, sameNumbering, type FromWorker, type RevisionPayload, type ToWorker, type WorkerConfig } from './messages.js';

/** The connection gauge is refreshed at least this often even when no flow moves. */
const GAUGE_INTERVAL_MS = 1000;

export const WORKER_HEADER = 'x-l7guard-worker';

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

export function runWorker(): void {
  if (!cluster.isWorker) throw new Error('runWorker() outside a cluster worker');
  let config: WorkerConfig | undefined;
  let log: Logger = createLogger();
  const state = new StateRef();
  const frontEnds: FrontEnd[] = [];
  let listening: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  let upstream: Upstream | undefined;
  let health: HealthChecker | undefined;

  // --- everything that goes back to the primary, batched per event-loop turn -----------------
  let batch: FlowEvent[] = [];
  let parseErrors = 0;
  let upstreamErrors = new Map<string, number>();
  let timeouts = new Map<string, number>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const m: FromWorker = {
      t: 'stats', flows: batch, parseErrors, upstreamErrors: [...upstreamErrors], timeouts: [...timeouts],
      connections: frontEnds.reduce((n, f) => n + f.connections, 0),
    };
    batch = [];
    parseErrors = 0;
    upstreamErrors = new Map();
    timeouts = new Map();
    send(m);
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  const flows: FlowOutput = {
    enabled: true,
    emit(ev) {
      batch.push(slimEvent(ev));
      schedule();
    },
  };
  const gauge = setInterval(schedule, GAUGE_INTERVAL_MS);
  gauge.unref();

  /** The first revision builds in one go (nothing is served yet); later ones in slices (policy/steps.ts). */
  const build = async (p: RevisionPayload): Promise<void> => {
    const c = config!;
    // Debug only (tests): a slow build, to prove a mutation waits for every worker.
    const lag = Number(process.env['L7GUARD_DEBUG_WORKER_BUILD_DELAY_MS'] ?? 0);
    for (const until = Date.now() + lag; Date.now() < until;);
    try {
      const input = [...p.objects];
      const opts = { clusterName: c.clusterName, nodeIPs: c.nodeIPs, allowLocalhost: c.allowLocalhost, previous: numberingSeed(p), revision: p.revision };
      const next = state.current === undefined ? buildPolicyState(input, opts) : await buildPolicyStateSliced(input, opts);
      const differs = sameNumbering(next, p);
      if (differs !== undefined) throw new Error(`revision ${p.revision} numbered differently from the primary: ${differs}`);
      if (c.interception !== undefined && state.current === undefined) checkInterception(next, c.interception);
      state.swap(next);
      send({ t: 'ack', revision: p.revision });
    } catch (err) {
      const msg = err instanceof PolicyLoadError ? err.problems.map(formatProblem).join('; ') : (err as Error).message;
      log.error({ revision: p.revision, err: msg }, 'worker cannot build the revision the primary accepted');
      send({ t: 'ack', revision: p.revision, error: msg });
    }
  };

  const listen = async (): Promise<void> => {
    const c = config!;
    const hardening = c.hardening ?? parseHardening({});
    const listeners = planListeners(c.listen.map(parseHostPort), c.interception);
    const adminSpec = c.admin.startsWith('unix:') ? [] : [parseHostPort(c.admin)];
    upstream = new Upstream(upstreamOptions(hardening));
    const self = new SelfGuard([...listeners, ...adminSpec]);
    const outlier = new OutlierDetector(outlierOptions(hardening));
    // Each worker probes for itself (N workers = N probes per pod and interval): health is decided
    // where the balancer runs, with no primary round trip and nothing to go stale when one restarts.
    health = new HealthChecker(state, outlier, healthCheckOptions(hardening), log);
    const ctx: HandlerContext = {
      state,
      balancer: new Balancer(),
      outlier,
      upstream,
      self,
      flows,
      nodeName: c.nodeName,
      onUpstreamError: (err, backend) => {
        const code = (err as { code?: string }).code ?? 'UNKNOWN';
        upstreamErrors.set(code, (upstreamErrors.get(code) ?? 0) + 1);
        schedule();
        log.warn({ err: err.message, code, backend: `${backend.ip}:${backend.port}` }, 'upstream error');
      },
    };
    const proxyProtocolFrom = trustedPeers(c.proxyProtocolFrom);
    const addresses: string[] = [];
    try {
      for (const { host, port, original } of listeners) {
        let onRequest = createRequestHandler(original === undefined ? ctx : { ...ctx, original });
        if (c.workerHeader) onRequest = withWorkerHeader(onRequest, String(c.slot));
        const fe = createFrontEnd({
          limits: frontEndLimits(hardening),
          maxConnections: hardening.maxConnections,
          proxyProtocolFrom,
          onRequest,
          onError: (err: Error & { code?: string }, info) => {
            if (info.phase === 'parse') {
              parseErrors++;
              schedule();
            } else if (info.phase === 'timeout' && err.code !== undefined) {
              timeouts.set(err.code, (timeouts.get(err.code) ?? 0) + 1);
              schedule();
            }
            log.debug({ err: err.message, code: err.code }, 'client error');
          },
        });
        const a = await fe.listen(host, port);
        self.add(a.address, a.port);
        frontEnds.push(fe);
        addresses.push(a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
      }
    } catch (err) {
      send({ t: 'listen-failed', error: (err as Error).message });
      await Promise.allSettled(frontEnds.map((f) => f.close()));
      process.exitCode = 1;
      process.disconnect();
      return;
    }
    health.start();
    log.info({ addresses, revision: state.current?.revision }, 'worker listening');
    send({ t: 'listening', addresses });
  };

  const drain = (timeoutMs: number): Promise<void> => {
    draining ??= (async () => {
      await listening?.catch(() => undefined);
      health?.stop();
      await drainFrontEnds(frontEnds, timeoutMs, log);
      await upstream?.close();
      clearInterval(gauge);
      flush();
      // Leaving the cluster lets the process end once the last flow message is written.
      if (process.connected) process.disconnect();
    })();
    return draining;
  };

  let builds: Promise<void> = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    if (m.t === 'config') {
      config = m.config;
      log = createLogger(m.config.logLevel).child({ worker: m.config.slot });
    } else if (m.t === 'revision') {
      if (config === undefined || draining !== undefined) return;
      const payload = m.payload;
      // Revisions build strictly in the order they arrive, one at a time.
      builds = builds.then(async () => {
        await build(payload);
        // A worker serves only once it judges by the revision the primary has: listen after the first build.
        if (listening === undefined && state.current !== undefined) listening = listen();
      }).catch((err: unknown) => log.error({ err: (err as Error).message }, 'worker revision build failed'));
    } else if (m.t === 'drain') {
      void drain(m.timeoutMs);
    }
  });
  send({ t: 'hello' });
  // The primary is gone (crashed, or killed with SIGKILL): nobody can reload us; finish and exit.
  process.on('disconnect', () => void drain(DEFAULT_DRAIN_TIMEOUT_MS));
  // A terminal's Ctrl-C reaches the whole process group: drain like the primary asks us to.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void drain(DEFAULT_DRAIN_TIMEOUT_MS));
  process.on('SIGHUP', () => undefined); // reload is the primary's job
}

/**
 * Debug aid (tests, L7GUARD_DEBUG_WORKER_HEADER=1): stamps which worker wrote each response. Off by
 * default: the wrapper is not even installed then.
 */
function withWorkerHeader(handler: (req: FrontRequest, res: FrontResponse) => void, slot: string): (req: FrontRequest, res: FrontResponse) => void {
  const line = Buffer.from(`${WORKER_HEADER}: ${slot}\r\n`);
  return (req, res) => {
    const stamped: FrontResponse = {
      writeHead: (status, reason, headers, opts) => res.writeHead(status, reason, [...headers, WORKER_HEADER, slot], opts),
      writeRaw: (buf, ends) => {
        const eol = buf.indexOf('\r\n');
        res.writeRaw(eol < 0 ? buf : Buffer.concat([buf.subarray(0, eol + 2), line, buf.subarray(eol + 2)]), ends);
      },
      write: (chunk) => res.write(chunk),
      end: (chunk) => res.end(chunk),
      onDrain: (cb) => res.onDrain(cb),
      sendContinue: () => res.sendContinue(),
      drop: () => res.drop(),
      closeAfterResponse: () => res.closeAfterResponse(),
      takeOver: () => res.takeOver(),
      onClose: (cb) => res.onClose(cb),
      get signal() { return res.signal; },
      get sent() { return res.sent; },
      get finished() { return res.finished; },
      get localStatus() { return res.localStatus; },
    };
    handler(req, stamped);
  };
}
