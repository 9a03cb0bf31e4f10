#!/usr/bin/env node
/**
 * npm run micro — the decision path alone, in ns per decision (mitata): identify (source address ->
 * identity) + resolve (authority -> service) + decide (port tables) + the L7 check, for the demo
 * policy and for 10,000 rules over 1,000 identities. The cost must stay flat as the policy grows.
 * Writes results/micro.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bench, group, run, do_not_optimize } from 'mitata';
import { addressPlan, clusterDir } from './lib/cluster.mjs';
import { loadPolicyState } from '../dist/policy/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const addr = await addressPlan(80);
const opts = (revision) => ({ clusterName: 'default', nodeIPs: [], allowLocalhost: 'policy', previous: undefined, revision });

const t0 = performance.now();
const demo = await loadPolicyState([await clusterDir(addr)], opts(1));
const t1 = performance.now();
const big = await loadPolicyState([await clusterDir(addr, { big: true })], opts(2));
const t2 = performance.now();

const headers = ['Host', addr.authority, 'User-Agent', 'curl/7.88.1', 'Accept', '*/*'];
const landing = { method: 'POST', path: '/v1/request-landing', host: addr.authority, headers };
const exhaust = { method: 'PUT', path: '/v1/exhaust-port', host: addr.authority, headers };

/** One request's decision: what request-handler.ts does before it forwards or answers. */
function decision(state, ip, req) {
  const src = state.identify(ip);
  const dest = state.resolve(req.host, src.endpoint?.namespace);
  const backend = dest.kind === 'pod' ? dest.backend : dest.backends[0];
  const d = state.decide(src, backend.endpoint, backend.port);
  return d.kind === 'l7' ? d.check(req).allowed : d.kind === 'allow';
}

// Sanity: the decisions are the demo's, in both states, before anything is timed.
for (const [name, s] of [['demo', demo], ['big', big]]) {
  const got = [decision(s, addr.tiefighter, landing), decision(s, addr.tiefighter, exhaust), decision(s, addr.xwing, landing)];
  if (got.join() !== 'true,false,false') throw new Error(`${name} policy decides ${got.join()} instead of true,false,false`);
}

for (const [name, s] of [['demo policy', demo], ['10,000 rules / 1,000 identities', big]]) {
  group(name, () => {
    bench('tiefighter POST /v1/request-landing (allowed)', () => do_not_optimize(decision(s, addr.tiefighter, landing)));
    bench('tiefighter PUT /v1/exhaust-port (L7 denied)', () => do_not_optimize(decision(s, addr.tiefighter, exhaust)));
    bench('xwing (L3/L4 denied)', () => do_not_optimize(decision(s, addr.xwing, landing)));
  });
}

const res = await run({ format: process.env.MITATA_FORMAT ?? 'mitata' });
const out = { date: new Date().toISOString(), compileMs: { demo: t1 - t0, big: t2 - t1 }, benchmarks: [] };
// Registered in order: three per policy, demo first.
(res.benchmarks ?? []).forEach((b, i) => {
  for (const r of b.runs ?? []) {
    out.benchmarks.push({ policy: i < 3 ? 'demo' : 'big', name: r.name ?? b.alias, avgNs: r.stats?.avg, p50Ns: r.stats?.p50, p99Ns: r.stats?.p99 });
  }
});
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'micro.json'), JSON.stringify(out, null, 2) + '\n');
process.stdout.write(`policy build: demo ${(t1 - t0).toFixed(0)} ms, big ${(t2 - t1).toFixed(0)} ms\n`);
