/**
 * Turns the real `http-sw-app.yaml` into the objects a cluster would hold once it is running: the
 * Deployment becomes `replicas` Pods named like the ReplicaSet controller names them
 * (`<deployment>-<pod-template-hash>-<5 chars>`), every Pod gets a loopback `status.podIP` and every
 * Service a loopback `spec.clusterIP`. The proxy reads the result with `-f` like any other manifest.
 *
 * Addresses come from one /24 on loopback (default 127.0.10.0/24; Linux routes all of 127/8 to `lo`):
 * Pods from .11 up in manifest order, Services from .100 up.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

export const DEFAULT_BLOCK = '127.0.10.0/24';
const FIRST_POD_HOST = 11;
const FIRST_SERVICE_HOST = 100;

/** k8s.io/apimachinery/pkg/util/rand: no vowels (no bad words), no 0/1/3 (ambiguous). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

type Obj = Record<string, unknown>;

export interface DemoPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
  /** The Deployment that owns the Pod, if any. */
  readonly deployment: string | undefined;
  /** The Pod as written to the cluster folder. */
  readonly manifest: Obj;
}

export interface DemoService {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
  readonly ports: readonly number[];
  readonly selector: Readonly<Record<string, string>>;
  readonly manifest: Obj;
}

export interface DemoTopology {
  readonly pods: readonly DemoPod[];
  readonly services: readonly DemoService[];
  /** pod-template-hash per Deployment name. */
  readonly templateHashes: ReadonlyMap<string, string>;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new Error(`http-sw-app: ${what} is not a mapping`);
  return v;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(v)) return out;
  for (const [k, val] of Object.entries(v)) out[k] = String(val);
  return out;
}

/** FNV-1a, 32 bit (what Kubernetes' ComputeHash feeds the pod template into). */
export function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** k8s rand.SafeEncodeString: maps each byte onto ALPHANUMS. */
function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += ALPHANUMS[s.charCodeAt(i) % ALPHANUMS.length];
  return out;
}

/** JSON with sorted keys, so the hash does not depend on YAML key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * A pod-template-hash the way the Deployment controller shapes it: a 32-bit FNV-1a hash of the
 * template, printed in decimal, each digit mapped by SafeEncodeString (so 8 to 10 characters drawn
 * from `456789bcdf`, like the seed's `8c4c77fb7`). The hashed bytes differ from Kubernetes' (it hashes
 * a spew dump of the Go struct), so the value differs; it is stable for a given template.
 */
export function podTemplateHash(template: unknown, collisionCount = 0): string {
  const h = fnv32a(canonical(template) + (collisionCount > 0 ? `#${collisionCount}` : ''));
  return safeEncode(String(h));
}

/** Deterministic stand-in for the 5 random characters of a generated Pod name. */
function podSuffix(seed: string, taken: Set<string>): string {
  for (let attempt = 0; ; attempt++) {
    // 27^5 < 2^32: five base-27 digits of one hash.
    let h = fnv32a(`${seed}#${attempt}`);
    let out = '';
    for (let i = 0; i < 5; i++) {
      out += ALPHANUMS[h % ALPHANUMS.length];
      h = Math.floor(h / ALPHANUMS.length);
    }
    if (!taken.has(out)) {
      taken.add(out);
      return out;
    }
  }
}

function blockPrefix(block: string): string {
  const m = /^(127)\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(block);
  if (m === null || Number(m[2]) > 255 || Number(m[3]) > 255) {
    throw new Error(`topology: block must be a loopback /24 like 127.0.10.0/24, got ${block}`);
  }
  return `${m[1]}.${m[2]}.${m[3]}.`;
}

function withStatus(pod: Obj, ip: string): Obj {
  return { ...pod, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } };
}

