/**
 * PolicyState.services: each Service with its endpoints and backends, from its EndpointSlices or
 * its selector. After a change of a few pods or slices, a Service that reads nothing that changed
 * (same Service object, same slices, none of their addresses owned by another endpoint now) is the
 * previous build's object: rebuilding all 1,000 of a 10,000-pod cluster's cost ~10 ms a revision.
 */
import type { ServiceInfo, SliceInfo, SlicePort } from './kube.js';
import type { Backend, Endpoint, Service, ServicePort } from './model.js';
import { codeUnits, collate, PLAIN, sortByNamespaceName } from './pod-endpoints.js';
import { sameItems } from './same-items.js';

/** A build's Services, and what they were made from. */
export interface ServicesMemo {
  /** Sorted by "namespace/name". */
  readonly services: readonly Service[];
  /** The Service objects in object order, and the same sorted. */
  readonly infos: readonly ServiceInfo[];
  readonly sorted: readonly ServiceInfo[];
  readonly made: ReadonlyMap<ServiceInfo, { readonly service: Service; readonly slices: readonly SliceInfo[] | undefined }>;
}

/** What changed among the endpoints since the previous build. */
export interface EndpointChanges {
  /** Addresses whose endpoint is another one (or none) now. */
  readonly ips: ReadonlySet<string>;
  /** Namespaces with an endpoint gone, come or changed (selector-based Services read them). */
  readonly namespaces: ReadonlySet<string>;
}

export function endpointChanges(removed: readonly Endpoint[], added: readonly Endpoint[]): EndpointChanges {
  const ips = new Set<string>();
  const namespaces = new Set<string>();
  for (const list of [removed, added]) {
    for (const e of list) {
      namespaces.add(e.namespace);
      for (const ip of e.ips) ips.add(ip);
    }
  }
  return { ips, namespaces };
}

function reads(s: ServiceInfo, slices: readonly SliceInfo[] | undefined, changes: EndpointChanges): boolean {
  if (slices !== undefined) return slices.some((sl) => sl.endpoints.some((e) => e.address !== undefined && changes.ips.has(e.address)));
  return s.selector !== undefined && changes.namespaces.has(s.namespace);
}

/**
 * The Services of `infos` (object order) over `endpoints`; with `previous` (the last build's, and
 * how the endpoints changed since), its Service objects where nothing they read changed.
 */
export function buildServices(
  infos: readonly ServiceInfo[], slices: ReadonlyMap<string, SliceInfo[]>, endpoints: readonly Endpoint[], byIP: ReadonlyMap<string, Endpoint>,
  previous?: { readonly memo: ServicesMemo; readonly changes: EndpointChanges },
): ServicesMemo {
  let index: EndpointIndex | undefined;
  const made = new Map<ServiceInfo, { readonly service: Service; readonly slices: readonly SliceInfo[] | undefined }>();
  for (const s of infos) {
    const sl = slices.get(`${s.namespace}/${s.name}`);
    const old = previous?.memo.made.get(s);
    if (old !== undefined && sameItems(old.slices, sl) && !reads(s, sl, (previous as { changes: EndpointChanges }).changes)) {
      made.set(s, old);
      continue;
    }
    const b = sl === undefined ? undefined : sliceBackends(s, sl, byIP);
    let members: readonly Endpoint[] = [];
    if (b !== undefined) members = b.endpoints;
    else if (s.selector !== undefined) members = (index ??= new EndpointIndex(endpoints)).select(s.namespace, s.selector);
    const service: Service = Object.freeze({
      namespace: s.namespace, name: s.name, clusterIPs: Object.freeze([...s.clusterIPs]), ports: Object.freeze([...s.ports]),
      endpoints: Object.freeze(members), sliceBackends: b?.byPort,
    });
    made.set(s, { service, slices: sl });
  }
  let sorted: readonly ServiceInfo[];
  if (previous !== undefined && sameItems(previous.memo.infos, infos)) sorted = previous.memo.sorted;
  else {
    const keys = new Map(infos.map((x) => [x, `${x.namespace}/${x.name}`]));
    const cmp = [...keys.values()].every((k) => PLAIN.test(k)) ? codeUnits : collate;
    sorted = [...infos].sort((a, b) => cmp(keys.get(a) as string, keys.get(b) as string));
  }
  const services = sorted.map((s) => (made.get(s) as { service: Service }).service);
  if (previous !== undefined && sameItems(services, previous.memo.services)) return { ...previous.memo, made };
  return { services, infos, sorted, made };
}

function matchesLabels(sel: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) return false;
  return true;
}

