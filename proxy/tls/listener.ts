/**
 * `--listen-tls HOST:PORT[=SERVICE_PORT]`: TLS interception as Cilium does it with `terminatingTLS`
 * (docs.cilium.io security/tls-visibility). Before a byte is answered, the ClientHello's SNI names
 * the destination (resolved as `Host` is, on SERVICE_PORT, default 443); the source identity, the
 * destination's policy and its `serverNames` are checked — any refusal closes the connection with
 * zero bytes, like an L3/L4 drop. Then TLS is terminated with the certificate of the covering rule's
 * `terminatingTLS`, and the decrypted HTTP goes through the same request pipeline as plain HTTP,
 * pinned to the SNI's destination. Backends are reached over TLS when `originatingTLS` says so,
 * verified against its CA for the SNI name.
 */
import type net from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import type { Backend, Destination, Endpoint, PolicyState, Source, TlsDecision, TlsMaterial } from '../../policy/model.js';
import type { FrontRequest, FrontResponse } from '../http1/types.js';
import type { OriginalDestination } from '../listen/original-destination.js';
import { createRequestHandler, type HandlerContext } from '../exchange/request-handler.js';
import { StateRef } from '../state-ref.js';
import { Upstream, type UpstreamClient, type UpstreamOptions, type UpstreamRequest, type UpstreamSink } from '../upstream/upstream.js';
import { readClientHello } from './client-hello.js';
import { mtlsSource, type MtlsIdentity } from './mtls.js';

export interface TlsListenerOptions {
  /** The Service port an SNI names (the SNI carries no port). */
  readonly servicePort: number;
  /** Time for the ClientHello and then for the handshake. */
  readonly handshakeTimeoutMs: number;
  /** `--identity-from mtls`: client certificates are required and name the source identity. */
  readonly mtls?: { readonly ca: string; readonly trustDomain: string | undefined } | undefined;
  readonly upstreamOptions: Partial<UpstreamOptions>;
  /** Why a connection was closed before HTTP (debug logs). */
  onRefused(reason: string, remote: string | undefined, sni: string | undefined): void;
}

/** Shared by every TLS listener of a proxy: TLS upstream pools and secure contexts, keyed by material. */
export class TlsResources {
  readonly #contexts = new WeakMap<TlsMaterial, SecureContext>();
  readonly #upstreams = new Map<string, Upstream>();
  readonly #ids = new WeakMap<TlsMaterial, number>();
  #next = 1;

  constructor(
    readonly base: UpstreamClient,
    readonly upstreamOptions: Partial<UpstreamOptions>,
  ) {}

  serverContext(m: TlsMaterial, clientCA: string | undefined): SecureContext {
    let c = clientCA === undefined ? this.#contexts.get(m) : undefined;
    if (c === undefined) {
      const ca = [m.ca, clientCA].filter((x): x is string => x !== undefined);
      c = createSecureContext({ cert: m.cert, key: m.key, ...(ca.length > 0 && { ca }) });
      if (clientCA === undefined) this.#contexts.set(m, c);
    }
    return c;
  }

  /** One Upstream (pools per backend) per (originatingTLS material, server name); a reload keeps them. */
  originating(m: TlsMaterial, servername: string): Upstream {
    let id = this.#ids.get(m);
    if (id === undefined) this.#ids.set(m, (id = this.#next++));
    const key = `${id}|${servername}`;
    let u = this.#upstreams.get(key);
    if (u === undefined) {
      u = new Upstream({ ...this.upstreamOptions, tls: { ca: m.ca as string, servername, cert: m.cert, key: m.key } });
      this.#upstreams.set(key, u);
    }
    return u;
  }

