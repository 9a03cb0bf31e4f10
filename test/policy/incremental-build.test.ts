/**
 * A rebuild from the state in force (policy/build.ts BuildMemo) gives the state a build from
 * scratch gives: random sequences of pod adds, deletes, IP, label and status changes, hostNetwork
 * pods, Service, EndpointSlice, Namespace, policy and Secret changes, and duplicate objects, over a
 * small cluster; after each, the incremental build is compared with a build from scratch with the
 * same `previous` (identities, endpoint IDs, backends, warnings: equal) and with one from nothing
 * (verdicts equal for every source address, destination and port). Edge cases a random walk seldom
 * reaches: incremental-build-edges.test.ts.
 */
import t from 'tap';
import { buildPolicyState, buildPolicyStateSliced, type BuildOptions } from '../../policy/build.js';
import type { SourcedObject } from '../../policy/load.js';
import type { Destination, PolicyState } from '../../policy/model.js';
import { apiObject } from '../../fixtures/scale-cluster.js';
import { bare, numbered } from './compare-states.js';
import { OPTS, req, verdict } from './helpers.js';
import { cnpObject, namespaceObject, podObject, serviceObject, sliceObject } from './kube-objects.js';

/** mulberry32: a small seeded generator, so that a failing sequence can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['ns-a', 'ns-b'];
const APPS = ['web', 'api', 'bad', 'db'];
/** Pod addresses: mostly one nobody has, now and then one a pod still claims (the newer pod owns it). */
const POOL = Array.from({ length: 250 }, (_, i) => `10.1.0.${i + 1}`);
const NODES = ['node-a', 'node-b', undefined];
const NODE_IPS = ['192.168.0.10', '192.168.0.11', '192.168.0.12'];

