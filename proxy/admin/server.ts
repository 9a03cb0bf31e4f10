import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, unlink } from 'node:fs/promises';

/**
 * The admin API server (Envoy's vocabulary). It observes the data path and never sits in a
 * request's way; bound to loopback or a unix socket by default, with no listener in common with the
 * data plane. Features contribute routes (core, reload, metrics, flows) instead of editing this file.
 */
export interface AdminRoute {
  /** GET routes answer HEAD too. Mutations are POST/PUT/PATCH/DELETE only: a GET on them is 405, as Envoy does. */
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Exact path, or a prefix when it ends with "/". */
  readonly path: string;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void | Promise<void>;
}

export interface AdminServer {
  readonly address: string;
  /** The read-only listener (`--admin-readonly`), if any: GET and HEAD only. */
  readonly readOnlyAddress: string | undefined;
  /** Routes can be added after start (features that come up later, e.g. after the first load). */
  addRoutes(routes: readonly AdminRoute[]): void;
  close(): Promise<void>;
}

/**
 * `spec` serves every route. `readOnlySpec` (optional) serves the same table but refuses whatever
 * is not GET or HEAD: probes, /metrics and the operator views can be reachable by every process of
 * a node (hostNetwork pods included) while changing policy needs the other listener — a unix
 * socket that only its owner can open (mode 0600), as deploy/ sets it.
 */
export async function startAdmin(spec: string, routes: readonly AdminRoute[], readOnlySpec?: string): Promise<AdminServer> {
  const table: AdminRoute[] = [...routes];
  const serve = (readOnly: boolean): Server => {
    const server = createServer((req, res) => {
      if (readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 403, {
          code: 'L7G_ERR_ADMIN_READ_ONLY',
          message: `this admin listener is read-only: ${String(req.method)} ${String(req.url)} must go to ${spec}`,
        });
        return;
      }
      dispatch(table, req, res).catch((err: unknown) => {
        if (!res.headersSent) sendText(res, 500, `${(err as Error).message}\n`);
        else res.destroy();
      });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    return server;
  };
  const servers = [serve(false)];
  const address = await listen(servers[0]!, spec);
  let readOnlyAddress: string | undefined;
  if (readOnlySpec !== undefined) {
    servers.push(serve(true));
    try {
      readOnlyAddress = await listen(servers[1]!, readOnlySpec);
    } catch (err) {
      await closeServer(servers[0]!);
      throw err;
    }
  }
  return {
    address,
    readOnlyAddress,
    addRoutes: (more) => void table.push(...more),
    close: async () => void (await Promise.all(servers.map(closeServer))),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

async function dispatch(table: readonly AdminRoute[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  let pathMatched = false;
  for (const r of table) {
    const hit = r.path.endsWith('/') ? url.pathname.startsWith(r.path) : url.pathname === r.path;
    if (!hit) continue;
    pathMatched = true;
    if (r.method === method) {
      await r.handle(req, res, url);
      return;
    }
  }
  if (pathMatched) sendText(res, 405, 'method not allowed\n');
  else sendText(res, 404, 'not found\n');
}

async function listen(server: Server, spec: string): Promise<string> {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    await unlink(path).catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    // Connecting to a unix socket takes write permission on it: owner only.
    await chmod(path, 0o600);
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

export function sendText(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, JSON.stringify(value, null, 2) + '\n', 'application/json');
}
