/**
 * Starting and stopping what the bench measures. Every target is its own process (or the two
 * backends themselves for `direct`), pinned to the proxy CPU, so its CPU time and RSS can be read
 * from /proc and nothing else is counted.
 */
import { fork, spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './cluster.mjs';
import { binary, haproxyConfig, nginxConfig, writeConfig, writeNginxPrefix } from './native.mjs';
import { pin } from './proc.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const children = new Set();

/** Everything still running is killed when the bench exits, however it exits. */
export function killAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);

function track(child, name) {
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s) => {
    stderr += s;
    if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
  });
  child.on('exit', () => children.delete(child));
  child.stderrText = () => stderr;
  child.label = name;
  return child;
}

function stopChild(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    if (child.connected) child.disconnect();
    child.kill('SIGTERM');
  });
}

function waitMessage(child, type, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${child.label}: no "${type}" in ${timeoutMs} ms\n${child.stderrText()}`)), timeoutMs);
    const onExit = (code) => {
      clearTimeout(t);
      reject(new Error(`${child.label} exited with ${code}\n${child.stderrText()}`));
    };
    child.once('exit', onExit);
    child.on('message', function on(m) {
      if (m?.type !== type) return;
      clearTimeout(t);
      child.off('message', on);
      child.off('exit', onExit);
      resolve(m);
    });
  });
}

/** Polls until host:port accepts a connection (HAProxy and nginx say nothing when ready). */
async function waitPort(child, host, port, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${child.label} exited with ${child.exitCode}\n${child.stderrText()}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${child.label}: ${host}:${port} not accepting after ${timeoutMs} ms\n${child.stderrText()}`);
}

export class Backends {
  constructor(addr, { pinCpu }) {
    this.addr = addr;
    this.pinCpu = pinCpu;
    this.procs = [];
  }

  async start() {
    this.procs = this.addr.deathstar.map((ip, i) =>
      track(fork(here('./backend-main.mjs'), [ip, String(this.addr.podPort), `deathstar-${i}`], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), `backend ${ip}`),
    );
    await Promise.all(this.procs.map((p) => waitMessage(p, 'listening')));
    if (this.pinCpu) for (const p of this.procs) pin(p.pid, this.pinCpu);
  }

  get pids() {
    return this.procs.map((p) => p.pid);
  }

  get endpoints() {
    return this.addr.deathstar.map((host) => ({ host, port: this.addr.podPort }));
  }

  /** Per backend: "METHOD /path" -> count. */
  async hits() {
    return Promise.all(
      this.procs.map((p) => {
        const reply = waitMessage(p, 'stats', 5000);
        p.send({ type: 'stats' });
        return reply.then((m) => m.hits);
      }),
    );
  }

  async stop() {
    await Promise.all(this.procs.map((p) => stopChild(p)));
  }
}

/**
 * The targets, by name. `policy`: enforces the Star Wars policy (so it may run the deny scenarios);
 * the others forward everything and only run where every request is meant to be forwarded.
 */
export const TARGETS = {
  direct: { policy: false, label: 'backend direct (ceiling)' },
  l7guard: { policy: true, label: 'l7guard' },
  haproxy: { policy: true, label: 'HAProxy (ACLs)', native: 'haproxy' },
  nginx: { policy: true, label: 'nginx (ACLs)', native: 'nginx' },
  undici: { policy: false, label: 'node:http + undici Pool, no policy' },
  'node-floor': { policy: false, label: 'node:net forwarder, parses only framing, no policy (the floor)' },
  'node-floor-onread': { policy: false, label: 'the same, reading into one reused buffer (onread)' },
  'http-proxy': { policy: true, label: 'http-proxy + JS checks' },
};

/**
 * Starts one target; resolves to { endpoints, pids, admin, stop() }.
 * opts: { addr, index, backends, pinCpu, clusterDir, extraArgs }
 */
export async function startTarget(name, opts) {
  const { addr, backends, pinCpu } = opts;
  const host = addr.listen(opts.index);
  const port = addr.podPort;
  const upstreams = backends.endpoints.map((e) => `${e.host}:${e.port}`);
  const running = (child, extra = {}) => {
    if (pinCpu) pin(child.pid, pinCpu);
    return { endpoints: [{ host, port }], pids: [child.pid], stop: () => stopChild(child), child, ...extra };
  };
  switch (name) {
    case 'direct':
      return { endpoints: backends.endpoints, pids: backends.pids, stop: async () => {} };
    case 'l7guard': {
      const args = [join(opts.root ?? repoRoot, 'bin', 'l7guard.js'), 'serve', '-f', opts.clusterDir, '--listen', `${host}:${port}`,
        '--admin', '127.0.0.1:0', ...(opts.extraArgs ?? [])];
      const child = track(spawn(process.execPath, [...(opts.nodeArgs ?? []), ...args], { stdio: ['ignore', 'ignore', 'pipe'] }), 'l7guard');
      const admin = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`l7guard not ready in 60 s\n${child.stderrText()}`)), 60_000);
        let buf = '';
        const onData = (s) => {
          buf += s;
          let nl;
          while ((nl = buf.indexOf('\n')) !== -1) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            let rec;
            try {
              rec = JSON.parse(line);
            } catch {
              continue;
            }
            if (rec.msg === 'ready') {
              clearTimeout(t);
              child.stderr.off('data', onData);
              resolve(String(rec.admin));
              return;
            }
          }
        };
        child.stderr.on('data', onData);
        child.once('exit', (code) => {
          clearTimeout(t);
          reject(new Error(`l7guard exited with ${code}\n${child.stderrText()}`));
        });
      });
      return running(child, { admin });
    }
    case 'http-proxy': {
      const child = track(fork(here('./http-proxy-main.mjs'), [host, String(port), addr.tiefighter, ...upstreams], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), 'http-proxy');
      await waitMessage(child, 'listening');
      return running(child);
    }
    case 'node-floor':
    case 'node-floor-onread': {
      const mode = name === 'node-floor' ? 'stream' : 'onread';
      const child = track(fork(here('./node-floor-main.mjs'), [mode, host, String(port), ...upstreams], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), name);
      await waitMessage(child, 'listening');
      return running(child);
    }
    case 'undici': {
      const child = track(fork(here('./undici-main.mjs'), [host, String(port), ...upstreams], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), 'undici');
      await waitMessage(child, 'listening');
      return running(child);
    }
    case 'haproxy': {
      const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-haproxy-'));
      const cfg = writeConfig(dir, 'haproxy.cfg', haproxyConfig({ listen: host, port, tiefighter: addr.tiefighter, backends: upstreams }));
      const child = track(spawn(binary('haproxy'), ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] }), 'haproxy');
      await waitPort(child, host, port);
      return running(child);
    }
    case 'nginx': {
      const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-nginx-'));
      writeNginxPrefix(dir);
      const cfg = writeConfig(dir, 'nginx.conf', nginxConfig({ listen: host, port, tiefighter: addr.tiefighter, backends: upstreams, prefix: dir }));
      const child = track(spawn(binary('nginx'), ['-p', dir, '-c', cfg], { stdio: ['ignore', 'ignore', 'pipe'] }), 'nginx');
      await waitPort(child, host, port);
      return running(child);
    }
    default:
      throw new Error(`unknown target ${name}`);
  }
}