  /** Pools follow the pods (upstream/pools.ts); the shared plain client is pruned by its owner. */
  retainOnly(live: ReadonlySet<string>): void {
    for (const u of this.#upstreams.values()) u.retainOnly(live);
  }

  async close(): Promise<void> {
    const all = [...this.#upstreams.values()];
    this.#upstreams.clear();
    await Promise.allSettled(all.map((u) => u.close()));
  }
}

/** Sends plain or TLS per backend, as the policy of (source, backend, port) says. */
class OriginatingUpstream implements UpstreamClient {
  constructor(
    readonly res: TlsResources,
    readonly pick: (backend: Backend) => TlsMaterial | undefined,
    readonly servername: string,
  ) {}

  send(backend: Backend, req: UpstreamRequest, sink: UpstreamSink): void {
    const m = this.pick(backend);
    (m === undefined ? this.res.base : this.res.originating(m, this.servername)).send(backend, req, sink);
  }

  retainOnly(): void {
    // The shared pools belong to TlsResources and the data plane, which prune them.
  }

  async close(): Promise<void> {
    // The shared pools belong to TlsResources.
  }
}

/** A StateRef whose states identify every request of one connection as `src` (mTLS identity). */
class PinnedSourceRef extends StateRef {
  #memo: { state: PolicyState; view: PolicyState } | undefined;
  constructor(
    readonly inner: StateRef,
    readonly source: (state: PolicyState) => Source | undefined,
  ) {
    super();
  }

  override get current(): PolicyState | undefined {
    const s = this.inner.current;
    if (s === undefined) return undefined;
    if (this.#memo?.state !== s) this.#memo = { state: s, view: withSource(s, this.source) };
    return this.#memo.view;
  }
}

function withSource(s: PolicyState, source: (state: PolicyState) => Source | undefined): PolicyState {
  const world = s.identify('0.0.0.0');
  return {
    revision: s.revision, clusterName: s.clusterName, objects: s.objects, endpoints: s.endpoints, services: s.services,
    identities: s.identities, warnings: s.warnings,
    // The certificate, not the address: a SAN that no longer names any pod after a reload is `world`.
    identify: () => source(s) ?? world,
    resolve: (a, ns) => s.resolve(a, ns),
    decide: (src, dst, port) => s.decide(src, dst, port),
    ...(s.tls && { tls: (src: Source, dst: Endpoint, port: number) => s.tls!(src, dst, port) }),
    ...(s.enforcement && { enforcement: (i) => s.enforcement!(i) }),
  };
}

const unmap = (a: string | undefined): string => (a !== undefined && a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : (a ?? ''));

function firstBackend(d: Destination): Backend | undefined {
  return d.kind === 'pod' ? d.backend : d.backends[0];
}

/**
 * Node checks a client's chain in JavaScript, and only for sockets a `tls.Server` made
 * (`onServerSocketSecure` in lib/_tls_wrap.js): OpenSSL accepts any certificate and records the
 * verify result, so on a TLSSocket we wrap ourselves `rejectUnauthorized` only refuses a *missing*
 * certificate. Ask the handle as that function does; if this Node has no such method, refuse
 * (fail closed). Returns the verify error code, or undefined when the chain verified.
 */
function clientChainError(t: TLSSocket): string | undefined {
  const handle = (t as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (typeof handle?.verifyError !== 'function') return 'cannot read the verification result';
  const err = handle.verifyError();
  return err === null || err === undefined ? undefined : (err.code ?? err.message);
}

/** Why (source, SNI destination) is refused before any HTTP, or undefined: serverNames, then L3/L4. */
function gate(state: PolicyState, src: Source, backend: Backend, sni: string, tls: TlsDecision): string | undefined {
  if (!tls.serverNameAllowed(sni)) return 'SNI not in serverNames (L3/L4 drop)';
  if (state.decide(src, backend.endpoint, backend.port).kind === 'drop') return 'L3/L4 drop';
  if (tls.terminating === undefined) return 'no terminatingTLS for this destination: no certificate to present';
  return undefined;
}

/** mTLS, before the certificate: the TLS decision of the first pod identity (endpoint order) that passes the gate. */
function anyPodPasses(state: PolicyState, backend: Backend, sni: string): TlsDecision | undefined {
  const tried = new Set<unknown>();
  for (const ep of state.endpoints) {
    if (tried.has(ep.identity)) continue;
    tried.add(ep.identity);
    const src: Source = { identity: ep.identity, endpoint: ep };
    const tls = state.tls!(src, backend.endpoint, backend.port);
    if (gate(state, src, backend, sni, tls) === undefined) return tls;
  }
  return undefined;
}

/**
 * The `wrap` hook of a TLS front end (front-end.ts) plus the request handler it feeds: each
 * decrypted connection gets its own handler, pinned to its SNI's destination.
 */
export function tlsListener(ctx: HandlerContext, res: TlsResources, opts: TlsListenerOptions): {
  wrap: (socket: net.Socket, accept: (stream: net.Socket) => void) => void;
  onRequest: (req: FrontRequest, res: FrontResponse) => void;
} {
  const mtls: MtlsIdentity | undefined = opts.mtls && mtlsSource(opts.mtls.ca, opts.mtls.trustDomain);
  /** "remoteAddress|remotePort" of a live decrypted connection -> its handler. */
  const conns = new Map<string, (req: FrontRequest, res: FrontResponse) => void>();

  const refuse = (socket: net.Socket, reason: string, sni?: string) => {
    opts.onRefused(reason, socket.remoteAddress, sni);
    socket.destroy();
  };

  const wrap = (socket: net.Socket, accept: (stream: net.Socket) => void): void => {
    socket.on('error', () => socket.destroy());
    void readClientHello(socket, opts.handshakeTimeoutMs).then((hello) => {
      if (socket.destroyed) return;
      if (!hello.ok) return refuse(socket, hello.reason);
      const sni = hello.sni?.toLowerCase();
      if (sni === undefined) return refuse(socket, 'no SNI: nothing names the destination');
      const state = ctx.state.current;
      if (state === undefined || state.tls === undefined) return refuse(socket, 'no policy loaded', sni);
      const remote = unmap(socket.remoteAddress);
      // With mTLS the address says nothing yet: the SNI gate and certificate use the address's
      // identity (usually world); the request pipeline then judges by the certificate's.
      const src = state.identify(remote);
      const authority = `${sni}:${opts.servicePort}`;
      const dest = state.resolve(authority, src.endpoint?.namespace);
      if (dest === undefined) return refuse(socket, 'SNI names no known Service or Pod', sni);
      const backend = firstBackend(dest);
      if (backend === undefined) return refuse(socket, 'no backend for the SNI destination', sni);
      let tls;
      if (mtls === undefined) {
        tls = state.tls(src, backend.endpoint, backend.port);
        const refused = gate(state, src, backend, sni, tls);
        if (refused !== undefined) return refuse(socket, refused, sni);
      } else {
        // The client certificate (the source) arrives after the server certificate is chosen: any
        // pod identity that policy lets through with this SNI picks it; the certificate's own
        // identity passes the same gate once the handshake is done.
        tls = anyPodPasses(state, backend, sni);
        if (tls === undefined) return refuse(socket, 'no pod identity may reach this SNI destination (L3/L4 drop)', sni);
      }
      if (tls.terminating === undefined) return refuse(socket, 'no terminatingTLS for this destination: no certificate to present', sni);
      const clientCA = mtls?.ca;
      const requireCert = clientCA !== undefined || tls.terminating.ca !== undefined;
      let secureContext: SecureContext;
      try {
        secureContext = res.serverContext(tls.terminating, clientCA);
      } catch (err) {
        return refuse(socket, `unusable certificate: ${(err as Error).message}`, sni);
      }
      socket.unshift(hello.bytes);
      const t = new TLSSocket(socket, {
        isServer: true, secureContext, requestCert: requireCert, rejectUnauthorized: requireCert, ALPNProtocols: ['http/1.1'],
      });
      const timer = setTimeout(() => t.destroy(), opts.handshakeTimeoutMs);
      t.on('error', (err) => {
        opts.onRefused(`TLS handshake failed: ${err.message}`, remote, sni);
        t.destroy();
      });
      t.once('close', () => clearTimeout(timer));
      t.once('secure', () => {
        clearTimeout(timer);
        if (requireCert) {
          const bad = clientChainError(t);
          if (bad !== undefined) return refuse(t, `client certificate refused: ${bad}`, sni);
        }
        let srcRef = ctx.state;
        if (mtls !== undefined) {
          const pinned = mtls.source(t.getPeerCertificate(true));
          if (pinned === undefined) return refuse(t, 'client certificate names no pod identity', sni);
          const now = ctx.state.current;
          const certSrc = now && pinned(now);
          if (now === undefined || certSrc === undefined) return refuse(t, 'client certificate names no pod identity', sni);
          const refused = gate(now, certSrc, backend, sni, now.tls!(certSrc, backend.endpoint, backend.port));
          if (refused !== undefined) return refuse(t, `client certificate identity: ${refused}`, sni);
          srcRef = new PinnedSourceRef(ctx.state, pinned);
        }
        const key = `${remote}|${socket.remotePort ?? 0}`;
        const original: OriginalDestination = {
          destination: (s) => s.resolve(authority, src.endpoint?.namespace),
          authority: () => authority,
        };
        const upstream = new OriginatingUpstream(
          res,
          (b) => {
            const s = srcRef.current;
            return s?.tls?.(s.identify(remote), b.endpoint, b.port).originating;
          },
          sni,
        );
        conns.set(key, createRequestHandler({ ...ctx, state: srcRef, original, upstream, tls: true }));
        t.once('close', () => conns.delete(key));
        accept(t);
      });
    });
  };

  const onRequest = (req: FrontRequest, r: FrontResponse): void => {
    const h = conns.get(`${req.remoteAddress}|${req.remotePort}`);
    if (h === undefined) r.drop();
    else h(req, r);
  };
  return { wrap, onRequest };
}