/**
 * Endpoints by namespace, then by label key and value: a Service selector's candidates are the
 * shortest list of one of its pairs (then matched exactly), not every endpoint. A namespace is
 * indexed when a selector first asks for it: Services with EndpointSlices (all of them, from a
 * cluster) need none.
 */
class EndpointIndex {
  readonly #byNs = new Map<string, Endpoint[]>();
  readonly #index = new Map<string, Map<string, Map<string, Endpoint[]>>>();

  constructor(endpoints: readonly Endpoint[]) {
    for (const e of endpoints) {
      const list = this.#byNs.get(e.namespace);
      if (list === undefined) this.#byNs.set(e.namespace, [e]);
      else list.push(e);
    }
  }

  #of(namespace: string): Map<string, Map<string, Endpoint[]>> {
    let m = this.#index.get(namespace);
    if (m === undefined) {
      m = new Map();
      for (const e of this.#byNs.get(namespace) ?? []) {
        for (const k in e.podLabels) {
          const v = e.podLabels[k] as string;
          let byValue = m.get(k);
          if (byValue === undefined) m.set(k, (byValue = new Map()));
          const list = byValue.get(v);
          if (list === undefined) byValue.set(v, [e]);
          else list.push(e);
        }
      }
      this.#index.set(namespace, m);
    }
    return m;
  }

  /** Endpoints of `namespace` whose pod labels hold every pair of `selector` (non-empty), in endpoint order. */
  select(namespace: string, selector: Readonly<Record<string, string>>): Endpoint[] {
    const m = this.#of(namespace);
    let best: Endpoint[] | undefined;
    for (const [k, v] of Object.entries(selector)) {
      const list = m.get(k)?.get(v);
      if (list === undefined) return [];
      if (best === undefined || list.length < best.length) best = list;
    }
    return (best ?? []).filter((e) => matchesLabels(selector, e.podLabels));
  }
}

/**
 * A Service's backends from its EndpointSlices (discovery.k8s.io/v1): each slice endpoint that is
 * not `ready: false`, at its first address, is the pod that owns that address (a VM, or a pod not
 * seen with that IP yet, is no pod: no backend). A `targetRef` naming another pod marks a stale
 * entry (the address went to a new pod): skipped. Each TCP Service port takes the target port of
 * the slice port with its name (`""` for an unnamed port; a nil slice port, "all ports", keeps the
 * Service's targetPort).
 */
function sliceBackends(svc: ServiceInfo, slices: readonly SliceInfo[], byIP: ReadonlyMap<string, Endpoint>): { endpoints: Endpoint[]; byPort: Map<number, readonly Backend[]> } {
  const tcp = svc.ports.filter((p) => p.protocol === 'TCP');
  const members = new Set<Endpoint>();
  const perPort = new Map<number, Map<Endpoint, Backend>>(tcp.map((p) => [p.port, new Map()]));
  for (const sl of [...slices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const targets: [ServicePort, SlicePort][] = [];
    for (const sp of tcp) {
      const name = sp.name ?? '';
      let p = sl.ports.find((x) => x.name === name && x.protocol === 'TCP');
      // An unnamed Service port with one slice port: that one (whatever name it was given).
      if (p === undefined && name === '' && tcp.length === 1 && sl.ports.length === 1 && sl.ports[0]?.protocol === 'TCP') p = sl.ports[0];
      if (p !== undefined) targets.push([sp, p]);
    }
    for (const e of sl.endpoints) {
      if (!e.ready || e.address === undefined) continue;
      const ep = byIP.get(e.address);
      if (ep === undefined) continue;
      if (e.pod !== undefined && (e.pod.name !== ep.name || e.pod.namespace !== ep.namespace)) continue;
      members.add(ep);
      for (const [sp, p] of targets) {
        const port = p.port ?? (typeof sp.targetPort === 'number' ? sp.targetPort : ep.namedPorts.get(sp.targetPort));
        if (port === undefined) continue;
        const m = perPort.get(sp.port) as Map<Endpoint, Backend>;
        const prev = m.get(ep);
        // A pod in two slices (one per address family, or while the controller moves it): one
        // backend, at its first IP when a slice has it.
        if (prev === undefined || (prev.ip !== ep.ips[0] && e.address === ep.ips[0])) m.set(ep, Object.freeze({ endpoint: ep, ip: e.address, port }));
      }
    }
  }
  const { items: endpoints } = sortByNamespaceName([...members]);
  const order = new Map(endpoints.map((e, i) => [e, i]));
  const byPort = new Map<number, readonly Backend[]>();
  for (const [port, m] of perPort) byPort.set(port, Object.freeze([...m.values()].sort((a, b) => (order.get(a.endpoint) as number) - (order.get(b.endpoint) as number))));
  return { endpoints, byPort };
}
