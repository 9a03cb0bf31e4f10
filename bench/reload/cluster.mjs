// Build time and heap of a PolicyState for a generated cluster as the Kubernetes source feeds it
// (fixtures/scale-cluster.ts: Pods, Services, EndpointSlices, Namespaces, CNPs; no YAML), seen
// from one node. Run from the repository root after `npm run build`:
//   node --expose-gc bench/reload/cluster.mjs [--pods 100000] [--services 1000] [--policies 1000] [--namespaces 200] [--nodes 10] [--runs 3]
// `heap` is the growth of the live heap (after a GC) that one built state holds; the objects
// themselves (the informers' cache) are counted apart.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '100000' }, services: { type: 'string', default: '1000' }, policies: { type: 'string', default: '1000' },
    namespaces: { type: 'string', default: '200' }, nodes: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' },
  },
});
const dist = new URL('../../dist/', import.meta.url);
const { buildPolicyState } = await import(new URL('policy/index.js', dist));
const { scaleCluster } = await import(new URL('fixtures/scale-cluster.js', dist));

const gc = globalThis.gc ?? (() => {});
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const o = { pods: Number(values.pods), services: Number(values.services), policies: Number(values.policies), namespaces: Number(values.namespaces), nodes: Number(values.nodes) };

const h0 = heap();
const objects = scaleCluster(o);
const h1 = heap();
const opts = { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', nodeName: 'node-3' };
const times = [];
let state;
for (let run = 0; run < Number(values.runs); run++) {
  const previous = state;
  state = undefined;
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
console.log(`heap: objects ${mib(h1 - h0)}, one state ${mib(h2 - h1)} (live heap ${mib(h2)}; rss ${mib(process.memoryUsage().rss)})`);
