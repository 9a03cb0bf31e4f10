/**
 * Pods, Services, EndpointSlices, Namespaces and Secrets, as manifests or the API server give them:
 * only the fields policy needs.
 */
import { canonicalIP } from './cidr.js';
import { type LoadProblem, ProblemCodes } from './errors.js';
import type { SourcedObject } from './load.js';
import type { ServicePort } from './model.js';

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Canonical IPs (status.podIP, status.podIPs[]); empty = not an endpoint. */
  readonly ips: readonly string[];
  readonly namedPorts: ReadonlyMap<string, number>;
  readonly workload: { readonly name: string; readonly kind: string };
  /** status.phase as written ('' when absent, as in hand-written files). */
  readonly phase: string;
  /** spec.hostNetwork: the pod shares its node's network namespace, and its IP is the node's. */
  readonly hostNetwork: boolean;
  /** spec.nodeName; undefined when absent or empty (not scheduled, or a hand-written file). */
  readonly nodeName: string | undefined;
  /** metadata.creationTimestamp in ms since the epoch; -Infinity when absent or unparseable. */
  readonly created: number;
}

export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePort[];
}

/** One port of an EndpointSlice: the target port of the Service port with the same name. */
export interface SlicePort {
  /** '' for the unnamed port of a single-port Service. */
  readonly name: string;
  /** undefined: a nil port, which the API reference says means "all ports". */
  readonly port: number | undefined;
  readonly protocol: string;
}

export interface SliceEndpoint {
  /**
   * The first of addresses[], canonical; undefined for addressType FQDN (it names no pod). The API
   * reference: addresses "are all assumed to be fungible and clients may choose to only use the
   * first element" (kube-proxy does).
   */
  readonly address: string | undefined;
  /** conditions.ready; nil "should be interpreted as ready" (EndpointSlice API reference, EndpointConditions). */
  readonly ready: boolean;
  /** targetRef when it names a Pod (its namespace defaults to the slice's). */
  readonly pod: { readonly namespace: string; readonly name: string } | undefined;
}

/** A discovery.k8s.io/v1 EndpointSlice of a Service (label kubernetes.io/service-name). */
export interface SliceInfo {
  readonly namespace: string;
  readonly name: string;
  /** The Service it belongs to: the value of its kubernetes.io/service-name label. */
  readonly service: string;
  readonly endpoints: readonly SliceEndpoint[];
  readonly ports: readonly SlicePort[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface Cluster {
  readonly pods: PodInfo[];
  readonly services: ServiceInfo[];
  /** "namespace/service" -> its EndpointSlices (only slices that name a Service). */
  readonly slices: Map<string, SliceInfo[]>;
  /** namespace -> labels */
  readonly namespaces: Map<string, Readonly<Record<string, string>>>;
  /** "ns/name" -> key -> decoded value */
  readonly secrets: Map<string, ReadonlyMap<string, string>>;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strMap = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v))) if (typeof x === 'string') out[k] = x;
  return out;
};

function problem(o: SourcedObject, field: string, message: string): LoadProblem {
  return { code: ProblemCodes.L7G_ERR_POLICY_VALUE, file: o.file, object: `${o.kind} ${o.namespace ?? 'default'}/${o.name}`, field, line: o.line, message };
}

/** Deployment "x" owns ReplicaSet "x-<hash>" which owns the pod (the usual naming). */
function workloadOf(o: SourcedObject, meta: Obj): { name: string; kind: string } {
  const owner = obj(arr(meta.ownerReferences)[0]);
  if (typeof owner.kind === 'string' && typeof owner.name === 'string') {
    if (owner.kind === 'ReplicaSet') {
      const m = /^(.*)-[a-z0-9]{5,10}$/.exec(owner.name);
      if (m?.[1]) return { name: m[1], kind: 'Deployment' };
    }
    return { name: owner.name, kind: owner.kind };
  }
  return { name: o.name, kind: 'Pod' };
}

/**
 * One map per distinct set of named ports: the pods of a workload share theirs, rather than one
 * small Map each (100,000 of them for 100,000 pods). Read-only once made; there are as many as
 * distinct port sets in the cluster, a handful per workload kind.
 */
const portMaps = new Map<string, ReadonlyMap<string, number>>();

/**
 * Parse results by raw object, as policy/build.ts keeps validation results: an object nobody
 * changed (a reload re-reads only changed files; the Kubernetes source keeps unchanged API objects)
 * is not parsed again. A Pod changing its IP in a 10,000-pod cluster reparses one Pod, not 10,000
 * (~30 ms a revision). Weak: an object nobody holds takes its entry with it. Results are immutable.
 */
interface Parsed<T> {
  readonly file: string;
  readonly line: number | undefined;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly value: T;
  readonly problems: readonly LoadProblem[];
}

