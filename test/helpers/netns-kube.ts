/**
 * The test API server (kube-api-server-main.ts) run inside a network namespace, driven over stdin
 * one JSON command a line, for end-to-end tests whose proxy runs in that namespace too.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetnsPod, NetnsTopology } from '../../demo/netns-topology.js';

const API_MAIN = fileURLToPath(new URL('./kube-api-server-main.js', import.meta.url));

export interface NetnsApiServer {
  readonly url: string;
  command(c: object): Promise<Record<string, unknown>>;
}

export async function startNetnsApiServer(topo: NetnsTopology, netns: string, files: readonly string[]): Promise<NetnsApiServer> {
  const child = topo.spawn(netns, [process.execPath, API_MAIN, '--port', '0', ...files.flatMap((f) => ['-f', f])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface(child.stdout!)[Symbol.asyncIterator]();
  const first = await lines.next();
  const { url } = JSON.parse(String(first.value)) as { url: string };
  let queue = Promise.resolve<Record<string, unknown>>({});
  return {
    url,
    command(c) {
      queue = queue.then(async () => {
        child.stdin!.write(JSON.stringify(c) + '\n');
        const r = JSON.parse(String((await lines.next()).value)) as Record<string, unknown>;
        if (r['ok'] !== true) throw new Error(`api ${JSON.stringify(c).slice(0, 80)}: ${String(r['error'])}`);
        return r;
      });
      return queue;
    },
  };
}

export interface CurlAnswer {
  readonly exitCode: number | null;
  /** 0 when no HTTP response arrived. */
  readonly status: number;
  readonly body: string;
}

/** curl from a pod's namespace, from one of its addresses (`--interface`), to a URL. */
export async function curlAs(topo: NetnsTopology, pod: NetnsPod, from: string, method: string, url: string, resolve?: string): Promise<CurlAnswer> {
  const mark = '\n@@status:';
  const argv = ['curl', '-s', '-m', '5', '--interface', from, '-X', method, '-o', '-', '-w', `${mark}%{http_code}`];
  if (resolve !== undefined) argv.push('--resolve', resolve);
  argv.push(url);
  const r = await topo.exec(pod.netns, argv);
  const at = r.stdout.lastIndexOf(mark);
  return { exitCode: r.code, status: at < 0 ? 0 : Number(r.stdout.slice(at + mark.length)), body: at < 0 ? r.stdout : r.stdout.slice(0, at) };
}
