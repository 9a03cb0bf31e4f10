#!/usr/bin/env node
/**
 * npm run bench — l7guard and its peers on loopback, one scenario at a time, same connections and
 * duration for every target; prints a table and writes results/latest.json and results/latest.svg.
 *
 *   node bench.mjs [--duration S] [--warmup S] [--connections N] [--targets a,b] [--scenarios a,b]
 *                  [--idle-connections N] [--out FILE] [--no-pin] [--smoke] [--cpu-prof DIR]
 *                  [--compare DIR]   (also runs DIR's l7guard as `l7guard-base`: before/after a change)
 *                  [--root DIR]      (the checkout whose l7guard is measured; default: this repository)
 *                  [--autocannon]    (allowed and denied loaded by autocannon from 127.0.0.1 = tiefighter)
 *   BENCH_BASE_NODE_ARGS="--flag ..."  node flags for `l7guard-base` only (with --compare DIR): a V8
 *                                      flag measured against the same tree without it, in one run
 *
 * CPU pinning (docs/benchmarks.md): this process and its load-generator thread on CPU 0,
 * every target and both backends on CPU 1. Absolute numbers on a shared machine are noisy; the
 * ratios between targets of one run are what to compare.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { request as httpRequest } from 'node:http';
import { addressPlan, clusterDir, repoRoot } from './lib/cluster.mjs';
import { ensureNative } from './lib/native.mjs';
import { canPin, cpuMicros, cpuSplitMicros, pin, rssBytes, sum } from './lib/proc.mjs';
import { addRatios, percentile, svg, table } from './lib/report.mjs';
import { DEFAULT_SCENARIOS, kinds as allKinds, plan, SCENARIOS } from './lib/scenarios.mjs';
import { Backends, killAll, startTarget, TARGETS } from './lib/targets.mjs';
import { validate } from './lib/validate.mjs';
import { AUTOCANNON_SCENARIOS, autocannonArgs, runAutocannon } from './lib/autocannon.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: o } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    targets: { type: 'string', default: 'direct,l7guard,haproxy,nginx,undici,http-proxy' },
    scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
    'idle-connections': { type: 'string', default: '10000' },
    out: { type: 'string', default: join(here, 'results', 'latest.json') },
    'no-pin': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
    root: { type: 'string' },
    autocannon: { type: 'boolean', default: false },
  },
  strict: true,
});

const smoke = o.smoke;
const durationMs = (smoke ? 1 : Number(o.duration)) * 1000;
const warmupMs = (smoke ? 0.5 : Number(o.warmup)) * 1000;
const connections = smoke ? 8 : Number(o.connections);
const idleCount = smoke ? 200 : Number(o['idle-connections']);
let targetNames = o.targets.split(',').filter(Boolean);
const scenarioNames = (smoke ? 'allowed,denied,xwing,mix,bigpolicy,body1k,idle' : o.scenarios).split(',').filter(Boolean);
const log = (s) => process.stderr.write(`bench: ${s}\n`);

for (const t of targetNames) if (!(t in TARGETS)) throw new Error(`unknown target ${t} (known: ${Object.keys(TARGETS).join(', ')})`);
for (const s of scenarioNames) if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);
if (o.autocannon) for (const s of scenarioNames) if (!(s in AUTOCANNON_SCENARIOS)) throw new Error(`--autocannon drives ${Object.keys(AUTOCANNON_SCENARIOS).join(', ')} only (one source address), not ${s}`);

// The proxy and the demo backend come from the repository's build.
if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) {
  log('building the repository (tsc)');
  execFileSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'inherit' });
}

// HAProxy and nginx: installed from Debian when missing; the smoke run outside CI skips them instead.
const wantNative = targetNames.filter((t) => TARGETS[t].native);
if (wantNative.length > 0) {
  const have = ensureNative(log, { optional: smoke && !process.env.CI });
  targetNames = targetNames.filter((t) => !TARGETS[t].native || have[TARGETS[t].native]);
}

const pinning = !o['no-pin'] && cpus().length >= 2 && canPin();
const LOADGEN_CPU = '0';
const PROXY_CPU = '1';
if (pinning) pin(process.pid, LOADGEN_CPU);

const addr = await addressPlan(18080 + Math.floor(Math.random() * 1000));
const kinds = allKinds(addr);
const backends = new Backends(addr, { pinCpu: pinning ? PROXY_CPU : undefined });
const dirs = { demo: await clusterDir(addr), big: undefined };
const runs = [];
const notes = [];

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

function worker(data) {
  return new Worker(new URL('./lib/load-worker.mjs', import.meta.url), { workerData: data });
}

function nextMessage(w, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`load worker: no ${type} in ${timeoutMs} ms`)), timeoutMs);
    w.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    w.on('message', function on(m) {
      if (m.type !== type) return;
      clearTimeout(t);
      w.off('message', on);
      resolve(m);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function loadRun(target, p, { during } = {}) {
  const w = worker({ mode: 'load', endpoints: target.endpoints, kinds: p.kinds, conns: p.conns });
  await sleep(warmupMs);
  const cpu0 = sum(target.pids, cpuMicros);
  const user0 = sum(target.pids, (p) => cpuSplitMicros(p).user);
  w.postMessage('record');
  const stopDuring = during?.();
  await sleep(durationMs);
  const result = nextMessage(w, 'result', 30_000);
  w.postMessage('stop');
  const cpu1 = sum(target.pids, cpuMicros);
  const user1 = sum(target.pids, (p) => cpuSplitMicros(p).user);
  const rss = sum(target.pids, rssBytes);
  const r = await result;
  const extra = await stopDuring?.();
  const lat = r.latencies.sort();
  const c = r.counts;
  const n = c.completed;
  return {
    rps: (n * 1000) / r.elapsedMs,
    requests: n,
    p50: percentile(lat, 50),
    p975: percentile(lat, 97.5),
    p99: percentile(lat, 99),
    errors: c.errors,
    ok2xx: c.ok2xx,
    non2xxExpected: c.non2xxExpected,
    non2xxUnexpected: c.non2xxUnexpected,
    wrongBody: c.wrongBody,
    dropsExpected: c.dropsExpected,
    outcomes: c.byOutcome,
    rssMB: rss / 2 ** 20,
    cpuPerReqUs: n > 0 ? (cpu1 - cpu0) / n : undefined,
    userPerReqUs: n > 0 ? (user1 - user0) / n : undefined,
    cpuUtil: (cpu1 - cpu0) / (r.elapsedMs * 1000),
    ...extra,
  };
}

/** The same measurement as loadRun, with autocannon as the load generator (a warm-up run first). */
async function autocannonRun(target, sname, tname) {
  const { host, port } = target.endpoints[0];
  const opts = { host, port, authority: addr.authority, connections };
  const cpu = pinning ? LOADGEN_CPU : undefined;
  if (warmupMs > 0) await runAutocannon(autocannonArgs(sname, { ...opts, durationS: warmupMs / 1000 }), { cpu });
  const args = autocannonArgs(sname, { ...opts, durationS: durationMs / 1000 });
  log(`${sname}/${tname}: autocannon ${args.join(' ')}`);
  const cpu0 = sum(target.pids, cpuMicros);
  const r = await runAutocannon(args, { cpu });
  const cpu1 = sum(target.pids, cpuMicros);
  const n = r.requests.total;
  const expected = sname === 'denied' ? r['4xx'] : r['2xx'];
  return {
    autocannon: args,
    rps: n / r.duration,
    requests: n,
    p50: r.latency.p50,
    p975: r.latency.p97_5,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    ok2xx: r['2xx'],
    non2xxExpected: sname === 'denied' ? r['4xx'] : 0,
    non2xxUnexpected: n - expected,
    wrongBody: 0,
    rssMB: sum(target.pids, rssBytes) / 2 ** 20,
    cpuPerReqUs: n > 0 ? (cpu1 - cpu0) / n : undefined,
    cpuUtil: (cpu1 - cpu0) / (r.duration * 1e6),
  };
}