function cached<T>(cache: WeakMap<object, Parsed<T>>, o: SourcedObject, problems: LoadProblem[], parse: (o: SourcedObject, problems: LoadProblem[]) => T): T {
  const hit = cache.get(o.raw);
  if (hit !== undefined && hit.file === o.file && hit.line === o.line && hit.namespace === o.namespace && hit.name === o.name) {
    for (const p of hit.problems) problems.push(p);
    return hit.value;
  }
  const mine: LoadProblem[] = [];
  const value = parse(o, mine);
  cache.set(o.raw, { file: o.file, line: o.line, namespace: o.namespace, name: o.name, value, problems: mine });
  for (const p of mine) problems.push(p);
  return value;
}

const podCache = new WeakMap<object, Parsed<PodInfo>>();
const serviceCache = new WeakMap<object, Parsed<ServiceInfo>>();
const sliceCache = new WeakMap<object, Parsed<SliceInfo | undefined>>();
const secretCache = new WeakMap<object, Parsed<ReadonlyMap<string, string>>>();

function parsePod(o: SourcedObject, problems: LoadProblem[]): PodInfo {
  const meta = obj(o.raw.metadata);
  const spec = obj(o.raw.spec);
  const status = obj(o.raw.status);
  const ips = new Set<string>();
  const add = (ip: unknown, field: string) => {
    if (typeof ip !== 'string' || ip === '') return;
    const c = canonicalIP(ip);
    if (c === undefined) problems.push(problem(o, field, `invalid pod IP ${JSON.stringify(ip)}`));
    else ips.add(c);
  };
  add(status.podIP, 'status.podIP');
  arr(status.podIPs).forEach((p, i) => add(obj(p).ip, `status.podIPs[${i}].ip`));
  const named: [string, number][] = [];
  for (const c of [...arr(spec.containers), ...arr(spec.initContainers)]) {
    for (const p of arr(obj(c).ports)) {
      const po = obj(p);
      if (typeof po.name === 'string' && typeof po.containerPort === 'number' && (po.protocol ?? 'TCP') === 'TCP') named.push([po.name, po.containerPort]);
    }
  }
  const portsKey = named.map(([n, p]) => `${n}=${p}`).join(',');
  let namedPorts = portMaps.get(portsKey);
  if (namedPorts === undefined) portMaps.set(portsKey, (namedPorts = new Map(named)));
  const sa = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default';
  const created = typeof meta.creationTimestamp === 'string' ? Date.parse(meta.creationTimestamp) : NaN;
  return {
    namespace: o.namespace ?? 'default', name: o.name, labels: strMap(meta.labels), serviceAccount: sa,
    ips: [...ips], namedPorts, workload: workloadOf(o, meta),
    phase: typeof status.phase === 'string' ? status.phase : '',
    hostNetwork: spec.hostNetwork === true,
    nodeName: typeof spec.nodeName === 'string' && spec.nodeName !== '' ? spec.nodeName : undefined,
    created: Number.isNaN(created) ? -Infinity : created,
  };
}

function parseService(o: SourcedObject, problems: LoadProblem[]): ServiceInfo {
  const spec = obj(o.raw.spec);
  const ips = new Set<string>();
  for (const ip of [spec.clusterIP, ...arr(spec.clusterIPs)]) {
    if (typeof ip !== 'string' || ip === '' || ip === 'None') continue;
    const c = canonicalIP(ip);
    if (c === undefined) problems.push(problem(o, 'spec.clusterIP', `invalid clusterIP ${JSON.stringify(ip)}`));
    else ips.add(c);
  }
  const ports: ServicePort[] = [];
  arr(spec.ports).forEach((p, i) => {
    const po = obj(p);
    if (typeof po.port !== 'number' || !Number.isInteger(po.port) || po.port < 1 || po.port > 65535) {
      problems.push(problem(o, `spec.ports[${i}].port`, `invalid port ${JSON.stringify(po.port)}`));
      return;
    }
    const protocol = po.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') {
      problems.push(problem(o, `spec.ports[${i}].protocol`, `invalid protocol ${JSON.stringify(protocol)}`));
      return;
    }
    let targetPort: number | string = po.port;
    if (typeof po.targetPort === 'number') targetPort = po.targetPort;
    else if (typeof po.targetPort === 'string' && po.targetPort !== '') targetPort = /^\d+$/.test(po.targetPort) ? Number(po.targetPort) : po.targetPort;
    ports.push({ name: typeof po.name === 'string' ? po.name : undefined, port: po.port, protocol, targetPort });
  });
  const sel = spec.selector === undefined || spec.selector === null ? undefined : strMap(spec.selector);
  return { namespace: o.namespace ?? 'default', name: o.name, selector: sel && Object.keys(sel).length > 0 ? sel : undefined, clusterIPs: [...ips], ports };
}

/**
 * An EndpointSlice (discovery.k8s.io/v1, https://kubernetes.io/docs/reference/kubernetes-api/service-resources/endpoint-slice-v1/).
 * Undefined when it names no Service (no kubernetes.io/service-name label): such a slice backs nothing here.
 */
