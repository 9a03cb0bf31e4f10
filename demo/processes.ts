/**
 * The demo's child processes: deathstar replicas (restarted when they crash, as the kubelet restarts a
 * container) and the l7guard proxy. Everything here is a real process talking over real sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StarWarsPod } from '../fixtures/star-wars.js';
import type { DeathstarHit } from './deathstar.js';

/** A request as one replica logged it, numbered across all replicas in arrival order. */
export interface ReplicaHit extends DeathstarHit {
  readonly seq: number;
  readonly pod: string;
}

/** Keeps the last few KiB of a stream, for error messages. */
class Tail {
  #text = '';
  push(s: string): void {
    this.#text = (this.#text + s).slice(-4096);
  }
  toString(): string {
    return this.#text.trimEnd();
  }
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/** Resolves once `ip:port` accepts a TCP connection; rejects after `timeoutMs` or when `alive()` turns false. */
export async function waitForListener(ip: string, port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: ip, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`process for ${ip}:${port} exited before listening`);
    if (Date.now() > deadline) throw new Error(`${ip}:${port} did not accept connections within ${timeoutMs} ms`);
    await sleep(25);
  }
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL if it lingers. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitExit(child, 3000)) return;
  child.kill('SIGKILL');
  await waitExit(child, 3000);
}

export interface CrashEvent {
  readonly pod: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** First line of what the process printed on stderr last (the panic line for a real crash). */
  readonly lastWords: string;
}

/** One deathstar Pod: a process on `<podIP>:80`, restarted whenever it dies while the demo runs. */
export class Replica {
  readonly pod: StarWarsPod;
  restarts = 0;
  #child: ChildProcess | undefined;
  #stopping = false;
  #stderr = new Tail();
  #ready: Promise<void> = Promise.resolve();
  readonly #main: string;
  readonly #port: number;
  readonly #onHit: (pod: string, hit: DeathstarHit) => void;
  readonly #onCrash: (e: CrashEvent) => void;

  constructor(opts: {
    pod: StarWarsPod;
    mainScript: string;
    port: number;
    onHit: (pod: string, hit: DeathstarHit) => void;
    onCrash: (e: CrashEvent) => void;
  }) {
    this.pod = opts.pod;
    this.#main = opts.mainScript;
    this.#port = opts.port;
    this.#onHit = opts.onHit;
    this.#onCrash = opts.onCrash;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process and resolves once it accepts connections. */
  start(): Promise<void> {
    const child = spawn(process.execPath, [
      this.#main, '--listen', `${this.pod.ip}:${this.#port}`, '--hostname', this.pod.name, '--die-with-parent',
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#stderr = new Tail();
    const stderr = this.#stderr;
    lines(child.stdout!, (line) => {
      try {
        this.#onHit(this.pod.name, JSON.parse(line) as DeathstarHit);
      } catch {
        stderr.push(`unparsable stdout line: ${line}\n`);
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => stderr.push(s));
    child.on('exit', (code, signal) => {
      if (this.#stopping || this.#child !== child) return;
      const text = stderr.toString();
      const panic = text.split('\n').find((l) => l.startsWith('panic:'));
      this.#onCrash({ pod: this.pod.name, code, signal, lastWords: panic ?? text.split('\n').pop() ?? '' });
      // The kubelet restarts a crashed container (restartPolicy: Always); the first restart has no back-off.
      this.restarts++;
      this.#ready = this.start();
      this.#ready.catch(() => undefined);
    });
    this.#ready = waitForListener(this.pod.ip, this.#port, 5000, () => child.exitCode === null && child.signalCode === null)
      .catch((err: unknown) => {
        throw new Error(`${this.pod.name}: ${(err as Error).message}${stderr.toString() ? `: ${stderr.toString()}` : ''}`);
      });
    return this.#ready;
  }

  /** Resolves when the current incarnation accepts connections. */
  ready(): Promise<void> {
    return this.#ready;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await stopChild(this.#child);
  }
}

export interface ProxyRun {
  readonly child: ChildProcess;
  readonly flowsFile: string;
  readonly adminAddr: string;
  readonly argv: readonly string[];
  stderr(): string;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
  });
}

/**
 * Starts `<command> serve -f <cluster> [-f <policy> ...] --listen <ip:80> --admin 127.0.0.1:<free>
 * --flows <file> --cluster-name default` and waits until `GET /ready` answers 200.
 */
export async function startProxy(opts: {
  command: readonly string[];
  files: readonly string[];
  listen: string;
  workDir: string;
  /** Distinguishes the log and flows files of successive proxy runs. */
  run: number;
  readyTimeoutMs?: number;
  /** The child, as soon as it exists: a demo ended while the proxy starts must still stop it. */
  onSpawn?: (child: ChildProcess) => void;
}): Promise<ProxyRun> {
  const adminAddr = `127.0.0.1:${await freePort()}`;
  const flowsFile = join(opts.workDir, `flows-${opts.run}.jsonl`);
  const [cmd, ...pre] = opts.command;
  if (cmd === undefined) throw new Error('empty proxy command');
  const argv = [...pre, 'serve', ...opts.files.flatMap((f) => ['-f', f]), '--listen', opts.listen, '--admin', adminAddr,
    '--flows', flowsFile, '--cluster-name', 'default'];
  const log: WriteStream = createWriteStream(join(opts.workDir, `proxy-${opts.run}.log`));
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  opts.onSpawn?.(child);
  const tail = new Tail();
  child.stdout!.pipe(log, { end: false });
  child.stderr!.on('data', (b: Buffer) => {
    tail.push(b.toString('utf8'));
    log.write(b);
  });
  child.on('exit', () => log.end());
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const run: ProxyRun = { child, flowsFile, adminAddr, argv: [cmd, ...argv], stderr: () => tail.toString() };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    if (spawnError !== undefined) throw new Error(`cannot start ${cmd}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the proxy exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail.toString()}`);
    }
    if ((await getStatus(`http://${adminAddr}/ready`)) === 200) return run;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`the proxy was not ready (GET http://${adminAddr}/ready != 200) within ${opts.readyTimeoutMs ?? 10_000} ms:\n${tail.toString()}`);
    }
    await sleep(50);
  }
}
