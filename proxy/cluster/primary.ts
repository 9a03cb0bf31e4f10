/**
 * `serve --workers N` (N > 1): one primary and N data-plane workers (node:cluster).
 *
 * The primary owns everything that is not the data path: the admin API, the ReloadController (file
 * watch, SIGHUP, PUT/DELETE overlay, validation: it builds every revision itself, so a rejected
 * change is rejected once, here), the FlowSink (ring buffer, /flows, --flows file) and the metrics.
 * After every swap it sends the revision (messages.ts RevisionPayload) to every worker; an admin
 * mutation answers only when every serving worker acknowledged that revision, so the caller's next
 * request is judged by it whichever worker accepts the connection.
 *
 * Listener sharing: cluster's round-robin (SCHED_RR, Node's default on Linux). Node 20's net has no
 * SO_REUSEPORT (`reusePort` arrived in 22.12/23.1); the alternative, SCHED_NONE (one listening
 * socket shared by every worker, the kernel wakes whichever accept()s first), is what Node's docs
 * warn against on Linux: the busiest worker keeps winning (nodejs/node#3241 reports ~70 % on 2 of 8).
 * RR costs the primary one accept() and one fd hand-off over IPC per connection, cheap against
 * keep-alive traffic; and a worker that has not built the current revision has not called listen(),
 * so it is simply not in the rotation. Per connection, not per request: a keep-alive connection
 * stays on its worker.
 */
import cluster, { type Worker } from 'node:cluster';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { SourcedObject } from '../../policy/index.js';
import { sendJson } from '../admin/server.js';
import { startControlPlane } from '../control-plane.js';
import { planDataPlane } from '../data-plane.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../listen/drain.js';
import { adminAddresses, StartupError, type ProxyOptions, type RunningProxy } from '../proxy.js';
import type { ReloadController } from '../reload/reload-controller.js';
import { Interner } from './flow-wire.js';
import { revisionPayload, type FromWorker, type RevisionPayload, type ToWorker, type WorkerConfig } from './messages.js';

export interface ClusterOptions extends ProxyOptions {
  readonly workers: number;
  readonly logLevel?: string | undefined;
}

/** How long a mutation waits for the workers' acknowledgements before answering 503. */
const SYNC_TIMEOUT_MS = 30_000;
/** Restart back-off after a worker dies: doubles per quick death, up to the max; reset once one lived this long. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;
const STABLE_AFTER_MS = 10_000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  /** Last revision this worker acknowledged (0: none yet, it serves nothing). */
  acked: number;
  ackError: string | undefined;
  listening: boolean;
  connections: number;
  restarts: number;
  startedAt: number;
  backoffMs: number;
}

export class WorkersOutOfSync extends Error {
  readonly code = 'L7G_ERR_WORKERS_OUT_OF_SYNC';
}

