/**
 * Where a redirected connection was really going. Node 20 cannot read `SO_ORIGINAL_DST` (no
 * getsockopt in `net`), so instead of one catch-all port plus a native addon, every intercepted
 * destination gets its own listener (`--redirect LISTEN=DEST`): the node's iptables rule that sends
 * `DEST` to that port is the record of the original destination, as Cilium's per-policy proxy ports
 * are. In sidecar mode (`--mode sidecar --pod NS/NAME`) the destination is always the one pod.
 *
 * Once known, the original destination outranks the absolute-form authority and `Host`: a client
 * naming an IP or an external name still reaches the workload (and policy) the kernel picked.
 */
import { isIP } from 'node:net';
import type { Destination, Endpoint, PolicyState } from '../../policy/model.js';
import { parseHostPort } from '../admin/server.js';

/** A bad `--redirect` / `--mode` / `--pod`, or one the loaded policy state cannot satisfy. */
export class InterceptionError extends Error {
  readonly code = 'L7G_ERR_INTERCEPTION';
}

export interface RedirectSpec {
  /** As given on the command line. */
  readonly raw: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** `ip` is undefined for the sidecar-only `LISTEN=PORT` form (the pod's own address). */
  readonly dest: { readonly ip: string | undefined; readonly port: number };
}

export type Mode =
  | { readonly kind: 'node' }
  | { readonly kind: 'sidecar'; readonly namespace: string; readonly name: string };

export interface InterceptionOptions {
  readonly mode: Mode;
  readonly redirects: readonly RedirectSpec[];
}

/** `LISTEN_HOST:PORT=DEST_IP:DEST_PORT`, or `LISTEN_HOST:PORT=DEST_PORT` (sidecar mode only). */
export function parseRedirect(raw: string): RedirectSpec {
  const eq = raw.indexOf('=');
  if (eq < 0) throw new InterceptionError(`--redirect "${raw}": expected LISTEN_HOST:PORT=DEST_IP:DEST_PORT`);
  let listen;
  try {
    listen = parseHostPort(raw.slice(0, eq));
  } catch (err) {
    throw new InterceptionError(`--redirect "${raw}": listener: ${(err as Error).message}`);
  }
  const right = raw.slice(eq + 1);
  if (/^\d{1,5}$/.test(right)) return { raw, listen, dest: { ip: undefined, port: checkPort(raw, Number(right)) } };
  let dest;
  try {
    dest = parseHostPort(right);
  } catch {
    throw new InterceptionError(`--redirect "${raw}": destination must be IP:PORT (or PORT in sidecar mode)`);
  }
  if (isIP(dest.host) === 0) throw new InterceptionError(`--redirect "${raw}": destination "${dest.host}" is not an IP address`);
  return { raw, listen, dest: { ip: dest.host, port: checkPort(raw, dest.port) } };
}

function checkPort(raw: string, port: number): number {
  if (port < 1 || port > 65535) throw new InterceptionError(`--redirect "${raw}": destination port must be 1..65535`);
  return port;
}

/** `--mode` and `--pod` together; `--pod` is required by, and only allowed with, sidecar mode. */
export function parseMode(mode: string | undefined, pod: string | undefined): Mode {
  const m = mode ?? 'node';
  if (m === 'node') {
    if (pod !== undefined) throw new InterceptionError('--pod is only valid with --mode sidecar');
    return { kind: 'node' };
  }
  if (m !== 'sidecar') throw new InterceptionError(`--mode must be "node" or "sidecar", not "${m}"`);
  const parts = pod?.split('/');
  if (parts?.length !== 2 || !DNS_LABEL.test(parts[0]!) || !DNS_SUBDOMAIN.test(parts[1]!)) {
    throw new InterceptionError(`--mode sidecar needs --pod NAMESPACE/NAME${pod === undefined ? '' : `, got "${pod}"`}`);
  }
  return { kind: 'sidecar', namespace: parts[0]!, name: parts[1]! };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function parseInterception(flags: { mode?: string; pod?: string; redirect?: readonly string[] }): InterceptionOptions {
  const mode = parseMode(flags.mode, flags.pod);
  const redirects = (flags.redirect ?? []).map(parseRedirect);
  for (const r of redirects) {
    if (r.dest.ip === undefined && mode.kind !== 'sidecar') {
      throw new InterceptionError(`--redirect "${r.raw}": a destination without an IP is only valid with --mode sidecar`);
    }
  }
  return { mode, redirects };
}

function sidecarPod(state: PolicyState, mode: Mode & { kind: 'sidecar' }): Endpoint | undefined {
  return state.endpoints.find((e) => e.namespace === mode.namespace && e.name === mode.name);
}

function bracket(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

/**
 * Checks a policy state against the interception flags, before it is served: the sidecar's pod must
 * exist (with an IP) and own every redirect destination IP; in node mode every redirect destination
 * must be a Service clusterIP:port or a Pod IP. A hot reload should run this before swapping too.
 */
export function checkInterception(state: PolicyState, opts: InterceptionOptions): void {
  const { mode } = opts;
  if (mode.kind === 'sidecar') {
    const pod = sidecarPod(state, mode);
    if (pod === undefined) {
      throw new InterceptionError(`--pod ${mode.namespace}/${mode.name}: no such Pod with an IP in the loaded files`);
    }
    for (const r of opts.redirects) {
      if (r.dest.ip !== undefined && !pod.ips.includes(r.dest.ip)) {
        throw new InterceptionError(`--redirect "${r.raw}": ${r.dest.ip} is not an IP of Pod ${mode.namespace}/${mode.name}`);
      }
    }
    return;
  }
  for (const r of opts.redirects) {
    if (state.resolve(`${bracket(r.dest.ip!)}:${r.dest.port}`, undefined) === undefined) {
      throw new InterceptionError(`--redirect "${r.raw}": ${r.dest.ip}:${r.dest.port} is no Service clusterIP:port or Pod IP in the loaded files`);
    }
  }
}

/** A listener's pinned destination: the request handler asks it instead of resolving the client's authority. */
export interface OriginalDestination {
  /** undefined: not resolvable in this state (e.g. a reload removed the Service); the handler answers 421. */
  destination(state: PolicyState, localPort: number): Destination | undefined;
  /** Stands in for the authority in flows when the client sent none (an HTTP/1.0 request without Host). */
  authority(localPort: number): string;
}

/**
 * Memoised per PolicyState (states are immutable; a reload swaps the reference), so the hot path
 * costs one Map lookup. Sidecar mode with no known original port uses the listener's port: that is
 * what a REDIRECT preserves only through `SO_ORIGINAL_DST`, and with a plain `--listen` in front of
 * the app, the port the client dialled is the listener's own.
 */
function pinned(compute: (state: PolicyState, localPort: number) => Destination | undefined, authority: (p: number) => string): OriginalDestination {
  let memoState: PolicyState | undefined;
  let memo = new Map<number, Destination | undefined>();
  return {
    destination(state, localPort) {
      if (state !== memoState) {
        memoState = state;
        memo = new Map();
      }
      if (memo.has(localPort)) return memo.get(localPort);
      const d = compute(state, localPort);
      memo.set(localPort, d);
      return d;
    },
    authority,
  };
}

export function originalDestination(mode: Mode, redirect: RedirectSpec['dest'] | undefined): OriginalDestination | undefined {
  if (mode.kind === 'sidecar') {
    return pinned(
      (state, localPort) => {
        const pod = sidecarPod(state, mode);
        if (pod === undefined) return undefined;
        const ip = redirect?.ip ?? pod.ips[0]!;
        return { kind: 'pod', backend: { endpoint: pod, ip, port: redirect?.port ?? localPort } };
      },
      (localPort) => `${mode.name}.${mode.namespace}:${redirect?.port ?? localPort}`,
    );
  }
  if (redirect === undefined) return undefined;
  const authority = `${bracket(redirect.ip!)}:${redirect.port}`;
  return pinned((state) => state.resolve(authority, undefined), () => authority);
}

export interface PlannedListener {
  readonly host: string;
  readonly port: number;
  readonly original: OriginalDestination | undefined;
  /** For the `listening` log line: the `--redirect` spec, when this listener is one. */
  readonly redirect: string | undefined;
}

/** Every data-plane listener: the plain `--listen` ones first, then one per `--redirect`. */
export function planListeners(listen: readonly { host: string; port: number }[], opts: InterceptionOptions | undefined): PlannedListener[] {
  const mode: Mode = opts?.mode ?? { kind: 'node' };
  return [
    ...listen.map((l) => ({ host: l.host, port: l.port, original: originalDestination(mode, undefined), redirect: undefined })),
    ...(opts?.redirects ?? []).map((r) => ({
      host: r.listen.host,
      port: r.listen.port,
      original: originalDestination(mode, r.dest),
      redirect: r.raw,
    })),
  ];
}
