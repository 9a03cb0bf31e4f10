// Write-to-enforcement latency: from the moment a policy change is written (an atomic rename into
// the watched -f folder, or an admin PUT) to the first request that gets the new verdict.
// Run from the repository root after `npm run build`:   node bench/reload/enforce.mjs [--rounds 20]
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { atomicWrite, backends, cluster, percentile, policy, put, serve, status, workDir } from './lib.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } });
const LANDING = { method: 'POST', path: '/v1/request-landing' };
const EXHAUST = { method: 'PUT', path: '/v1/exhaust-port' };
const closeBackends = await backends();
const dir = workDir({ '00-cluster.yaml': cluster(), '10-policy.yaml': policy([LANDING]) });
const proxy = await serve(dir);

/** Applies `write`, then asks PUT /v1/exhaust-port back to back until the answer is `want`. */
async function measure(write, want) {
  const t0 = performance.now();
  await write();
  for (;;) {
    if ((await status('PUT', '/v1/exhaust-port')) === want) return performance.now() - t0;
  }
}

const file = [];
const api = [];
try {
  for (let i = 0; i < Number(values.rounds); i++) {
    const open = i % 2 === 0;
    file.push(await measure(() => atomicWrite(join(dir, '10-policy.yaml'), policy(open ? [LANDING, EXHAUST] : [LANDING])), open ? 200 : 403));
  }
  for (let i = 0; i < Number(values.rounds); i++) {
    const open = i % 2 === 0;
    api.push(await measure(() => put('/v1/ciliumnetworkpolicies/default/rule1', policy(open ? [LANDING, EXHAUST] : [LANDING])), open ? 200 : 403));
  }
} finally {
  await proxy.stop();
  closeBackends();
}
const show = (name, xs) => console.log(`${name.padEnd(28)} median ${percentile(xs, 50).toFixed(1)} ms   p95 ${percentile(xs, 95).toFixed(1)} ms   max ${Math.max(...xs).toFixed(1)} ms   (n=${xs.length})`);
show('file rename -> enforced', file);
show('admin PUT -> enforced', api);
console.log('(the file path includes the 150 ms watch debounce by design)');
