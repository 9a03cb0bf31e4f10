import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../../bin/l7guard.js', import.meta.url));

export interface Served {
  readonly proc: ChildProcess;
  /** The data-plane address actually bound (port 0 resolved). */
  readonly host: string;
  readonly port: number;
  readonly admin: string;
  /** Every JSON log line the proxy wrote on stderr so far. */
  readonly logs: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/**
 * `L7GUARD_TEST_UPSTREAM_CLIENT=undici` runs every served proxy with `--upstream-client undici`: the
 * upstream suites (test/faults) run against both clients with the same assertions.
 */
export const upstreamClient = process.env['L7GUARD_TEST_UPSTREAM_CLIENT'] === 'undici' ? 'undici' : 'native';

/** Runs `l7guard serve` as a real child process and waits for its "ready" log line. `nodeArgs`: flags for node itself. */
export function serve(args: string[], timeoutMs = 20_000, nodeArgs: readonly string[] = []): Promise<Served> {
  return new Promise((resolve, reject) => {
    const client = upstreamClient === 'undici' && !args.includes('--upstream-client') ? ['--upstream-client', 'undici'] : [];
    const proc = spawn(process.execPath, [...nodeArgs, cliPath, 'serve', ...args, ...client], { stdio: ['ignore', 'pipe', 'pipe'] });
    const logs: Record<string, unknown>[] = [];
    let stderr = '';
    let listen: string | undefined;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not become ready in ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    let buf = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      stderr += s;
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(rec);
        if (rec['msg'] === 'listening' && listen === undefined) listen = String(rec['address']);
        if (rec['msg'] === 'ready') {
          clearTimeout(timer);
          const m = /^(.*):(\d+)$/.exec(listen ?? '');
          resolve({
            proc,
            host: m?.[1] ?? '',
            port: Number(m?.[2] ?? 0),
            admin: String(rec['admin']),
            logs,
            stop: () => stop(proc),
          });
        }
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before ready; stderr:\n${stderr}`));
    });
  });
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function stop(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    proc.kill('SIGTERM');
  });
}
