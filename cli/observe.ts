/**
 * `l7guard observe`: `hubble observe` against a running proxy's admin port (`/flows`) or a flow
 * log (`--input-file`), with Hubble's flags and filter semantics (observe/filters.ts) and output
 * formats. Without `--follow`, like Hubble, the last 20 matching flows are shown unless `--last`,
 * `--since` or `--until` says otherwise.
 */
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { renderCompact, stampMilli } from '../observe/compact.js';
import { compileFilters, FilterError, parseTimeBound, type FilterOptions } from '../observe/filters.js';
import type { HubbleFlowResponse } from '../observe/flow.js';
import { parseFlowLine, streamFlows } from '../observe/read-flows.js';
import { parseHostPort } from '../proxy/admin/server.js';
import { unreachable } from './admin-get.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './flags.js';
import { systemErrorText } from './report-error.js';
import { UsageError } from './usage-error.js';

export const OBSERVE_USAGE = `Usage: l7guard observe [flags]

  --server HOST:PORT|unix:PATH   the proxy's admin API (default 127.0.0.1:9901)
  --input-file FILE              read flows from a flow log (l7guard serve --flows, hubble -o jsonpb) instead
  -f, --follow                   keep printing new flows
      --last N                   the last N matching flows (default 20 unless following or --since/--until)
      --since T, --until T       RFC 3339 time or a duration ago (30s, 5m, 1h)
  Filters (a flag repeated = OR, different flags = AND; --pod/--namespace/--label/--identity/--ip/--port
  match either side):
      --verdict V                FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED
      --type T                   l7, drop, trace, policy-verdict
      --pod [NS/]POD  --from-pod --to-pod       pod name prefix (namespace "default" unless given)
      --namespace NS  --from-namespace --to-namespace
      --label SEL     --from-label --to-label   k=v, k!=v, k, !k; comma = AND (k8s:org=empire)
      --identity N    --from-identity --to-identity
      --ip IP|CIDR    --from-ip --to-ip
      --port N        --from-port --to-port
      --http-method M, --http-path REGEX, --http-status CODE|PREFIX+ (e.g. 403, 5+)
  -o, --output FORMAT            compact (default), json, jsonpb, table, dict
      --print-node-name          add the node name to compact lines
`;

const LIST_FLAGS = [
  'verdict', 'type', 'pod', 'from-pod', 'to-pod', 'namespace', 'from-namespace', 'to-namespace', 'label', 'from-label', 'to-label',
  'identity', 'from-identity', 'to-identity', 'ip', 'from-ip', 'to-ip', 'port', 'from-port', 'to-port', 'http-method', 'http-path', 'http-status',
] as const;
const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
const FORMATS = new Set(['compact', 'json', 'jsonpb', 'table', 'dict']);