async function idleRun(target) {
  const rss0 = sum(target.pids, rssBytes);
  const w = worker({ mode: 'idle', endpoints: target.endpoints, kinds: [kinds.landing].map((k) => ({ buf: k.buf, expect: k.expect })), count: idleCount, localAddress: addr.tiefighter, batch: 250 });
  const ready = await nextMessage(w, 'idle-ready', 180_000);
  await sleep(smoke ? 200 : 2000);
  const rss = sum(target.pids, rssBytes);
  const done = nextMessage(w, 'idle-result', 30_000);
  w.postMessage('stop');
  const end = await done;
  return { idle: true, idleOpen: ready.open, idleFailed: ready.failed, idleStillOpen: end.stillOpen, rssMB: rss / 2 ** 20, rssBeforeMB: rss0 / 2 ** 20 };
}

function post(url) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** l7guard's POST /reload every 100 ms while under load, when the admin API has it. */
function reloader(target) {
  return () => {
    let count = 0;
    let failures = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const status = await post(`http://${target.admin}/reload`);
          if (status === 404 || status === 405) return { reloadUnsupported: status };
          if (status >= 200 && status < 300) count++;
          else failures++;
        } catch {
          failures++;
        }
        await sleep(100);
      }
      return {};
    })();
    return async () => {
      running = false;
      const r = await loop;
      return { reloads: count, reloadFailures: failures, ...r };
    };
  };
}

