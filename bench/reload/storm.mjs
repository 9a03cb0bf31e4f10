// p99 latency of requests served during a reload storm (a swap every 50 ms through the admin API)
// against the same load without reloads. Goal: storm p99 within 1.5x of the quiet p99.
// Run from the repository root after `npm run build`:   node bench/reload/storm.mjs [--duration 10] [--connections 16]
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { backends, cluster, ips, LISTEN_PORT, policy, put, serve, workDir } from './lib.mjs';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } } });
const LANDING = { method: 'POST', path: '/v1/request-landing' };
const X = [LANDING];
const Y = [LANDING, { method: 'GET', path: '/v1/.*' }];
const closeBackends = await backends();
const proxy = await serve(workDir({ '00-cluster.yaml': cluster(), '10-policy.yaml': policy(X) }));

const load = () => autocannon({
  url: `http://${ips.proxy}:${LISTEN_PORT}`, connections: Number(values.connections), duration: Number(values.duration),
  headers: { host: 'deathstar', 'content-length': '0' },
  requests: [{ method: 'POST', path: '/v1/request-landing' }, { method: 'PUT', path: '/v1/exhaust-port' }],
});

try {
  await autocannon({ url: `http://${ips.proxy}:${LISTEN_PORT}`, connections: 4, duration: 2, headers: { host: 'deathstar', 'content-length': '0' }, method: 'POST', path: '/v1/request-landing' }); // warm-up
  const quiet = await load();
  let swaps = 0;
  let stop = false;
  const storm = (async () => {
    while (!stop) {
      const r = await put('/v1/ciliumnetworkpolicies/default/rule1', policy(swaps % 2 === 0 ? Y : X));
      if (r.status === 200 || r.status === 201) swaps++;
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  const stormy = await load();
  stop = true;
  await storm;
  const row = (name, r) => console.log(`${name.padEnd(16)} req/s ${Math.round(r.requests.average).toString().padStart(6)}   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms   max ${r.latency.max} ms   errors ${r.errors}`);
  row('no reloads', quiet);
  row(`storm (${swaps} swaps)`, stormy);
  const ratio = stormy.latency.p99 / Math.max(quiet.latency.p99, 1);
  console.log(`p99 ratio ${ratio.toFixed(2)}x -> goal (<= 1.5x) ${ratio <= 1.5 ? 'met' : 'NOT met'}`);
} finally {
  await proxy.stop();
  closeBackends();
}
