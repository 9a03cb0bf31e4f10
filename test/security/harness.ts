// Shared set-up for the attack suites: `l7guard serve` as a child process in front of two recording
// deathstar replicas, an L7 policy that allows a few things to the empire, and helpers to send raw
// bytes from chosen loopback sources and split what came back into responses.
import type { Test } from 'tap';
import { loopbackBlock, rawExchange, type RawResult } from '../helpers/net.js';
import { recordingBackend, type Recorded, type RecordingBackend } from '../helpers/backend.js';
import { serve, type Served } from '../helpers/serve.js';
import { starWarsCluster, clusterDir, deathstarPolicy } from '../helpers/cluster.js';
import type http from 'node:http';

export const HOST = 'deathstar.default.svc.cluster.local';

/** The empire may land, read /public and open /ws; everything else is an L7 deny; the alliance is dropped at L3. */
export function l7Policy(port: number): string {
  return deathstarPolicy(
    port,
    [
      { method: 'POST', path: '/v1/request-landing' },
      { method: 'GET', path: '/public(/.*)?' },
      { method: 'GET', path: '/ws' },
    ],
    'deathstar-l7',
  );
}

export interface Guarded {
  readonly s: Served;
  readonly ips: { tiefighter: string; xwing: string; world: string; deathstar: readonly [string, string]; clusterIP: string };
  /** Every request that reached either replica, in arrival order. */
  readonly journal: Recorded[];
  readonly backends: readonly RecordingBackend[];
  send(data: string | Buffer, opts?: { from?: string; idleMs?: number; until?: (b: Buffer) => boolean }): Promise<RawResult>;
}

export interface GuardedOptions {
  /** Pod port; distinct per suite file so that files never collide (addresses are random per file too). */
  readonly port: number;
  readonly policy?: string | null;
  readonly respond?: (r: Recorded, res: http.ServerResponse) => void;
  readonly args?: readonly string[];
  /** Do not start recording backends (the suite brings its own). */
  readonly noBackends?: boolean;
}

export async function guarded(t: Test, opts: GuardedOptions): Promise<Guarded> {
  const ip = loopbackBlock();
  const ips = { tiefighter: ip(11), xwing: ip(12), world: ip(99), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
  const journal: Recorded[] = [];
  const backends: RecordingBackend[] = [];
  if (opts.noBackends !== true) {
    for (const [i, host] of ips.deathstar.entries()) backends.push(await recordingBackend(`deathstar-${i}`, host, opts.port, opts.respond, journal));
    t.teardown(() => Promise.all(backends.map((b) => b.close())));
  }
  const policy = opts.policy === undefined ? l7Policy(opts.port) : opts.policy;
  const dir = clusterDir(starWarsCluster(ips, opts.port), policy === null ? {} : { '10-policy.yaml': policy });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, ...(opts.args ?? [])]);
  t.teardown(() => s.stop());
  return {
    s,
    ips,
    journal,
    backends,
    send: (data, o = {}) =>
      rawExchange({ from: o.from ?? ips.tiefighter, to: s.host, port: s.port, data, idleMs: o.idleMs ?? 400, until: o.until }),
  };
}

/** `METHOD target HTTP/1.1` with Host and the given extra header lines (each ending in CRLF). */
export function request(method: string, target: string, extra = '', host: string | null = HOST): string {
  return `${method} ${target} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}${extra}\r\n`;
}

export interface ParsedResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** Splits a byte stream into HTTP/1.1 responses (content-length or chunked framing); stops at the first unparsable byte. */
export function responses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const head = text.slice(pos, end);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (m === null) break;
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    let body = '';
    pos = end + 4;
    if (cl !== null) {
      body = text.slice(pos, pos + Number(cl[1]));
      pos += Number(cl[1]);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const nl = text.indexOf('\r\n', pos);
        if (nl < 0) return out;
        const size = parseInt(text.slice(pos, nl), 16);
        pos = nl + 2;
        if (size === 0) {
          pos = text.indexOf('\r\n', pos) + 2;
          break;
        }
        body += text.slice(pos, pos + size);
        pos += size + 2;
      }
    }
    out.push({ status: Number(m[1]), head, body });
  }
  return out;
}

/** Resolves after `ms`: lets a backend finish recording something it should never have received. */
export const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));
