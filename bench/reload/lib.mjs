// Shared by the reload benchmarks: a real `l7guard serve` child, a backend, policy text, a client.
// The cluster and the policy are the Star Wars ones (fixtures/star-wars.ts, from the build).
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deathstarPolicy, starWarsYaml } from '../../dist/fixtures/star-wars.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const PORT = 18080;
// autocannon cannot choose a source address and a loopback client gets 127.0.0.1: that is the
// tiefighter here. The other addresses are a loopback block of their own.
export const ips = { tiefighter: '127.0.0.1', xwing: '127.77.7.3', deathstar: ['127.77.7.21', '127.77.7.22'], clusterIP: '127.77.7.10', proxy: '127.77.7.1' };

export function cluster() {
  return starWarsYaml({ addresses: ips, podPort: PORT });
}

/** rule1 for the deathstar, the empire restricted to `http` ([{method, path}]). */
export function policy(http) {
  return deathstarPolicy(PORT, http);
}

export function workDir(files) {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-reload-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  return dir;
}

export function atomicWrite(path, text) {
  const tmp = `${path}.tmp`.replace(/\/([^/]+)$/, '/.$1');
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export async function backends() {
  const servers = await Promise.all(ips.deathstar.map((host) => new Promise((resolve) => {
    const s = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => { req.resume(); req.on('end', () => res.end('ok\n')); });
    s.listen(PORT, host, () => resolve(s));
  })));
  return () => servers.forEach((s) => { s.closeAllConnections(); s.close(); });
}

export const LISTEN_PORT = 18181;
export const ADMIN = `${ips.proxy}:19191`;

/** `l7guard serve` on the folder; resolves once /ready says 200. */
export async function serve(dir) {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/l7guard.js'), 'serve', '-f', dir, '--listen', `${ips.proxy}:${LISTEN_PORT}`, '--admin', ADMIN, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((resolve) => http.get(`http://${ADMIN}/ready`, (r) => { r.resume(); resolve(r.statusCode === 200); }).on('error', () => resolve(false)));
    if (ok) break;
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('serve did not become ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, stop: () => new Promise((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); }) };
}

export function put(path, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = ADMIN.split(':');
    const req = http.request({ host, port, method: 'PUT', path, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode, body: t }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One request on a fresh connection from the tiefighter: the status code. */
export function status(method, path, port = LISTEN_PORT) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ips.proxy, port, localAddress: ips.tiefighter });
    let buf = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`${method} ${path} HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`));
    s.on('data', (d) => (buf += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(buf)?.[1] ?? 0)));
    s.on('error', reject);
  });
}
