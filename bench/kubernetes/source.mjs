// `serve --kubernetes` at cluster scale, against the test API server (test/helpers/kube-api-server.ts,
// run as its own process): 10,000 Pods, 1,000 Services with EndpointSlices, 1,000 CNPs by default,
// over 10 nodes and 100 namespaces (fixtures/scale-cluster.ts).
// Measures time to ready (spawn -> /ready 200: every kind listed, first revision built, listening),
// the proxy's RSS, and how long a pod IP change at the API takes to be enforced (the pod's new
// address is allowed through), over --rounds changes.
//
// Run from the repository root after `npm run build`:
//   node bench/kubernetes/source.mjs [--pods 10000] [--services 1000] [--policies 1000] [--rounds 50]
// Goals: ready <= 3 s, RSS <= 300 MB, pod IP change enforced <= 250 ms at p99.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { scaleCluster, served } from '../../dist/fixtures/scale-cluster.js';
import { writeKubeconfig } from '../../dist/test/helpers/kube-api-server.js';

const { values } = parseArgs({ options: {
  pods: { type: 'string', default: '10000' }, services: { type: 'string', default: '1000' },
  policies: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '50' },
  // --prof DIR: a V8 CPU profile of the proxy (node --cpu-prof), written when it exits.
  prof: { type: 'string' },
  // --heap-mb N: the proxy's V8 old-space cap (node --max-old-space-size), as deploy/daemonset.yaml
  // sets it through NODE_OPTIONS. Unset, V8 lets the heap grow to about twice the live size before
  // a full GC, and RSS follows.
  'heap-mb': { type: 'string' },
} });
const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-kube-'));
const BLOCK = '127.0.99';
const backendIp = `${BLOCK}.10`;
const listen = `${BLOCK}.1:8081`;

// --- the cluster: svc-0's one backend is a pod on loopback; the client is a pod of svc-1, which
// svc-0's CNP lets in (GET /api/.* on 8080).
const O = { pods: Number(values.pods), services: Number(values.services), policies: Number(values.policies), namespaces: 100, nodes: 10 };
const objects = scaleCluster(O).map(served);
const backendPod = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bench-backend', namespace: 'ns-0', labels: { app: 'svc-0' } },
  spec: { nodeName: 'node-0', containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIP: backendIp, podIPs: [{ ip: backendIp }] },
};
const slices = objects.filter((o) => o.kind === 'EndpointSlice' && o.metadata.labels['kubernetes.io/service-name'] === 'svc-0');
slices.forEach((sl, i) => {
  sl.endpoints = i > 0 ? [] : [{ addresses: [backendIp], conditions: { ready: true }, nodeName: 'node-0', targetRef: { kind: 'Pod', namespace: 'ns-0', name: 'bench-backend' } }];
});
const client = (ip) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bench-client', namespace: 'ns-1', labels: { app: 'svc-1' } },
  spec: { nodeName: 'node-1' }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
objects.push(backendPod, client(`${BLOCK}.20`));
writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));

const backend = http.createServer((req, res) => res.end('ok'));
await new Promise((r) => backend.listen(8080, backendIp, r));

// --- the API server, its own process, driven over stdin.
const api = spawn(process.execPath, [join(root, 'dist/test/helpers/kube-api-server-main.js'), '--port', '0', '-f', join(dir, 'cluster.json')], { stdio: ['pipe', 'pipe', 'inherit'] });
const apiLines = createInterface(api.stdout)[Symbol.asyncIterator]();
const { url } = JSON.parse((await apiLines.next()).value);
const command = async (c) => {
  api.stdin.write(JSON.stringify(c) + '\n');
  const r = JSON.parse((await apiLines.next()).value);
  if (!r.ok) throw new Error(r.error);
  return r;
};
const kubeconfig = writeKubeconfig(dir, url, 'bench');

// --- the proxy
const adminPort = 19_000 + Math.floor(Math.random() * 1000);
const t0 = performance.now();
const nodeFlags = [
  ...(values.prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values.prof]),
  ...(values['heap-mb'] === undefined ? [] : [`--max-old-space-size=${values['heap-mb']}`]),
];
const proxy = spawn(process.execPath, [...nodeFlags, join(root, 'bin/l7guard.js'), 'serve', '--kubernetes', '--kubeconfig', kubeconfig,
  '--listen', listen, '--admin', `127.0.0.1:${adminPort}`, '--node-name', 'node-0', '--log-level', 'warn', '--flow-buffer', '0'], { stdio: ['ignore', 'ignore', 'inherit'] });
const get = (path) => new Promise((resolve) => {
  http.get({ host: '127.0.0.1', port: adminPort, path, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); })
    .on('error', () => resolve(0));
});
while ((await get('/ready')) !== 200) await new Promise((r) => setTimeout(r, 5));
const readyMs = performance.now() - t0;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.pid}/status`, 'utf8'))[1]) / 1024;
const rssReady = rss();
const memory = () => new Promise((resolve) => {
  http.get({ host: '127.0.0.1', port: adminPort, path: '/memory', agent: false }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => resolve(JSON.parse(body)));
  });
});
const heapReady = (await memory()).allocated / 1024 / 1024;

// --- pod IP changes: the client moves to a new address; how long until it is let through.
const ask = (from) => new Promise((resolve) => {
  const req = http.request({ host: `${BLOCK}.1`, port: 8081, path: '/api/x', localAddress: from, agent: false,
    headers: { host: 'svc-0.ns-0.svc.cluster.local' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  req.on('error', () => resolve(0));
  req.end();
});
if ((await ask(`${BLOCK}.20`)) !== 200) throw new Error('the client is not allowed at its first address: the bench cluster is wrong');
const samples = [];
for (let k = 0; k < Number(values.rounds); k++) {
  const ip = `${BLOCK}.${30 + (k % 200)}`;
  if ((await ask(ip)) === 200) throw new Error(`${ip} allowed before the move`);
  const start = performance.now();
  await command({ op: 'apply', object: client(ip) });
  // Poll every 5 ms (the measure's resolution): each try is a new connection from the new address.
  while ((await ask(ip)) !== 200) await new Promise((r) => setTimeout(r, 5));
  samples.push(performance.now() - start);
  await command({ op: 'apply', object: client(`${BLOCK}.20`) });
  while ((await ask(`${BLOCK}.20`)) !== 200) { /* back home before the next round */ }
}
const rssAfter = rss();
const heapAfter = (await memory()).allocated / 1024 / 1024;
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
const out = {
  pods: Number(values.pods), services: Number(values.services), policies: Number(values.policies),
  heap_cap_mb: values['heap-mb'] === undefined ? null : Number(values['heap-mb']),
  ready_ms: Math.round(readyMs), rss_mb_at_ready: Math.round(rssReady), rss_mb_after: Math.round(rssAfter),
  heap_mb_at_ready: Math.round(heapReady), heap_mb_after: Math.round(heapAfter),
  ip_change_enforced_ms: { rounds: samples.length, p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), p99: +q(0.99).toFixed(1), max: +samples.at(-1).toFixed(1) },
  goals: { ready_le_3000ms: readyMs <= 3000, rss_le_300mb: Math.max(rssReady, rssAfter) <= 300, p99_le_250ms: q(0.99) <= 250 },
};
console.log(JSON.stringify(out, null, 2));
proxy.kill('SIGTERM');
await new Promise((r) => proxy.once('exit', r));
api.stdin.end();
backend.close();
