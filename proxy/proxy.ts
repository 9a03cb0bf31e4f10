import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { PolicyState } from '../policy/model.js';
import { loadPolicyState } from '../policy/index.js';
import { FlowSink } from '../observe/flow-sink.js';
import { createFrontEnd } from './front-end.js';
import { startAdmin, parseHostPort, type AdminServer } from './admin.js';
import { coreRoutes } from './admin-core-routes.js';
import { Balancer } from './balancer.js';
import { createRequestHandler, type FlowOutput } from './request-handler.js';
import { SelfGuard } from './self-guard.js';
import { StateRef } from './state-ref.js';
import { Upstream } from './upstream.js';

export interface ProxyOptions {
  readonly paths: readonly string[];
  readonly listen: readonly string[];
  readonly admin: string;
  readonly nodeIPs: readonly string[];
  readonly clusterName: string;
  readonly allowLocalhost: 'always' | 'policy';
  readonly flowsFile: string | undefined;
  readonly nodeName: string | undefined;
  readonly version: string;
  readonly commandLine: readonly string[];
  readonly log: Logger;
}

export interface RunningProxy {
  readonly listening: readonly string[];
  readonly admin: string;
  readonly state: StateRef;
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
  let sources: { file: string; sha256: string }[] = [];
  const listenSpecs = opts.listen.map(parseHostPort);

  // The admin port comes up first so that /ready can say 503 while the policy loads.
  const admin: AdminServer = await startAdmin(
    opts.admin,
    coreRoutes(state, {
      version: opts.version,
      startedAt: Date.now(),
      commandLine: opts.commandLine,
      ready: () => ready,
      draining: () => draining,
      sources: () => sources,
    }),
  );

  let first: PolicyState;
  try {
    first = await loadPolicyState([...opts.paths], {
      clusterName: opts.clusterName,
      nodeIPs: opts.nodeIPs,
      allowLocalhost: opts.allowLocalhost,
      previous: undefined,
      revision: 1,
    });
    sources = await hashSources(first);
  } catch (err) {
    await admin.close();
    throw err;
  }
  for (const w of first.warnings) opts.log.warn({ revision: first.revision }, w);
  state.swap(first);

  const sink = opts.flowsFile === undefined ? undefined : new FlowSink({ file: opts.flowsFile, clusterName: opts.clusterName });
  const flows: FlowOutput = sink ?? { enabled: false, emit() {} };
  const upstream = new Upstream();
  const adminSpec = opts.admin.startsWith('unix:') ? [] : [parseHostPort(admin.address)];
  const handler = createRequestHandler({
    state,
    balancer: new Balancer(),
    upstream,
    self: new SelfGuard([...listenSpecs, ...adminSpec]),
    flows,
    nodeName: opts.nodeName ?? hostname(),
    onUpstreamError: (err, backend) =>
      opts.log.warn({ err: err.message, code: (err as { code?: string }).code, backend: `${backend.ip}:${backend.port}` }, 'upstream error'),
  });

  const frontEnds: ReturnType<typeof createFrontEnd>[] = [];
  const listening: string[] = [];
  try {
    for (const { host, port } of listenSpecs) {
      const fe = createFrontEnd({
        onRequest: handler,
        onError: (err: Error & { code?: string }) => opts.log.debug({ err: err.message, code: err.code }, 'client error'),
      });
      const a = await fe.listen(host, port);
      frontEnds.push(fe);
      const shown = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      listening.push(shown);
      opts.log.info({ address: shown, revision: first.revision }, 'listening');
    }
  } catch (err) {
    await Promise.allSettled(frontEnds.map((f) => f.close()));
    await admin.close();
    throw new StartupError(`cannot listen: ${(err as Error).message}`);
  }
  ready = true;
  opts.log.info({ admin: admin.address, revision: first.revision, objects: first.objects.length }, 'ready');

  return {
    listening,
    admin: admin.address,
    state,
    async close() {
      draining = true;
      await Promise.allSettled(frontEnds.map((f) => f.close()));
      await upstream.close();
      await sink?.close();
      await admin.close();
    },
  };
}

async function hashSources(state: PolicyState): Promise<{ file: string; sha256: string }[]> {
  const files = [...new Set(state.objects.map((o) => o.file))].sort();
  return Promise.all(
    files.map(async (file) => ({ file, sha256: createHash('sha256').update(await readFile(file)).digest('hex') })),
  );
}