/** Builds the running-cluster view of a multi-document manifest (the real http-sw-app.yaml). */
export function buildTopology(manifestText: string, opts: { block?: string } = {}): DemoTopology {
  const prefix = blockPrefix(opts.block ?? DEFAULT_BLOCK);
  let nextPod = FIRST_POD_HOST;
  let nextService = FIRST_SERVICE_HOST;
  const podIp = (): string => {
    if (nextPod >= FIRST_SERVICE_HOST) throw new Error('topology: more Pods than the block holds');
    return prefix + String(nextPod++);
  };

  const pods: DemoPod[] = [];
  const services: DemoService[] = [];
  const templateHashes = new Map<string, string>();

  for (const doc of parseAllDocuments(manifestText)) {
    if (doc.errors.length > 0) throw new Error(`http-sw-app: ${doc.errors[0]?.message ?? 'YAML error'}`);
    const raw: unknown = doc.toJS();
    if (raw === null || raw === undefined) continue;
    const o = obj(raw, 'document');
    const meta = obj(o.metadata, 'metadata');
    const name = String(meta.name);
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';

    switch (o.kind) {
      case 'Service': {
        const spec = obj(o.spec, `Service ${name} spec`);
        const clusterIP = prefix + String(nextService++);
        const ports = Array.isArray(spec.ports) ? spec.ports.map((p) => Number(obj(p, 'port').port)) : [];
        const manifest: Obj = {
          ...o,
          metadata: { ...meta, namespace },
          spec: { ...spec, clusterIP, clusterIPs: [clusterIP] },
        };
        services.push({ namespace, name, clusterIP, ports, selector: stringMap(spec.selector), manifest });
        break;
      }
      case 'Deployment': {
        const spec = obj(o.spec, `Deployment ${name} spec`);
        const template = obj(spec.template, `Deployment ${name} template`);
        const tmeta = isObj(template.metadata) ? template.metadata : {};
        const hash = podTemplateHash(template);
        templateHashes.set(name, hash);
        const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1;
        const labels = { ...stringMap(tmeta.labels), 'pod-template-hash': hash };
        const taken = new Set<string>();
        for (let i = 0; i < replicas; i++) {
          const podName = `${name}-${hash}-${podSuffix(`${namespace}/${name}-${hash}/${i}`, taken)}`;
          const ip = podIp();
          const manifest = withStatus({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              ...tmeta,
              name: podName,
              namespace,
              labels,
              ownerReferences: [
                { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-${hash}`, controller: true, blockOwnerDeletion: true },
              ],
            },
            spec: template.spec,
          }, ip);
          pods.push({ namespace, name: podName, labels, ip, deployment: name, manifest });
        }
        break;
      }
      case 'Pod': {
        const ip = podIp();
        const labels = stringMap(meta.labels);
        const manifest = withStatus({ ...o, metadata: { ...meta, namespace } }, ip);
        pods.push({ namespace, name, labels, ip, deployment: undefined, manifest });
        break;
      }
      default:
        throw new Error(`http-sw-app: unexpected kind ${String(o.kind)} (${name})`);
    }
  }
  return { pods, services, templateHashes };
}

/** The cluster as one multi-document YAML: Services, then Pods; Deployments are dropped. */
export function topologyYaml(t: DemoTopology): string {
  return [...t.services.map((s) => s.manifest), ...t.pods.map((p) => p.manifest)]
    .map((m) => stringify(m))
    .join('---\n');
}

/** Writes the cluster into `dir` (created if needed) and returns the file path. */
export async function writeClusterDir(t: DemoTopology, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'cluster.yaml');
  await writeFile(file, topologyYaml(t), 'utf8');
  return file;
}

export function podNamed(t: DemoTopology, name: string): DemoPod {
  const p = t.pods.find((x) => x.name === name);
  if (p === undefined) throw new Error(`topology: no pod ${name}`);
  return p;
}

export function podsOf(t: DemoTopology, deployment: string): DemoPod[] {
  return t.pods.filter((p) => p.deployment === deployment);
}

export function serviceNamed(t: DemoTopology, name: string): DemoService {
  const s = t.services.find((x) => x.name === name);
  if (s === undefined) throw new Error(`topology: no service ${name}`);
  return s;
}
