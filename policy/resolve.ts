/**
 * Kubernetes-DNS-style resolution of a request authority to a Service or Pod (model.ts
 * PolicyState.resolve): "name", "name.ns", "name.ns.svc", "name.ns.svc.cluster.local", a clusterIP or
 * a pod IP, optional ":port" (default 80), case-insensitive, trailing dot allowed, IPv6 in brackets.
 */
import { canonicalIP } from './cidr.js';
import type { Backend, Destination, Endpoint, Service, ServicePort } from './model.js';

export const CLUSTER_DOMAIN = 'cluster.local';

/** Splits "host[:port]" / "[v6][:port]"; undefined on a malformed port. */
export function splitAuthority(authority: string): { host: string; port: number } | undefined {
  let host = authority.trim();
  let portText: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    host = host.slice(1, end);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      if (host.indexOf(':') !== colon) return canonicalIP(host) ? { host, port: 80 } : undefined; // bare IPv6
      portText = host.slice(colon + 1);
      host = host.slice(0, colon);
    }
  }
  let port = 80;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  return { host, port };
}

/**
 * Resolved authorities kept per Resolver (one per immutable PolicyState). Authorities come from
 * clients, so the cache is bounded: case and port spellings of real names could otherwise grow it
 * without end. Past the bound, resolution is simply computed, as before.
 */
const CACHE_MAX = 4096;

export class Resolver {
  readonly #byName = new Map<string, Service>();
  readonly #byClusterIP = new Map<string, Service>();
  readonly #byPodIP: ReadonlyMap<string, Endpoint>;
  /** srcNamespace ('' when unknown) -> authority -> the shared, frozen Destination. */
  readonly #cache = new Map<string, Map<string, Destination>>();
  #cached = 0;

  /** `byPodIP`: the endpoints by IP when the caller has that map already (build.ts does); not copied, never changed. */
  constructor(services: readonly Service[], endpoints: readonly Endpoint[], byPodIP?: ReadonlyMap<string, Endpoint>) {
    for (const s of services) {
      this.#byName.set(`${s.namespace}/${s.name}`, s);
      for (const ip of s.clusterIPs) this.#byClusterIP.set(ip, s);
    }
    if (byPodIP !== undefined) this.#byPodIP = byPodIP;
    else {
      const m = new Map<string, Endpoint>();
      for (const e of endpoints) for (const ip of e.ips) m.set(ip, e);
      this.#byPodIP = m;
    }
  }

  // Hot path: called per request — change with care. Without the cache, every request split and
  // lower-cased its authority and built a fresh backends array (~1 KB of garbage per request).
  resolve(authority: string, srcNamespace: string | undefined): Destination | undefined {
    const byAuthority = this.#cache.get(srcNamespace ?? '');
    const hit = byAuthority?.get(authority);
    if (hit !== undefined) return hit;
    const d = this.#resolve(authority, srcNamespace);
    if (d !== undefined && this.#cached < CACHE_MAX) {
      deepFreeze(d);
      if (byAuthority === undefined) this.#cache.set(srcNamespace ?? '', new Map([[authority, d]]));
      else byAuthority.set(authority, d);
      this.#cached++;
    }
    return d;
  }

  #resolve(authority: string, srcNamespace: string | undefined): Destination | undefined {
    const a = splitAuthority(authority);
    if (!a) return undefined;
    const ip = canonicalIP(a.host);
    if (ip !== undefined) {
      const svc = this.#byClusterIP.get(ip);
      if (svc) return serviceDestination(svc, a.port);
      const ep = this.#byPodIP.get(ip);
      return ep ? { kind: 'pod', backend: { endpoint: ep, ip, port: a.port } } : undefined;
    }
    let name = a.host.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const parts = name.split('.');
    let ns = srcNamespace ?? 'default';
    if (parts.length === 1) {
      // "name": the source's namespace
    } else if (parts.length === 2 || (parts.length === 3 && parts[2] === 'svc') || (parts.length === 5 && parts.slice(2).join('.') === `svc.${CLUSTER_DOMAIN}`)) {
      ns = parts[1] as string;
    } else return undefined;
    const svc = this.#byName.get(`${ns}/${parts[0]}`);
    return svc ? serviceDestination(svc, a.port) : undefined;
  }
}

function deepFreeze(d: Destination): void {
  if (d.kind === 'pod') Object.freeze(d.backend);
  else for (const b of d.backends) Object.freeze(b);
  if (d.kind === 'service') Object.freeze(d.backends);
  Object.freeze(d);
}

/**
 * The backends of one port of a Service: from its EndpointSlices when it has some (the port the
 * slices give; TCP ports only), else one per selected pod whose targetPort resolves (a number, or
 * the pod's container port of that name), at the pod's first IP. What a health checker or load
 * balancer should read, so that both kinds of Service look the same to it.
 */
export function serviceBackends(svc: Service, sp: ServicePort): readonly Backend[] {
  if (svc.sliceBackends !== undefined) return (sp.protocol === 'TCP' ? svc.sliceBackends.get(sp.port) : undefined) ?? NO_BACKENDS;
  const backends: Backend[] = [];
  for (const ep of svc.endpoints) {
    const target = typeof sp.targetPort === 'number' ? sp.targetPort : ep.namedPorts.get(sp.targetPort);
    if (target === undefined) continue;
    const ip = ep.ips[0];
    if (ip !== undefined) backends.push({ endpoint: ep, ip, port: target });
  }
  return backends;
}

const NO_BACKENDS: readonly Backend[] = Object.freeze([]);

function serviceDestination(svc: Service, port: number): Destination | undefined {
  const sp = svc.ports.find((p) => p.port === port && p.protocol === 'TCP');
  if (!sp) return undefined;
  return { kind: 'service', service: svc, servicePort: port, backends: serviceBackends(svc, sp) };
}