const policies: SourcedObject[] = [
  cnpObject('web', 'ns-a', {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'api' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/api/.*' }] } }] }],
    ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'bad', 'k8s:io.kubernetes.pod.namespace': 'ns-a' } }] }],
  }),
  cnpObject('api', 'ns-b', {
    endpointSelector: { matchLabels: { app: 'api' } },
    egress: [
      { toEndpoints: [{ matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': 'ns-a' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] },
      { toCIDR: ['10.1.0.0/28'], toPorts: [{ ports: [{ port: '9090', protocol: 'TCP' }] }] },
      { toEntities: ['host', 'remote-node'] },
    ],
  }),
  apiObject('cilium.io/v2', 'CiliumClusterwideNetworkPolicy', {
    apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'db' },
    spec: {
      endpointSelector: { matchLabels: { app: 'db' } },
      ingress: [
        { fromEndpoints: [{ matchLabels: { 'k8s:io.cilium.k8s.namespace.labels.team': 'blue' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
        { fromEntities: ['host'] },
      ],
    },
  }),
];

const optional = cnpObject('token', 'ns-b', {
  endpointSelector: { matchLabels: { app: 'db' } },
  ingress: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', headerMatches: [{ name: 'x-token', secret: { name: 'token' } }] }] } }] }],
});
const secret = (value: string) => apiObject('v1', 'Secret', { metadata: { name: 'token', namespace: 'ns-b', resourceVersion: value }, stringData: { token: value } });

type Fields = Record<string, unknown>;
interface RawPod extends Fields {
  metadata: Fields & { resourceVersion: string; labels: Record<string, string> };
  spec: Fields;
  status: Fields;
}

/** The cluster as the Kubernetes source lists it: one object per key, updated in place, new ones last. */
class Cluster {
  readonly objects = new Map<string, SourcedObject>();
  readonly #r: () => number;
  #n = 0;

  constructor(r: () => number) {
    this.#r = r;
    for (const ns of NAMESPACES) this.put(namespaceObject(ns, { team: ns === 'ns-a' ? 'blue' : 'red' }));
    for (const p of policies) this.put(p);
    for (let i = 0; i < 14; i++) this.addPod();
    for (let i = 0; i < 3; i++) this.put(podObject(`agent-${i}`, { ns: 'kube-system', ip: NODE_IPS[i] as string, node: NODES[i], hostNetwork: true, labels: { app: 'agent' } }));
    for (const app of APPS) this.service(app);
    this.put(serviceObject('by-selector', { ns: 'ns-a', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] }));
  }

  key = (o: SourcedObject) => `${o.kind}/${o.namespace ?? ''}/${o.name}`;
  put = (o: SourcedObject) => void this.objects.set(this.key(o), o);
  pick = <T>(xs: readonly T[]): T => xs[Math.floor(this.#r() * xs.length)] as T;
  list = (kind: string) => [...this.objects.values()].filter((o) => o.kind === kind);
  pods = () => this.list('Pod').filter((o) => o.namespace !== 'kube-system');
  ip = (): string => {
    const used = new Set(this.pods().map((o) => (o.raw.status as { podIP?: string }).podIP));
    if (this.#r() < 0.08 && used.size > 0) return this.pick([...used].filter((x) => x !== undefined));
    // A pod at a node's address (hand-written files have them): the endpoint wins over host / remote-node.
    if (this.#r() < 0.04) return this.pick(NODE_IPS);
    for (;;) {
      const ip = this.pick(POOL);
      if (!used.has(ip)) return ip;
    }
  };

  addPod(name = `pod-${this.#n++}`, ns = this.pick(NAMESPACES)): void {
    const r = this.#r();
    this.put(podObject(name, {
      ns, ip: r < 0.1 ? undefined : this.ip(), node: this.pick(NODES), phase: r > 0.95 ? 'Succeeded' : 'Running',
      labels: { app: this.pick(APPS), version: this.pick(['v1', 'v2']) }, ports: { http: this.pick([8080, 8081]) },
      created: `2024-01-01T00:00:${String(Math.floor(this.#r() * 60)).padStart(2, '0')}Z`, owner: 'rs-abcde',
    }));
  }

  /** The same Pod with some fields changed: a new object, as the API server sends after an update. */
  updatePod(o: SourcedObject, change: (raw: RawPod) => void): void {
    const raw = JSON.parse(JSON.stringify(o.raw)) as RawPod;
    raw.metadata.resourceVersion = String(Number(raw.metadata.resourceVersion) + 1);
    change(raw);
    this.put(apiObject('v1', 'Pod', raw));
  }

  service(app: string): void {
    const ns = app === 'api' ? 'ns-b' : 'ns-a';
    this.put(serviceObject(`svc-${app}`, { ns, clusterIP: `10.96.0.${APPS.indexOf(app) + 1}`, selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }));
    this.slice(app, 0);
  }

  /** A slice listing (most of) the Service's pods, some not ready, some with a stale targetRef. */
  slice(app: string, k: number): void {
    const ns = app === 'api' ? 'ns-b' : 'ns-a';
    const members = this.pods().filter((o) => o.namespace === ns && (o.raw.metadata as { labels: Record<string, string> }).labels.app === app);
    const endpoints = members.filter(() => this.#r() < 0.85).map((o) => {
      const ip = (o.raw.status as { podIP?: string }).podIP ?? this.pick(POOL);
      return { ip, ready: this.#r() < 0.9, pod: this.#r() < 0.1 ? 'someone-else' : o.name };
    });
    this.put(sliceObject(`svc-${app}-${k}`, { ns, service: `svc-${app}`, endpoints, ports: [{ name: 'http', port: this.pick([8080, undefined]) }] }));
  }

  /** One random change; returns what it was (for failure messages). */
  change(): string {
    const r = this.#r();
    const pods = this.pods();
    const any = pods.length > 0 ? this.pick(pods) : undefined;
    // An IP handed over while its old pod is still listed: the old pod goes soon after.
    const byIP = new Map<unknown, SourcedObject>();
    for (const o of pods) {
      const ip = (o.raw.status as { podIP?: string }).podIP;
      const other = byIP.get(ip);
      if (ip !== undefined && other !== undefined && this.#r() < 0.5) {
        this.objects.delete(this.key(other));
        return `pod ${other.name} (sharing ${ip}) deleted`;
      }
      byIP.set(ip, o);
    }
    if (r < 0.14 || any === undefined) {
      this.addPod();
      return 'pod added';
    }
    if (r < 0.24) {
      this.objects.delete(this.key(any));
      return `pod ${any.name} deleted`;
    }
    if (r < 0.4) {
      const ip = this.ip();
      this.updatePod(any, (raw) => (raw.status = { ...raw.status, podIP: ip, podIPs: [{ ip }] }));
      return `pod ${any.name} IP -> ${ip}`;
    }
    if (r < 0.48) {
      const app = this.pick(APPS);
      this.updatePod(any, (raw) => (raw.metadata.labels = { ...raw.metadata.labels, app }));
      return `pod ${any.name} app -> ${app}`;
    }
    if (r < 0.56) {
      this.updatePod(any, (raw) => (raw.status = { ...raw.status, conditions: [{ type: 'Ready', status: String(this.#r() < 0.5) }] }));
      return `pod ${any.name} status only`;
    }
    if (r < 0.6) {
      this.updatePod(any, (raw) => (raw.status = { ...raw.status, phase: this.pick(['Succeeded', 'Failed', 'Running']) }));
      return `pod ${any.name} phase`;
    }
    if (r < 0.63) {
      if (this.#r() < 0.5) {
        this.updatePod(any, (raw) => (raw.spec = { ...raw.spec, nodeName: this.pick(['node-a', 'node-b']) }));
        return `pod ${any.name} node`;
      }
      const sa = this.pick(['default', 'robot']);
      this.updatePod(any, (raw) => (raw.spec = { ...raw.spec, serviceAccountName: sa }));
      return `pod ${any.name} service account ${sa}`;
    }
    if (r < 0.66) {
      const i = Math.floor(this.#r() * 3);
      const name = `agent-${i}`;
      if (this.objects.has(`Pod/kube-system/${name}`)) this.objects.delete(`Pod/kube-system/${name}`);
      else this.put(podObject(name, { ns: 'kube-system', ip: NODE_IPS[i] as string, node: NODES[i], hostNetwork: true }));
      return `hostNetwork ${name}`;
    }
    if (r < 0.8) {
      const app = this.pick(APPS);
      this.slice(app, Math.floor(this.#r() * 2));
      return `slice of svc-${app}`;
    }
    if (r < 0.84) {
      const app = this.pick(APPS);
      const ns = app === 'api' ? 'ns-b' : 'ns-a';
      if (this.#r() < 0.5) this.objects.delete(`Service/${ns}/svc-${app}`);
      else this.put(serviceObject(`svc-${app}`, { ns, clusterIP: `10.96.0.${APPS.indexOf(app) + 1}`, selector: { app: this.pick(APPS) }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
      return `svc-${app} changed`;
    }
    if (r < 0.87) {
      const ns = this.pick(NAMESPACES);
      this.put(namespaceObject(ns, { team: this.pick(['blue', 'red']) }));
      return `namespace ${ns} labels`;
    }
    if (r < 0.91) {
      if (this.objects.has(this.key(optional))) this.objects.delete(this.key(optional));
      else this.put(optional);
      return 'policy token toggled';
    }
    if (r < 0.95) {
      this.put(secret(this.pick(['alpha', 'beta'])));
      return 'secret changed';
    }
    this.put(cnpObject('web', 'ns-a', { endpointSelector: { matchLabels: { app: this.pick(APPS) } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: this.pick(APPS) } }] }] }));
    return 'policy web changed';
  }
}

/** Everything a state says, identity numbers and object identities aside: what verdicts come from. */
function verdicts(s: PolicyState): string[] {
  const out: string[] = [];
  const sources = [...new Set([...POOL.slice(0, 40), ...NODE_IPS, '10.1.0.200', '8.8.8.8', ...s.endpoints.flatMap((e) => e.ips)])];
  for (const ip of sources) {
    const src = s.identify(ip);
    out.push(`${ip}: ${src.identity.labels.join(',')} ${src.endpoint?.namespace ?? ''}/${src.endpoint?.name ?? ''}`);
    for (const dst of s.endpoints) {
      for (const port of [80, 8080, 9090]) {
        const r = req('GET', '/api/x', 'x', ['x-token', 'alpha']);
        out.push(`${ip} -> ${dst.namespace}/${dst.name}:${port} ${verdict(s.decide(src, dst, port), r)}`);
      }
    }
  }
  for (const svc of s.services) {
    const d = s.resolve(`${svc.name}.${svc.namespace}:80`, undefined) as Extract<Destination, { kind: 'service' }> | undefined;
    out.push(`${svc.namespace}/${svc.name}: ${d?.backends.map((b) => `${b.endpoint.name}@${b.ip}:${b.port}`).join(' ') ?? 'none'}`);
  }
  return out;
}

for (const [seed, nodeName] of [[1, 'node-a'], [2, undefined], [3, 'node-b'], [4, 'node-a'], [5, undefined], [6, 'node-a']] as const) {
  t.test(`seed ${seed}, node ${nodeName ?? '(none)'}: incremental = from scratch after each change`, async (t) => {
    const r = rng(seed);
    const c = new Cluster(r);
    const opts: BuildOptions = { ...OPTS, nodeIPs: ['192.168.0.10'], nodeName };
    let prev = buildPolicyState([...c.objects.values()], opts);
    let failures = 0;
    for (let step = 1; step <= 60 && failures === 0; step++) {
      const what: string[] = [];
      const n = r() < 0.7 ? 1 : 1 + Math.floor(r() * 4);
      for (let i = 0; i < n; i++) what.push(c.change());
      let input = [...c.objects.values()];
      // Now and then an object given twice (a file and the API), the later one winning.
      if (r() < 0.1) {
        const dup = c.pick(input);
        input = [...input, { ...dup, file: 'copy.yaml' }];
        what.push(`${dup.kind} ${dup.name} given twice`);
      }
      const o = { ...opts, revision: step + 1 };
      const inc = step % 7 === 0 ? await buildPolicyStateSliced(input, { ...o, previous: prev }, 0) : buildPolicyState(input, { ...o, previous: prev });
      const full = buildPolicyState(input, { ...o, previous: bare(prev) });
      const fresh = buildPolicyState(input, o);
      const why = `step ${step}: ${what.join('; ')}`;
      if (!t.same(numbered(inc), numbered(full), `${why}: = from scratch with the same previous`)) failures++;
      if (!t.same(verdicts(inc), verdicts(fresh), `${why}: verdicts = from nothing`)) failures++;
      prev = inc;
    }
  });
}
