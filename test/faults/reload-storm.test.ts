// The reload storm: a policy swap every 50 ms for 10 s while autocannon keeps keep-alive connections
// busy. The two alternating revisions both allow A (POST /v1/request-landing) and both deny B
// (PUT /v1/exhaust-port), so any response other than A→200 / B→403 — or any error, reset or
// timeout — means a request was judged by a half-swapped or missing state. Counts, never timings.
import t from 'tap';
import autocannon from 'autocannon';
import { setTimeout as sleep } from 'node:timers/promises';
import { loopbackBlock } from '../helpers/net.js';
import { recordingBackend, type RecordingBackend } from '../helpers/backend.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { adminRequest } from '../../proxy/admin/client.js';
import { deathstarPolicy, reloadStats } from '../proxy/reload/helpers.js';

const ip = loopbackBlock();
// autocannon cannot choose its source address: the kernel gives a loopback client 127.0.0.1, so in
// this cluster (and only here) that is the tiefighter's pod IP.
const ips = { tiefighter: '127.0.0.1', xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18080;
const STORM_MS = 10_000;
const SWAP_EVERY_MS = 50;

const LANDING = { method: 'POST', path: '/v1/request-landing' };
const REVISION_X = [LANDING];
const REVISION_Y = [LANDING, { method: 'GET', path: '/v1/.*' }];

t.test('reload storm under load: zero unexpected responses', async (t) => {
  const backends: RecordingBackend[] = await Promise.all(ips.deathstar.map((a, i) => recordingBackend(`ds${i}`, a, PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, PORT), { '10-policy.yaml': deathstarPolicy(PORT, REVISION_X) });
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  const startRevision = (await reloadStats(s.admin)).revision;

  const counts = { A: new Map<number, number>(), B: new Map<number, number>() };
  const count = (m: Map<number, number>) => (status: number) => void m.set(status, (m.get(status) ?? 0) + 1);
  const run = autocannon({
    url: `http://${s.host}:${s.port}`,
    connections: 8,
    duration: STORM_MS / 1000,
    headers: { host: 'deathstar', 'content-length': '0' },
    requests: [
      { method: 'POST', path: '/v1/request-landing', onResponse: count(counts.A) },
      { method: 'PUT', path: '/v1/exhaust-port', onResponse: count(counts.B) },
    ],
  });

  let swaps = 0;
  let sighups = 0;
  let failedSwaps = 0;
  const storm = (async () => {
    const until = Date.now() + STORM_MS - 200;
    for (let i = 0; Date.now() < until; i++) {
      // Every 10th swap is a SIGHUP (file path), the rest admin PUTs: both converge on one pipeline.
      if (i % 10 === 9) {
        s.proc.kill('SIGHUP');
        sighups++;
      } else {
        const a = await adminRequest(s.admin, 'PUT', '/v1/ciliumnetworkpolicies/default/rule1', deathstarPolicy(PORT, i % 2 === 0 ? REVISION_Y : REVISION_X));
        if (a.status !== 200) failedSwaps++;
        else if (a.body['result'] === 'configured') swaps++;
      }
      await sleep(SWAP_EVERY_MS);
    }
  })();
  const [result] = await Promise.all([run, storm]);

  const stats = await reloadStats(s.admin);
  t.equal(failedSwaps, 0, 'every swap was accepted');
  t.ok(swaps >= 20, `the storm happened (${swaps} API swaps, revision ${startRevision} → ${stats.revision})`);
  const hupSwaps = s.logs.filter((l) => l['msg'] === 'policy swapped' && l['trigger'] === 'SIGHUP').length;
  t.ok(hupSwaps >= 1 && hupSwaps <= sighups, `SIGHUPs swapped too (${hupSwaps} of ${sighups}; a burst coalesces)`);
  t.equal(stats.revision - startRevision, swaps + hupSwaps, 'each swap is its own revision');
  t.equal(stats.failures, 0, 'no reload failed');

  const a = Object.fromEntries(counts.A);
  const b = Object.fromEntries(counts.B);
  t.ok((counts.A.get(200) ?? 0) > 100, `A answered under load (${JSON.stringify(a)})`);
  t.same([...counts.A.keys()], [200], 'A: always 200');
  t.ok((counts.B.get(403) ?? 0) > 100, `B answered under load (${JSON.stringify(b)})`);
  t.same([...counts.B.keys()], [403], 'B: always 403');
  t.equal(result.errors, 0, 'no connection errors');
  t.equal(result.timeouts, 0, 'no timeouts');
  t.equal(result.resets, 0, 'no resets');
  const reached = [...backends[0]!.seen, ...backends[1]!.seen];
  t.equal(reached.filter((r) => r.method === 'PUT').length, 0, 'no denied request reached deathstar');
  // autocannon stops counting at the deadline: up to one in-flight request per connection is unanswered.
  const answered = counts.A.get(200) ?? 0;
  t.ok(reached.length >= answered && reached.length <= answered + 8, `allowed requests reached deathstar once each (${reached.length} for ${answered} answers)`);
  t.equal(s.proc.exitCode, null, 'the proxy is still running');
});
