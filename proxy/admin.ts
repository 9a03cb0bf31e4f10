import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { unlink } from 'node:fs/promises';
import type { PolicyState } from '../policy/model.js';
import type { StateRef } from './state-ref.js';

/**
 * The admin API (Envoy's vocabulary: /ready, /server_info, /config_dump; Kubernetes' /healthz).
 * It observes the data path and never sits in a request's way. Bound to loopback or a unix socket
 * by default; it has no listener in common with the data plane.
 */
export interface AdminInfo {
  readonly version: string;
  readonly startedAt: number;
  readonly commandLine: readonly string[];
  /** True once the first policy load succeeded and every listener is bound. */
  ready(): boolean;
  draining(): boolean;
  sources(): readonly { readonly file: string; readonly sha256: string }[];
}

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startAdmin(spec: string, state: StateRef, info: AdminInfo): Promise<AdminServer> {
  const server = createServer((req, res) => handle(req, res, state, info));
  server.on('clientError', (_err, socket) => socket.destroy());
  const address = await listen(server, spec);
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function listen(server: Server, spec: string): Promise<string> {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    await unlink(path).catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return spec;
  }
  const { host, port } = parseHostPort(spec);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  if (a === null || typeof a === 'string') return spec;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export function parseHostPort(spec: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new Error(`invalid address "${spec}": expected HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value, null, 2) + '\n', 'application/json');
}

function handle(req: IncomingMessage, res: ServerResponse, ref: StateRef, info: AdminInfo): void {
  const url = new URL(req.url ?? '/', 'http://admin');
  const state = ref.current;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'method not allowed\n');
    return;
  }
  switch (url.pathname) {
    case '/ready': {
      const live = info.ready() && !info.draining() && state !== undefined;
      send(res, live ? 200 : 503, live ? 'LIVE\n' : info.draining() ? 'DRAINING\n' : 'PRE_INITIALIZING\n');
      return;
    }
    case '/healthz':
      send(res, 200, 'ok\n');
      return;
    case '/server_info':
      json(res, 200, {
        version: info.version,
        state: info.draining() ? 'DRAINING' : info.ready() ? 'LIVE' : 'PRE_INITIALIZING',
        uptime_current_epoch: `${Math.floor((Date.now() - info.startedAt) / 1000)}s`,
        command_line_options: info.commandLine,
        policy_revision: state?.revision ?? 0,
      });
      return;
    case '/config_dump':
      json(res, 200, state === undefined ? { revision: 0 } : configDump(state, info));
      return;
    default:
      send(res, 404, 'not found\n');
  }
}

function configDump(state: PolicyState, info: AdminInfo): unknown {
  return {
    revision: state.revision,
    cluster_name: state.clusterName,
    sources: info.sources(),
    objects: state.objects,
    warnings: state.warnings,
    identities: [...state.identities.values()].map((i) => ({ id: i.id, labels: i.labels })),
    endpoints: state.endpoints.map((e) => ({
      id: e.id,
      namespace: e.namespace,
      name: e.name,
      ips: e.ips,
      identity: e.identity.id,
    })),
    services: state.services.map((s) => ({
      namespace: s.namespace,
      name: s.name,
      cluster_ips: s.clusterIPs,
      ports: s.ports,
      endpoints: s.endpoints.map((e) => `${e.namespace}/${e.name}`),
    })),
  };
}
