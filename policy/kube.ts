/**
 * Pods, Services, Namespaces and Secrets read from manifests: only the fields policy needs.
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
  /** Canonical IPs; empty = not an endpoint. */
  readonly ips: readonly string[];
  readonly namedPorts: ReadonlyMap<string, number>;
  readonly workload: { readonly name: string; readonly kind: string };
}

export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePort[];
}

export interface Cluster {
  readonly pods: PodInfo[];
  readonly services: ServiceInfo[];
  /** namespace -> labels */
  readonly namespaces: Map<string, Record<string, string>>;
  /** "ns/name" -> key -> decoded value */
  readonly secrets: Map<string, Map<string, string>>;
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
  const namedPorts = new Map<string, number>();
  for (const c of [...arr(spec.containers), ...arr(spec.initContainers)]) {
    for (const p of arr(obj(c).ports)) {
      const po = obj(p);
      if (typeof po.name === 'string' && typeof po.containerPort === 'number' && (po.protocol ?? 'TCP') === 'TCP') namedPorts.set(po.name, po.containerPort);
    }
  }
  const sa = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default';
  return {
    namespace: o.namespace ?? 'default', name: o.name, labels: strMap(meta.labels), serviceAccount: sa,
    ips: [...ips], namedPorts, workload: workloadOf(o, meta),
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

function parseSecret(o: SourcedObject, problems: LoadProblem[]): Map<string, string> {
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

/** Extracts the cluster objects; returns the objects it did not consume. */
export function readCluster(objects: readonly SourcedObject[], problems: LoadProblem[]): Cluster {
  const c: Cluster = { pods: [], services: [], namespaces: new Map(), secrets: new Map() };
  for (const o of objects) {
    if (o.apiVersion !== 'v1') continue;
    switch (o.kind) {
      case 'Pod':
        c.pods.push(parsePod(o, problems));
        break;
      case 'Service':
        c.services.push(parseService(o, problems));
        break;
      case 'Namespace':
        c.namespaces.set(o.name, strMap(obj(o.raw.metadata).labels));
        break;
      case 'Secret':
        c.secrets.set(`${o.namespace ?? 'default'}/${o.name}`, parseSecret(o, problems));
        break;
    }
  }
  return c;
}
