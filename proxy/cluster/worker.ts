/**
 * One `--workers` data-plane process (node:cluster worker). It owns no policy source: it builds
 * whatever revision the primary sends (messages.ts), serves only once it has the current one, and
 * sends every decision back (flows, counters) so the primary's /flows, --flows file and /metrics
 * cover all workers. Its listeners are the cluster's shared handles (see primary.ts for why
 * round-robin). Its data plane is the one every mode builds (data-plane.ts).
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { buildPolicyState, buildPolicyStateSliced, PolicyLoadError, formatProblem } from '../../policy/index.js';
import { createLogger } from '../../observe/log.js';
import type { FlowEvent } from '../../observe/flow-event.js';
import { createDataPlane, type DataPlane, type DataPlaneReport } from '../data-plane.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../listen/drain.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import { checkInterception } from '../listen/original-destination.js';
import { StateRef } from '../state-ref.js';
import { AuditModes } from '../exchange/audit-modes.js';
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
  const audit = new AuditModes();
  state.onSwap((s) => audit.index(s.endpoints));
  let data: DataPlane | undefined;
  let listening: Promise<void> | undefined;
  let draining: Promise<void> | undefined;

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
      connections: data?.connections ?? 0,
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
  // No counters: the primary counts decisions from the flows it receives.
  const report: DataPlaneReport = {
    flows: {
      enabled: true,
      emit(ev) {
        batch.push(slimEvent(ev));
        schedule();
      },
    },
    parseError() {
      parseErrors++;
      schedule();
    },
    upstreamError(code) {
      const k = code ?? 'UNKNOWN';
      upstreamErrors.set(k, (upstreamErrors.get(k) ?? 0) + 1);
      schedule();
    },
    downstreamTimeout(code) {
      if (code === undefined) return;
      timeouts.set(code, (timeouts.get(code) ?? 0) + 1);
      schedule();
    },
  };
  const gauge = setInterval(schedule, GAUGE_INTERVAL_MS);
  gauge.unref();

  /** The first revision builds in one go (nothing is served yet); later ones in slices (policy/steps.ts). */
  const build = async (p: RevisionPayload): Promise<void> => {
    const c = config!;
    try {
      const input = [...p.objects];
      const opts = {
        clusterName: c.clusterName, nodeIPs: c.nodeIPs, allowLocalhost: c.allowLocalhost, nodeName: c.policyNodeName,
        previous: numberingSeed(p), revision: p.revision,
      };
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
    data = createDataPlane({
      state,
      listen: c.listen,
      interception: c.interception,
      tls: c.tls,
      hardening: c.hardening,
      proxyProtocolFrom: c.proxyProtocolFrom,
      admin: c.admin,
      nodeName: c.nodeName,
      audit,
      serverName: c.serverName,
      log,
      report,
      wrapHandler: c.workerHeader ? (h) => withWorkerHeader(h, String(c.slot)) : undefined,
    });
    let addresses: readonly string[];
    try {
      addresses = await data.start();
    } catch (err) {
      send({ t: 'listen-failed', error: (err as Error).message });
      process.exitCode = 1;
      process.disconnect();
      return;
    }
    log.info({ addresses, revision: state.current?.revision }, 'worker listening');
    send({ t: 'listening', addresses });
  };

  const drain = (timeoutMs: number): Promise<void> => {
    draining ??= (async () => {
      await listening?.catch(() => undefined);
      await data?.drain(timeoutMs);
      clearInterval(gauge);
      flush();
      // Leaving the cluster lets the process end once the last flow message is written.
      if (process.connected) process.disconnect();
    })();
    return draining;
  };

  let builds: Promise<void> = Promise.resolve();
  /** The newest revision not built yet: a worker behind the primary skips to it (each payload is whole). */
  let newest: RevisionPayload | undefined;
  process.on('message', (m: ToWorker) => {
    if (m.t === 'config') {
      config = m.config;
      audit.restore(m.config.audit);
      log = createLogger(m.config.logLevel).child({ worker: m.config.slot });
    } else if (m.t === 'audit') {
      audit.restore(m.audit);
    } else if (m.t === 'revision') {
      if (config === undefined || draining !== undefined) return;
      newest = m.payload;
      // One build at a time, always of the newest revision received: under churn a worker does not
      // queue builds it would throw away (acknowledging revision N answers every wait for <= N).
      builds = builds.then(async () => {
        const payload = newest;
        if (payload === undefined) return;
        newest = undefined;
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