export async function runObserve(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    server: { type: 'string' }, 'input-file': { type: 'string' }, follow: { type: 'boolean', short: 'f' },
    last: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, output: { type: 'string', short: 'o' },
    'print-node-name': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  };
  for (const f of LIST_FLAGS) options[f] = { type: 'string', multiple: true };
  const { values } = parseFlags('observe', { args: argv, options, allowPositionals: false }) as { values: Record<string, string | boolean | string[] | undefined> };
  if (values['help'] === true) {
    out.write(OBSERVE_USAGE);
    return 0;
  }
  const format = (values['output'] as string | undefined) ?? 'compact';
  if (!FORMATS.has(format)) throw new UsageError(`-o must be one of ${[...FORMATS].join(', ')}`);
  const follow = values['follow'] === true;
  const now = Date.now();
  const filters: FilterOptions = {};
  let predicate: (r: HubbleFlowResponse) => boolean;
  try {
    for (const f of LIST_FLAGS) {
      const v = values[f] as string[] | undefined;
      if (v !== undefined) (filters as Record<string, readonly string[]>)[camel(f)] = v;
    }
    if (typeof values['since'] === 'string') filters.sinceMs = parseTimeBound('--since', values['since'], now);
    if (typeof values['until'] === 'string') filters.untilMs = parseTimeBound('--until', values['until'], now);
    predicate = compileFilters(filters);
  } catch (err) {
    if (err instanceof FilterError) throw new UsageError(err.message);
    throw err;
  }
  const lastRaw = values['last'] as string | undefined;
  if (lastRaw !== undefined && !/^\d+$/.test(lastRaw)) throw new UsageError('--last must be a non-negative integer');
  const bounded = filters.sinceMs !== undefined || filters.untilMs !== undefined;
  const last = lastRaw !== undefined ? Number(lastRaw) : follow || bounded ? undefined : 20;

  const printer = makePrinter(format, out, values['print-node-name'] === true);
  const inputFile = values['input-file'] as string | undefined;
  if (inputFile !== undefined) {
    const matched: HubbleFlowResponse[] = [];
    try {
      for await (const r of streamFlows(inputFile)) if (predicate(r)) matched.push(r);
    } catch (err) {
      throw new CliError(`--input-file ${systemErrorText(err) ?? (err as Error).message}`);
    }
    for (const r of last === undefined ? matched : matched.slice(Math.max(0, matched.length - last))) printer.print(r);
    printer.end();
    return 0;
  }

  // From the proxy: the follow stream is opened first (buffering), then the ring is read and its
  // matching tail printed, then the buffered and new flows (deduplicated by uuid) as they come.
  const server = (values['server'] as string | undefined) ?? '127.0.0.1:9901';
  const target = adminTarget(server);
  // Ctrl-C or SIGTERM ends a follow (exit 0), at any point: the requests are aborted, not left to fail.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (follow) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    const seen = new Set<string>();
    const pending: HubbleFlowResponse[] = [];
    let live = false;
    const onFollowed = (line: string) => {
      const r = parseFlowLine(line);
      if (!predicate(r)) return;
      if (live) printer.print(r);
      else pending.push(r);
    };
    const following = follow ? getNdjson(server, target, '/flows?follow=1', onFollowed, stop.signal) : undefined;
    if (following !== undefined) await following.opened;
    const ring: HubbleFlowResponse[] = [];
    const ringEnd = await getNdjson(server, target, '/flows', (line) => {
      const r = parseFlowLine(line);
      if (predicate(r)) ring.push(r);
    }, stop.signal).done;
    if (ringEnd === 'cut') throw new CliError(`the admin API at ${server} closed the connection before the end of /flows`);
    const shown = last === undefined ? (follow ? [] : ring) : ring.slice(Math.max(0, ring.length - last));
    for (const r of shown) printer.print(r);
    if (following === undefined || ringEnd === 'aborted') {
      printer.end();
      return 0;
    }
    for (const r of ring) if (r.flow.uuid !== undefined) seen.add(r.flow.uuid);
    for (const r of pending) if (r.flow.uuid === undefined || !seen.has(r.flow.uuid)) printer.print(r);
    pending.length = 0;
    live = true;
    const end = await following.done;
    printer.end();
    if (end !== 'aborted') throw new CliError(`the proxy at ${server} ended the flow stream (it stopped or restarted)`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** How an NDJSON answer ended: all of it, cut off by the server going away, or aborted by a signal. */
type StreamEnd = 'complete' | 'cut' | 'aborted';

type Target = { socketPath: string } | { host: string; port: number };

function adminTarget(server: string): Target {
  if (server.startsWith('unix:')) return { socketPath: server.slice(5) };
  try {
    return parseHostPort(server);
  } catch {
    throw new UsageError(`--server must be HOST:PORT or unix:PATH, not ${JSON.stringify(server)}`);
  }
}

/**
 * GET an NDJSON admin path line by line; `opened` resolves once the response headers arrived. Both
 * promises reject only with a CliError (unreachable, not HTTP 200), and a rejection nobody awaits
 * (the follow stream failing while the ring is read) is not an unhandled one.
 */
function getNdjson(server: string, target: Target, path: string, onLine: (l: string) => void, signal: AbortSignal): { opened: Promise<void>; done: Promise<StreamEnd> } {
  let opened!: () => void;
  let failed!: (e: Error) => void;
  const openedP = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const done = new Promise<StreamEnd>((resolve, reject) => {
    const fail = (e: Error) => {
      failed(e);
      reject(e);
    };
    const req = request({ ...target, path, method: 'GET', agent: false, signal }, (res) => {
      if (res.statusCode !== 200) {
        fail(new CliError(`${server}${path}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      opened();
      const rl = createInterface({ input: res, crlfDelay: Infinity });
      rl.on('line', (l) => {
        if (l.trim() === '') return;
        try {
          onLine(l);
        } catch {
          /* a malformed line is skipped, as hubble --input-file does */
        }
      });
      // An answer cut short (the proxy went away) errors the response and readline re-emits it;
      // 'close' comes after the last line either way.
      rl.on('error', () => undefined);
      res.on('error', () => undefined);
      res.on('close', () => resolve(signal.aborted ? 'aborted' : res.complete ? 'complete' : 'cut'));
    });
    req.on('error', (e) => {
      if (signal.aborted) {
        opened();
        resolve('aborted');
      } else fail(unreachable(server, e));
    });
    req.end();
  });
  openedP.catch(() => undefined);
  done.catch(() => undefined);
  return { opened: openedP, done };
}

interface Printer {
  print(r: HubbleFlowResponse): void;
  end(): void;
}

/** hubble/pkg/printer: compact, json/jsonpb (one GetFlowsResponse per line), table (tabwriter), dict. */
function makePrinter(format: string, out: NodeJS.WritableStream, printNodeName: boolean): Printer {
  if (format === 'compact') return { print: (r) => out.write(renderCompact(r, { printNodeName }) + '\n'), end() {} };
  if (format === 'json' || format === 'jsonpb') return { print: (r) => out.write(JSON.stringify(r) + '\n'), end() {} };
  const row = (r: HubbleFlowResponse) => {
    const f = r.flow;
    const [src, dst] = compactEnds(renderCompact(r));
    return { TIMESTAMP: stampMilli(f.time), SOURCE: src, DESTINATION: dst, TYPE: typeText(r), VERDICT: f.verdict ?? '', SUMMARY: f.Summary ?? '' };
  };
  if (format === 'dict') {
    let first = true;
    return {
      print(r) {
        if (!first) out.write('------------\n');
        first = false;
        const x = row(r);
        const w = Math.max(...Object.keys(x).map((k) => k.length));
        for (const [k, v] of Object.entries(x)) out.write(`${k.padStart(w)}: ${v}\n`);
      },
      end() {},
    };
  }
  // table: collected, then aligned like Go's tabwriter (padding 2).
  const rows: Record<string, string>[] = [];
  return {
    print: (r) => void rows.push(row(r)),
    end() {
      const cols = ['TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
      const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c]!.length)));
      const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(width[i]! + 2))).join('') + '\n';
      out.write(line(cols));
      for (const r of rows) out.write(line(cols.map((c) => r[c]!)));
    },
  };
}

/** Source and destination text as the compact line prints them (host:port plus identity). */
function compactEnds(line: string): [string, string] {
  const m = /^\S+ +\d+ [\d:.]+: (.+?) (->|<-|<>) (.+?\)) /.exec(line);
  return m === null ? ['', ''] : [m[1]!, m[3]!];
}

function typeText(r: HubbleFlowResponse): string {
  const f = r.flow;
  if (f.Type === 'L7') return f.l7?.type === 'RESPONSE' ? 'http-response' : 'http-request';
  const t = f.event_type?.type;
  return t === 5 ? 'policy-verdict' : t === 1 ? 'drop' : 'trace';
}