export async function startCluster(opts: ClusterOptions): Promise<RunningProxy> {
  if (!cluster.isPrimary) throw new Error('startCluster() in a worker');
  const log = opts.log;
  let started = false;
  let draining = false;
  // Validates --listen/--redirect now (throws before anything forks).
  planDataPlane(opts.listen, opts.interception);
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, index) => ({
    index, worker: undefined, acked: 0, ackError: undefined, listening: false, connections: 0, restarts: 0, startedAt: 0, backoffMs: RESTART_MIN_MS,
  }));
  const { control } = await startControlPlane(opts, {
    // 200 only when every worker slot is serving the revision the primary has.
    ready: () => started && inSync(),
    connections: () => slots.reduce((n, s) => n + (s.worker === undefined ? 0 : s.connections), 0),
  });
  const { state, reload, sink, metrics, admin } = control;
  const current = (): number => state.current?.revision ?? 0;
  const inSync = (): boolean => slots.every((s) => s.worker !== undefined && s.listening && s.acked === current() && s.ackError === undefined);

  // The payload of the revision in force; rebuilt once per swap, shared by every send.
  let payload: RevisionPayload = revisionPayload(state.current!, reload.snapshot().objects as SourcedObject[]);
  const interner = new Interner();

  // --- acknowledgements ----------------------------------------------------------------------
  const waiters = new Set<() => void>();
  const settle = (): void => { for (const w of [...waiters]) w(); };
  /** Every worker that may be serving (it acknowledged something) has acknowledged `revision`. */
  const reached = (revision: number): boolean =>
    slots.every((s) => s.worker === undefined || s.acked === 0 || s.acked >= revision);
  const synced = (revision: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!reached(revision)) return;
        waiters.delete(check);
        clearTimeout(timer);
        const failed = slots.filter((s) => s.ackError !== undefined && s.acked >= revision);
        if (failed.length > 0) reject(new WorkersOutOfSync(`worker(s) ${failed.map((s) => s.index).join(', ')} could not build revision ${revision}: ${failed[0]!.ackError}`));
        else resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new WorkersOutOfSync(`revision ${revision} not acknowledged by every worker within ${SYNC_TIMEOUT_MS} ms`));
      }, SYNC_TIMEOUT_MS);
      timer.unref();
      waiters.add(check);
      check();
    });

  const send = (s: Slot, m: ToWorker): void => {
    const w = s.worker;
    // The callback takes a failed write (the worker is exiting): its 'exit' handler does the rest.
    if (w !== undefined && w.isConnected()) w.send(m, undefined, undefined, () => undefined);
  };
  reload.onReload((e) => {
    if (e.result !== 'success') return;
    payload = revisionPayload(state.current!, reload.snapshot().objects as SourcedObject[]);
    for (const s of slots) send(s, { t: 'revision', payload });
  });

  // --- workers -------------------------------------------------------------------------------
  const config = (slot: number): WorkerConfig => ({
    slot,
    listen: opts.listen,
    interception: opts.interception,
    tls: opts.tls,
    hardening: opts.hardening,
    proxyProtocolFrom: opts.proxyProtocolFrom ?? [],
    admin: adminAddresses(admin),
    nodeIPs: opts.nodeIPs,
    clusterName: opts.clusterName,
    allowLocalhost: opts.allowLocalhost,
    nodeName: opts.nodeName ?? hostname(),
    serverName: opts.serverName,
    policyNodeName: opts.nodeName,
    logLevel: opts.logLevel,
    workerHeader: process.env['L7GUARD_DEBUG_WORKER_HEADER'] === '1',
    audit: control.audit.snapshot(),
  });
  // `endpoint config` lands here (the admin API); every worker judges with the same settings.
  control.audit.onChange((audit) => { for (const s of slots) send(s, { t: 'audit', audit }); });
  let listening: readonly string[] = [];
  let startup: { resolve: () => void; reject: (e: Error) => void } | undefined;

  const onMessage = (s: Slot, m: FromWorker): void => {
    if (m.t === 'hello') {
      send(s, { t: 'config', config: config(s.index) });
      send(s, { t: 'revision', payload });
    } else if (m.t === 'stats') {
      s.connections = m.connections;
      for (const ev of m.flows) {
        const e = interner.event(ev);
        sink.emit(e);
        metrics.count(e);
      }
      for (let i = 0; i < m.parseErrors; i++) metrics.parseError();
      for (const [code, n] of m.upstreamErrors) for (let i = 0; i < n; i++) metrics.upstreamError(code);
      for (const [code, n] of m.timeouts) for (let i = 0; i < n; i++) metrics.downstreamTimeout(code);
    } else if (m.t === 'ack') {
      s.acked = m.revision;
      s.ackError = m.error;
      settle();
    } else if (m.t === 'listening') {
      s.listening = true;
      if (listening.length === 0) listening = m.addresses;
      log.info({ worker: s.index, workerPid: s.worker?.process.pid, revision: s.acked, addresses: m.addresses }, 'worker serving');
      if (slots.every((x) => x.listening)) startup?.resolve();
    } else if (m.t === 'listen-failed') {
      startup?.reject(new StartupError(`cannot listen: ${m.error}`));
    }
  };

  const spawn = (s: Slot): void => {
    const w = cluster.fork({ L7GUARD_WORKER_SLOT: String(s.index) });
    s.worker = w;
    s.acked = 0;
    s.ackError = undefined;
    s.listening = false;
    s.connections = 0;
    s.startedAt = Date.now();
    w.on('message', (m: FromWorker) => onMessage(s, m));
    w.on('error', (err) => log.warn({ worker: s.index, err: err.message }, 'worker channel error'));
    w.on('exit', (code, signal) => {
      if (s.worker !== w) return;
      s.worker = undefined;
      s.listening = false;
      s.connections = 0;
      settle(); // a mutation no longer waits for a dead worker: its replacement builds the newest revision
      if (draining) return;
      if (!started) {
        startup?.reject(new StartupError(`worker ${s.index} exited during startup (code ${code}, signal ${signal})`));
        return;
      }
      s.backoffMs = Date.now() - s.startedAt > STABLE_AFTER_MS ? RESTART_MIN_MS : Math.min(s.backoffMs * 2, RESTART_MAX_MS);
      log.error({ worker: s.index, workerPid: w.process.pid, code, signal, restartInMs: s.backoffMs }, 'worker died; restarting it');
      s.restarts++;
      setTimeout(() => { if (!draining) spawn(s); }, s.backoffMs);
    });
  };

  cluster.setupPrimary({
    exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)),
    args: [],
    serialization: 'advanced',
  });
  cluster.schedulingPolicy = cluster.SCHED_RR;
  try {
    await new Promise<void>((resolve, reject) => {
      startup = { resolve, reject };
      for (const s of slots) spawn(s);
    });
  } catch (err) {
    draining = true;
    control.stopChanges();
    await stopWorkers(slots, 0);
    await control.close();
    throw err;
  } finally {
    startup = undefined;
  }

  const syncedReload = {
    apply: async (obj: SourcedObject) => {
      const r = await reload.apply(obj);
      await synced(r.revision);
      return r;
    },
    remove: async (kind: string, namespace: string | undefined, name: string) => {
      const r = await reload.remove(kind, namespace, name);
      await synced(r.revision);
      return r;
    },
    reload: async (trigger: Parameters<ReloadController['reload']>[0], force?: boolean) => {
      const r = await reload.reload(trigger, force);
      await synced(r.revision);
      return r;
    },
  };
  await control.serve(syncedReload, [{
    method: 'GET',
    path: '/workers',
    handle: (_req, res) => sendJson(res, 200, {
      revision: current(),
      in_sync: inSync(),
      workers: slots.map((s) => ({
        slot: s.index, pid: s.worker?.process.pid ?? null, revision: s.acked, error: s.ackError ?? null,
        serving: s.worker !== undefined && s.listening, connections: s.connections, restarts: s.restarts,
      })),
    }),
  }]);
  started = true;
  for (const address of listening) log.info({ address, revision: current(), workers: opts.workers }, 'listening');
  log.info({ admin: admin.address, adminReadOnly: admin.readOnlyAddress, revision: current(), objects: state.current!.objects.length, workers: opts.workers }, 'ready');

  let stopping: Promise<void> | undefined;
  const drain = (timeoutMs: number): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      control.stopChanges(); // /ready answers 503 from now on
      await stopWorkers(slots, timeoutMs);
      await control.close();
    })();
    return stopping;
  };
  return { listening, admin: admin.address, state, reload, drain, close: () => drain(DEFAULT_DRAIN_TIMEOUT_MS) };
}

/** Asks every worker to drain; kills what is still there 5 s after the drain deadline. */
async function stopWorkers(slots: readonly Slot[], timeoutMs: number): Promise<void> {
  await Promise.all(slots.map(async (s) => {
    const w = s.worker;
    if (w === undefined || w.isDead()) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    if (w.isConnected()) w.send({ t: 'drain', timeoutMs } satisfies ToWorker, undefined, undefined, () => undefined);
    else w.process.kill('SIGTERM');
    const timer = setTimeout(() => w.process.kill('SIGKILL'), timeoutMs + 5_000);
    await exited;
    clearTimeout(timer);
  }));
}