function parseSlice(o: SourcedObject, problems: LoadProblem[]): SliceInfo | undefined {
  const service = strMap(obj(o.raw.metadata).labels)[SERVICE_NAME_LABEL];
  if (service === undefined || service === '') return undefined;
  const namespace = o.namespace ?? 'default';
  const ipTyped = o.raw.addressType === 'IPv4' || o.raw.addressType === 'IPv6';
  const endpoints: SliceEndpoint[] = [];
  arr(o.raw.endpoints).forEach((e, i) => {
    const eo = obj(e);
    let address: string | undefined;
    const first = arr(eo.addresses)[0];
    if (ipTyped && first !== undefined) {
      address = typeof first === 'string' ? canonicalIP(first) : undefined;
      if (address === undefined) problems.push(problem(o, `endpoints[${i}].addresses[0]`, `invalid address ${JSON.stringify(first)}`));
    }
    const ready = obj(eo.conditions).ready !== false;
    const ref = obj(eo.targetRef);
    const pod = ref.kind === 'Pod' && typeof ref.name === 'string' ? { namespace: typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : namespace, name: ref.name } : undefined;
    endpoints.push({ address, ready, pod });
  });
  const ports: SlicePort[] = [];
  arr(o.raw.ports).forEach((p, i) => {
    const po = obj(p);
    let port: number | undefined;
    if (po.port !== undefined && po.port !== null) {
      if (typeof po.port !== 'number' || !Number.isInteger(po.port) || po.port < 1 || po.port > 65535) {
        problems.push(problem(o, `ports[${i}].port`, `invalid port ${JSON.stringify(po.port)}`));
        return;
      }
      port = po.port;
    }
    ports.push({ name: typeof po.name === 'string' ? po.name : '', port, protocol: typeof po.protocol === 'string' ? po.protocol : 'TCP' });
  });
  return { namespace, name: o.name, service, endpoints, ports };
}

function parseSecret(o: SourcedObject, problems: LoadProblem[]): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(obj(o.raw.data))) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.replace(/\s+/g, ''))) {
      problems.push(problem(o, `data.${k}`, 'secret data must be base64'));
      continue;
    }
    m.set(k, Buffer.from(v, 'base64').toString('utf8'));
  }
  for (const [k, v] of Object.entries(strMap(o.raw.stringData))) m.set(k, v);
  return m;
}

const namespaceCache = new WeakMap<object, Parsed<Readonly<Record<string, string>>>>();

const parseNamespace = (o: SourcedObject): Readonly<Record<string, string>> => strMap(obj(o.raw.metadata).labels);

/** A cluster object as policy reads it. */
export type ClusterItem =
  | { readonly kind: 'Pod'; readonly value: PodInfo }
  | { readonly kind: 'Service'; readonly value: ServiceInfo }
  /** undefined: a slice that names no Service. */
  | { readonly kind: 'EndpointSlice'; readonly value: SliceInfo | undefined }
  /** The Namespace's labels. */
  | { readonly kind: 'Namespace'; readonly value: Readonly<Record<string, string>> }
  | { readonly kind: 'Secret'; readonly value: ReadonlyMap<string, string> };

/** The parsed form of a Pod, Service, EndpointSlice, Namespace or Secret; undefined for any other object. */
export function clusterItem(o: SourcedObject, problems: LoadProblem[]): ClusterItem | undefined {
  if (o.apiVersion === 'discovery.k8s.io/v1' && o.kind === 'EndpointSlice') return { kind: 'EndpointSlice', value: cached(sliceCache, o, problems, parseSlice) };
  if (o.apiVersion !== 'v1') return undefined;
  switch (o.kind) {
    case 'Pod':
      return { kind: 'Pod', value: cached(podCache, o, problems, parsePod) };
    case 'Service':
      return { kind: 'Service', value: cached(serviceCache, o, problems, parseService) };
    case 'Namespace':
      return { kind: 'Namespace', value: cached(namespaceCache, o, problems, parseNamespace) };
    case 'Secret':
      return { kind: 'Secret', value: cached(secretCache, o, problems, parseSecret) };
  }
  return undefined;
}

/** Adds one object's item to a Cluster being assembled (objects in order: a later namesake wins in the maps). */
export function addToCluster(c: Cluster, o: SourcedObject, item: ClusterItem): void {
  switch (item.kind) {
    case 'EndpointSlice': {
      const s = item.value;
      if (s === undefined) return;
      const k = `${s.namespace}/${s.service}`;
      const list = c.slices.get(k);
      if (list === undefined) c.slices.set(k, [s]);
      else list.push(s);
      return;
    }
    case 'Pod':
      c.pods.push(item.value);
      return;
    case 'Service':
      c.services.push(item.value);
      return;
    case 'Namespace':
      c.namespaces.set(o.name, item.value);
      return;
    case 'Secret':
      c.secrets.set(`${o.namespace ?? 'default'}/${o.name}`, item.value);
  }
}

export const emptyCluster = (): Cluster => ({ pods: [], services: [], slices: new Map(), namespaces: new Map(), secrets: new Map() });

/** The cluster objects among `objects`, in their order. */
export function readCluster(objects: readonly SourcedObject[], problems: LoadProblem[]): Cluster {
  const c = emptyCluster();
  for (const o of objects) {
    const item = clusterItem(o, problems);
    if (item !== undefined) addToCluster(c, o, item);
  }
  return c;
}