async function main() {
  log(`${cpus().length} CPUs (${cpus()[0]?.model}), pinning ${pinning ? `load generator -> CPU ${LOADGEN_CPU}, targets + backends -> CPU ${PROXY_CPU}` : 'off'}`);
  await backends.start();
  let index = 0;
  for (const sname of scenarioNames) {
    const sc = SCENARIOS[sname];
    const names = [...(sc.targets ?? targetNames.filter((t) => (!sc.policyOnly || TARGETS[t].policy) && !sc.skip?.includes(t)))];
    const skipped = sc.skip?.filter((t) => targetNames.includes(t)) ?? [];
    if (skipped.length > 0) notes.push(`${sname}: ${skipped.join(', ')} not run (${sc.what}: those peers stall intermittently, see lib/scenarios.mjs)`);
    // --compare DIR: the same scenarios against another checkout's l7guard (before/after a change).
    if (o.compare && names.includes('l7guard')) names.splice(names.indexOf('l7guard') + 1, 0, 'l7guard-base');
    if (sname === 'reload' || sname === 'bigpolicy') {
      if (!targetNames.includes('l7guard')) continue;
    }
    if (sname === 'bigpolicy' && dirs.big === undefined) dirs.big = await clusterDir(addr, { big: true });
    const p = plan(sc, kinds, addr, connections);
    for (const tname of names) {
      const base = tname === 'l7guard-big' || tname === 'l7guard-base' ? 'l7guard' : tname;
      const nodeArgs = o['cpu-prof'] && base === 'l7guard' ? ['--cpu-prof', '--cpu-prof-dir', o['cpu-prof'], '--cpu-prof-name', `l7guard-${sname}-${tname}.cpuprofile`] : tname === 'l7guard-base' && process.env.BENCH_BASE_NODE_ARGS ? process.env.BENCH_BASE_NODE_ARGS.split(' ') : [];
      const target = await startTarget(base, {
        addr, index: index++ % 200, backends, pinCpu: pinning ? PROXY_CPU : undefined,
        clusterDir: tname === 'l7guard-big' ? dirs.big : dirs.demo, nodeArgs,
        root: tname === 'l7guard-base' ? o.compare : o.root,
      });
      try {
        const check = await validate(target, p.names.map((n) => [n, kinds[n]]), addr, backends, { balanced: true });
        const run = { scenario: sname, target: tname, valid: check.ok, problems: check.problems, checks: check.checks };
        if (!check.ok) log(`${sname}/${tname}: answers FAILED: ${check.problems.join('; ')}`);
        const before = await backends.hits();
        Object.assign(run, sc.idle ? await idleRun(target) : o.autocannon ? await autocannonRun(target, sname, tname) : await loadRun(target, p, { during: sname === 'reload' ? reloader(target) : undefined }));
        if (o.autocannon && run.non2xxUnexpected > 0) {
          run.valid = false;
          run.problems.push(`${run.non2xxUnexpected} answer(s) other than the scenario's`);
        }
        const after = await backends.hits();
        // Nothing a deny scenario sends may reach a backend during the timed run either.
        const leaked = after.reduce((n, h, i) => n + (h['PUT /v1/exhaust-port'] ?? 0) - (before[i]['PUT /v1/exhaust-port'] ?? 0), 0);
        run.deniedReachedBackend = leaked;
        if (leaked > 0) {
          run.valid = false;
          run.problems.push(`${leaked} denied request(s) reached a backend during the run`);
        }
        if (!run.idle && run.requests === 0) {
          run.valid = false;
          run.problems.push('no request completed during the run');
        }
        runs.push(run);
        log(`${sname}/${tname}: ${run.idle ? `${run.idleOpen} idle, RSS ${run.rssMB.toFixed(1)} MB` : `${Math.round(run.rps)} req/s, p99 ${run.p99?.toFixed(2)} ms, ${run.cpuPerReqUs?.toFixed(1)} µs CPU/req${run.userPerReqUs === undefined ? '' : ` (${run.userPerReqUs.toFixed(1)} user)`}`}${run.valid ? '' : ' (FAILED)'}`);
      } finally {
        await target.stop();
      }
    }
  }
  await backends.stop();
}

