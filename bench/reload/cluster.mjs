// Build time and heap of a PolicyState for a generated cluster as the Kubernetes source feeds it
// (fixtures/scale-cluster.ts: Pods, Services, EndpointSlices, Namespaces, CNPs; no YAML), seen
// from one node. Run from the repository root after `npm run build`:
//   node --expose-gc bench/reload/cluster.mjs [--pods 100000] [--services 1000] [--policies 1000] [--namespaces 200] [--nodes 10] [--runs 3]
//     [--change none|pod|pod+slice|replace]
// --change pod: before each rebuild one pod's IP changes (a new object for that Pod, every other
// object the same reference, as the Kubernetes source hands them over); pod+slice: its
// EndpointSlice follows (a new object too), as the EndpointSlice controller makes it; replace: a
// rollout step, one pod deleted and a new one of its workload (another name and address) listed
// last, its slice updated.
// `heap` is the growth of the live heap (after a GC) that one built state holds; the objects
// themselves (the informers' cache) are counted apart.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '100000' }, services: { type: 'string', default: '1000' }, policies: { type: 'string', default: '1000' },
    namespaces: { type: 'string', default: '200' }, nodes: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' },
    change: { type: 'string', default: 'none' },
  },
});
const dist = new URL('../../dist/', import.meta.url);
const { buildPolicyState } = await import(new URL('policy/index.js', dist));
const { apiObject, scaleCluster } = await import(new URL('fixtures/scale-cluster.js', dist));
if (!['none', 'pod', 'pod+slice', 'replace'].includes(values.change)) throw new Error(`--change: none, pod, pod+slice or replace, not ${values.change}`);

const gc = globalThis.gc ?? (() => {});
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const o = { pods: Number(values.pods), services: Number(values.services), policies: Number(values.policies), namespaces: Number(values.namespaces), nodes: Number(values.nodes) };

const h0 = heap();
let objects = scaleCluster(o);
const h1 = heap();

/** Run k: one running pod moves to an address of its own (10.250.x.y), or is replaced by a new pod there; new objects for it (and its slice). */
function changeOnePod(k) {
  const pods = objects.map((x, i) => [x, i]).filter(([x]) => x.kind === 'Pod' && x.raw.status?.phase === 'Running' && !x.raw.spec?.hostNetwork);
  const [pod, at] = pods[(k * 7919) % pods.length];
  const old = pod.raw.status.podIP;
  const ip = `10.250.${(k >> 8) & 255}.${k & 255}`;
  const next = objects.slice();
  const moved = apiObject(pod.apiVersion, pod.kind, { ...pod.raw, status: { ...pod.raw.status, podIP: ip, podIPs: [{ ip }] } });
  if (values.change === 'replace') {
    next.splice(at, 1);
    const name = `${pod.name.slice(0, pod.name.lastIndexOf('-'))}-new${k}`;
    next.push(apiObject(pod.apiVersion, pod.kind, { ...moved.raw, metadata: { ...pod.raw.metadata, name, uid: `new-${k}` } }));
  } else next[at] = moved;
  if (values.change !== 'pod') {
    const si = next.findIndex((x) => x.kind === 'EndpointSlice' && x.raw.endpoints.some((e) => e.addresses[0] === old));
    const sl = next[si];
    const name = values.change === 'replace' ? next.at(-1).name : pod.name;
    next[si] = apiObject(sl.apiVersion, sl.kind, {
      ...sl.raw, endpoints: sl.raw.endpoints.map((e) => (e.addresses[0] === old ? { ...e, addresses: [ip], targetRef: { ...e.targetRef, name } } : e)),
    });
  }
  return next;
}
const opts = { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', nodeName: 'node-3' };
const times = [];
let state;
for (let run = 0; run < Number(values.runs); run++) {
  const previous = state;
  state = undefined;
  if (run > 0 && values.change !== 'none') objects = changeOnePod(run);
  const t0 = performance.now();
  state = buildPolicyState(objects, { ...opts, previous, revision: run + 1 });
  times.push(performance.now() - t0);
}
const tw = performance.now();
state.warm?.(Infinity);
const warm = performance.now() - tw;
const h2 = heap();
const local = state.endpoints.filter((e) => e.id !== 0).length;
console.log(`cluster: ${o.pods} pods, ${o.namespaces} namespaces, ${o.nodes} nodes, ${o.services} services (+EndpointSlices), ${o.policies} CNPs: ${objects.length} objects`);
console.log(`state: ${state.endpoints.length} endpoints (${local} on node-3), ${state.identities.size} identities, ${state.services.length} services`);
console.log(`build: first ${times[0].toFixed(0)} ms${times.length > 1 ? `, rebuilds (previous = the last state) ${times.slice(1).map((t) => t.toFixed(0)).join(', ')} ms` : ''}; warm (node-3's identities) ${warm.toFixed(0)} ms`);
if (times.length > 2) {
  const r = times.slice(1).sort((a, b) => a - b);
  const q = (p) => r[Math.min(r.length - 1, Math.floor(p * r.length))];
  console.log(`rebuilds (${{ none: 'nothing changed', pod: 'one pod\'s IP changed', 'pod+slice': 'one pod\'s IP and its slice changed', replace: 'one pod replaced' }[values.change]}): ${r.length}, median ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${r.at(-1).toFixed(1)} ms`);
}
console.log(`heap: objects ${mib(h1 - h0)}, one state ${mib(h2 - h1)} (live heap ${mib(h2)}; rss ${mib(process.memoryUsage().rss)})`);
