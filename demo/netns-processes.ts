/**
 * The processes of a namespace-built node (netns-topology.ts): deathstar replicas in their pod
 * namespaces, l7guard in the node namespace, and curl run from a ship's namespace. Shared by
 * `test/e2e/netns.test.ts` and `l7guard demo --netns`.
 */
import type { ChildProcess } from 'node:child_process';
import type { NetnsPod, NetnsTopology } from './netns-topology.js';

export interface DeathstarLogLine {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly from: string;
  /** The replica's pod name. */
  readonly pod: string;
}

export interface NetnsDeathstar {
  readonly pod: NetnsPod;
  readonly child: ChildProcess;
  /** Every request the replica logged, in order (deathstar-main.ts writes the line before answering). */
  readonly hits: DeathstarLogLine[];
}

export interface NetnsProxy {
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

function onLines(stream: NodeJS.ReadableStream, cb: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    buf += s;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      cb(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/** Waits until `match` sees a line of the child's stderr; rejects on exit or timeout with what it said. */
function waitForStderr(child: ChildProcess, what: string, match: (line: string) => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => fail(`no ${what} within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null) => fail(`exited (${String(code)}) before ${what}`);
    function fail(why: string) {
      clearTimeout(timer);
      child.off('exit', onExit);
      reject(new Error(`${why}; stderr:\n${said}`));
    }
    child.once('exit', onExit);
    onLines(child.stderr!, (line) => {
      said += `${line}\n`;
      if (match(line)) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve();
      }
    });
  });
}

/** `journal`, shared by several replicas, receives every replica's lines in arrival order. */
export async function startNetnsDeathstar(
  topo: NetnsTopology,
  pod: NetnsPod,
  mainScript: string,
  journal?: DeathstarLogLine[],
  port = 80,
): Promise<NetnsDeathstar> {
  const child = topo.spawn(pod.netns, [process.execPath, mainScript, '--listen', `${pod.ip}:${port}`, '--hostname', pod.name]);
  const hits: DeathstarLogLine[] = [];
  onLines(child.stdout!, (line) => {
    try {
      const hit = { ...(JSON.parse(line) as DeathstarLogLine), pod: pod.name };
      hits.push(hit);
      journal?.push(hit);
    } catch {
      // not a request line
    }
  });
  await waitForStderr(child, `"Serving deathstar" from ${pod.name}`, (l) => l.startsWith('Serving deathstar'), 10_000);
  return { pod, child, hits };
}

/** `node <cli> serve ...` inside the node namespace; resolves on its `ready` log line. */
export async function startNetnsProxy(topo: NetnsTopology, cliPath: string, serveArgs: readonly string[]): Promise<NetnsProxy> {
  const child = topo.spawn(topo.node, [process.execPath, cliPath, 'serve', ...serveArgs]);
  const logs: Record<string, unknown>[] = [];
  const ready = waitForStderr(child, 'l7guard "ready" log line', (line) => {
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      logs.push(rec);
      return rec['msg'] === 'ready';
    } catch {
      return false;
    }
  }, 20_000);
  await ready;
  return {
    child,
    logs,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

export interface CurlResult {
  /** curl's exit code: 0, or 52 (empty reply) / 56 (reset) for an L3/L4 drop, 28 for a timeout. */
  readonly exitCode: number | null;
  /** 0 when no HTTP response arrived (curl's `%{http_code}` = 000). */
  readonly status: number;
  readonly body: string;
  readonly stderr: string;
}

const STATUS_MARK = '\n@@l7guard-status:';

/**
 * `curl -s` from a ship's namespace. `resolve` pins a name to an address like DNS would
 * (`--resolve`), so the Host header carries the Service name while the packets go to the clusterIP.
 */
export async function curlFrom(
  topo: NetnsTopology,
  pod: NetnsPod,
  req: { method: string; url: string; resolve?: string; host?: string },
): Promise<CurlResult> {
  const argv = ['curl', '-s', '-m', '5', '-X', req.method, '-o', '-', '-w', `${STATUS_MARK}%{http_code}`];
  if (req.resolve !== undefined) argv.push('--resolve', req.resolve);
  if (req.host !== undefined) argv.push('-H', `Host: ${req.host}`);
  argv.push(req.url);
  const r = await topo.exec(pod.netns, argv);
  const at = r.stdout.lastIndexOf(STATUS_MARK);
  const body = at < 0 ? r.stdout : r.stdout.slice(0, at);
  const status = at < 0 ? 0 : Number(r.stdout.slice(at + STATUS_MARK.length));
  return { exitCode: r.code, status, body, stderr: r.stderr };
}

export function curlCommand(pod: NetnsPod, req: { method: string; url: string; resolve?: string; host?: string }): string {
  const parts = [`ip netns exec ${pod.netns} curl -s -X${req.method}`];
  if (req.resolve !== undefined) parts.push(`--resolve ${req.resolve}`);
  if (req.host !== undefined) parts.push(`-H 'Host: ${req.host}'`);
  parts.push(req.url);
  return parts.join(' ');
}