try {
  await main();
} finally {
  killAll();
}

addRatios(runs);
const result = {
  date: new Date().toISOString(),
  machine: { hostname: hostname(), cpus: cpus().length, model: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() },
  settings: { durationS: durationMs / 1000, warmupS: warmupMs / 1000, connections, idleConnections: idleCount, pinning, smoke },
  versions: versions(),
  notes,
  runs,
};
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
writeFileSync(o.out.replace(/\.json$/, '') + '.svg', svg(runs, `l7guard bench ${result.date.slice(0, 10)} — ${result.machine.cpus} CPUs, ${connections} connections, ${durationMs / 1000} s`));
process.stdout.write(table(runs) + '\n');
process.stdout.write(`machine: ${result.machine.model}, ${result.machine.cpus} CPUs, Node ${process.version}; results: ${o.out}\n`);
const failed = runs.filter((r) => !r.valid);
if (failed.length > 0) {
  process.stderr.write(`bench: ${failed.length} run(s) answered incorrectly:\n${failed.map((r) => `  ${r.scenario}/${r.target}: ${r.problems.join('; ')}`).join('\n')}\n`);
  process.exitCode = 1;
}

function versions() {
  const v = {};
  const tryRun = (k, cmd, args, re) => {
    try {
      const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      v[k] = re.exec(out)?.[1];
    } catch (err) {
      const out = String(err.stderr ?? '');
      const m = re.exec(out);
      if (m) v[k] = m[1];
    }
  };
  tryRun('haproxy', '/usr/sbin/haproxy', ['-v'], /version (\S+)/);
  try {
    v.nginx = /nginx\/(\S+)/.exec(execFileSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[1];
  } catch {
    /* nginx -v prints on stderr; execFileSync returns stdout only */
  }
  if (v.nginx === undefined) {
    try {
      const r = execFileSync('sh', ['-c', '/usr/sbin/nginx -v 2>&1'], { encoding: 'utf8' });
      v.nginx = /nginx\/(\S+)/.exec(r)?.[1];
    } catch {
      /* absent */
    }
  }
  v.node = process.version;
  return v;
}
