// Hot reload through every path, end to end against `l7guard serve` as a child process: a file edit
// (atomic rename), SIGHUP, the admin API (PUT/DELETE) and `l7guard apply/delete`. Each change is
// proven by what a real client on the tiefighter's address gets, and by what reached the backend.
import t from 'tap';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../../helpers/net.js';
import { recordingBackend, type RecordingBackend } from '../../helpers/backend.js';
import { serve, runCli, type Served } from '../../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../../helpers/cluster.js';
import { adminRequest } from '../../../proxy/admin/client.js';
import { atomicWrite, deathstarPolicy, reloadStats, waitFor } from './helpers.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
const PORT = 18080;
const LANDING_ONLY = [{ method: 'POST', path: '/v1/request-landing' }];
const req = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\n\r\n`;

async function status(s: Served, method: string, path: string, from = ips.tiefighter): Promise<number | 'dropped'> {
  const r = await rawExchange({ from, to: s.host, port: s.port, data: req(method, path), until: hasCompleteResponse });
  if (r.bytes.length === 0) return 'dropped';
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1] ?? 0);
}

const exhaust = (s: Served) => status(s, 'PUT', '/v1/exhaust-port');
const logged = (s: Served, msg: string, extra: (l: Record<string, unknown>) => boolean = () => true) =>
  s.logs.filter((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith(msg) && extra(l));

t.test('reload paths', async (t) => {
  const backends: RecordingBackend[] = await Promise.all(ips.deathstar.map((a, i) => recordingBackend(`ds${i}`, a, PORT)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const dir = clusterDir(starWarsCluster(ips, PORT), { '10-policy.yaml': deathstarPolicy(PORT) });
  const policyFile = join(dir, '10-policy.yaml');
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());

  await t.test('file edit by atomic rename: the L7 rule is in force within a second', async (t) => {
    t.equal(await exhaust(s), 200, 'L3/L4 only: exhaust-port reaches deathstar');
    const before = backends[0]!.seen.length + backends[1]!.seen.length;
    atomicWrite(policyFile, deathstarPolicy(PORT, LANDING_ONLY));
    // The write-to-enforcement latency is measured in bench/reload/enforce.mjs; here only that it happens.
    await waitFor('the 403', async () => ((await exhaust(s)) === 403 ? true : undefined), 10_000);
    t.equal(await status(s, 'POST', '/v1/request-landing'), 200, 'landing still allowed');
    t.equal(await status(s, 'POST', '/v1/request-landing', ips.xwing), 'dropped', 'xwing still dropped');
    const st = await reloadStats(s.admin);
    t.ok(st.revision >= 2, 'revision bumped');
    t.ok(logged(s, 'policy swapped', (l) => l['trigger'] === 'file' && l['revision'] === st.revision).length === 1, 'the swap is logged with its revision');
    const seen = () => backends[0]!.seen.length + backends[1]!.seen.length;
    const n = seen();
    t.equal(await exhaust(s), 403);
    t.equal(seen(), n, 'a denied request never reaches deathstar');
    t.ok(n > before, 'allowed ones did');
  });

  await t.test('a file that vanishes and comes back', async (t) => {
    const rev = (await reloadStats(s.admin)).revision;
    unlinkSync(policyFile);
    await waitFor('no policy', async () => ((await exhaust(s)) === 200 ? true : undefined), 3000);
    writeFileSync(policyFile, deathstarPolicy(PORT, LANDING_ONLY));
    await waitFor('the policy back', async () => ((await exhaust(s)) === 403 ? true : undefined), 3000);
    t.ok((await reloadStats(s.admin)).revision >= rev + 2);
  });

  await t.test('a bad policy file is rejected; the running rules stay', async (t) => {
    const before = await reloadStats(s.admin);
    atomicWrite(policyFile, deathstarPolicy(PORT, LANDING_ONLY).replace('method:', 'methood:'));
    const after = await waitFor('a failure count', async () => {
      const st = await reloadStats(s.admin);
      return st.failures > before.failures ? st : undefined;
    }, 3000);
    t.equal(after.revision, before.revision, 'no swap');
    t.match(after.lastError?.message ?? '', /methood/, 'the reason names the field');
    t.equal(after.lastError?.trigger, 'file');
    t.ok(logged(s, 'policy reload rejected').length >= 1, 'a log line records it');
    t.equal(await exhaust(s), 403, 'old L7 rule still denies');
    t.equal(await status(s, 'POST', '/v1/request-landing'), 200, 'and still allows');
    atomicWrite(policyFile, deathstarPolicy(PORT, LANDING_ONLY));
  });

  await t.test('admin PUT: invalid → 422 with the reason, running rules stay; valid → 200 and enforced', async (t) => {
    const rev = (await reloadStats(s.admin)).revision;
    const bad = await adminRequest(s.admin, 'PUT', '/v1/ciliumnetworkpolicies/default/rule2', deathstarPolicy(PORT, [{ method: 'GET(', path: '/' }], 'rule2'));
    t.equal(bad.status, 422);
    t.equal(bad.body['code'], 'L7G_ERR_APPLY_INVALID');
    t.match(JSON.stringify(bad.body['problems']), /rule2/, 'the problem names the object');
    t.equal((await reloadStats(s.admin)).revision, rev, 'nothing swapped');
    t.equal(await exhaust(s), 403);

    const mismatch = await adminRequest(s.admin, 'PUT', '/v1/cnp/default/other', deathstarPolicy(PORT, undefined, 'rule2'));
    t.equal(mismatch.status, 400);
    t.equal(mismatch.body['code'], 'L7G_ERR_APPLY_MISMATCH');
    t.equal((await adminRequest(s.admin, 'PUT', '/v1/deployments/default/x', '{}')).status, 404, 'unknown kind');
    t.equal((await adminRequest(s.admin, 'GET', '/v1/ciliumnetworkpolicies/default/rule1')).status, 405, 'GET never mutates');

    // rule1 through the API replaces the file's rule1 (the overlay wins): exhaust-port allowed again.
    const ok = await adminRequest(s.admin, 'PUT', '/v1/ciliumnetworkpolicies/default/rule1',
      deathstarPolicy(PORT, [...LANDING_ONLY, { method: 'PUT', path: '/v1/exhaust-port' }]));
    t.equal(ok.status, 200);
    t.equal(ok.body['result'], 'configured');
    t.equal(ok.body['revision'], rev + 1);
    t.equal(await exhaust(s), 200, 'in force when the PUT answered');
    const st = await reloadStats(s.admin);
    t.equal(st.objects.find((o) => o.kind === 'CiliumNetworkPolicy' && o.name === 'rule1')?.source, 'api');
    t.equal(st.objects.find((o) => o.kind === 'Service')?.source, `file:${join(dir, '00-cluster.yaml')}`);
    t.same(st.sources.map((f) => f.file), [join(dir, '00-cluster.yaml'), policyFile], 'file hashes listed');
  });

  await t.test('the overlay survives a file reload and SIGHUP', async (t) => {
    const rev = (await reloadStats(s.admin)).revision;
    atomicWrite(policyFile, deathstarPolicy(PORT, [{ method: 'GET', path: '/' }]));
    await waitFor('the file reload', async () => ((await reloadStats(s.admin)).revision > rev ? true : undefined), 3000);
    t.equal(await exhaust(s), 200, 'the API rule1 still wins after a file reload');
    const rev2 = (await reloadStats(s.admin)).revision;
    s.proc.kill('SIGHUP');
    await waitFor('the SIGHUP swap', () => (logged(s, 'policy swapped', (l) => l['trigger'] === 'SIGHUP').length > 0 ? true : undefined), 3000);
    t.equal((await reloadStats(s.admin)).revision, rev2 + 1, 'SIGHUP swaps a new revision even with no byte changed');
    t.equal(await exhaust(s), 200, 'and the overlay survived it');
    t.equal((await reloadStats(s.admin)).overlay, 1);
    const rev3 = (await reloadStats(s.admin)).revision;
    atomicWrite(policyFile, deathstarPolicy(PORT, LANDING_ONLY));
    await waitFor('the file restored', async () => ((await reloadStats(s.admin)).revision > rev3 ? true : undefined), 3000);
  });

  await t.test('l7guard apply / delete', async (t) => {
    const f = join(dir, '..', `apply-${process.pid}.yaml`);
    const withExhaust = [...LANDING_ONLY, { method: 'PUT', path: '/v1/exhaust-port' }];
    writeFileSync(f, deathstarPolicy(PORT, withExhaust) + '---\n' + deathstarPolicy(PORT, [{ method: 'GET', path: '/' }], 'rule3'));
    const a = await runCli(['apply', '-f', f, '--server', s.admin]);
    t.equal(a.code, 0, a.stderr);
    // rule1 is byte-for-byte what the admin PUT above applied: kubectl says "unchanged" then too.
    t.equal(a.stdout, 'ciliumnetworkpolicy.cilium.io/rule1 unchanged\nciliumnetworkpolicy.cilium.io/rule3 created\n');
    t.equal(await exhaust(s), 200, 'the applied rule1 is in force');
    t.equal(await status(s, 'GET', '/'), 200, 'and rule3');

    const again = await runCli(['apply', '-f', f, '--server', s.admin]);
    t.equal(again.stdout, 'ciliumnetworkpolicy.cilium.io/rule1 unchanged\nciliumnetworkpolicy.cilium.io/rule3 unchanged\n');

    const d = await runCli(['delete', 'cnp', 'rule1', '--server', s.admin]);
    t.equal(d.code, 0, d.stderr);
    t.equal(d.stdout, 'ciliumnetworkpolicy.cilium.io "rule1" deleted\n');
    t.equal(await exhaust(s), 403, "the file's rule1 is back in force");
    t.equal(await status(s, 'GET', '/'), 200, 'rule3 still is');
    const d3 = await runCli(['delete', 'ciliumnetworkpolicies', 'rule3', '-n', 'default', '--server', s.admin]);
    t.equal(d3.code, 0, d3.stderr);
    t.equal(await status(s, 'GET', '/'), 403, 'back to the file rules only');
    t.equal(await status(s, 'POST', '/v1/request-landing'), 200);

    const absent = await runCli(['delete', 'cnp', 'rule3', '--server', s.admin]);
    t.equal(absent.code, 1);
    t.match(absent.stderr, /L7G_ERR_APPLY_NOT_FOUND/);
    const fromFile = await runCli(['delete', 'cnp', 'rule1', '--server', s.admin]);
    t.equal(fromFile.code, 1);
    t.match(fromFile.stderr, /comes from file:/, 'file objects are not deleted through the API');

    const bad = join(dir, '..', `bad-${process.pid}.yaml`);
    writeFileSync(bad, deathstarPolicy(PORT, [{ method: 'GET', path: '(' }], 'rule4'));
    const rejected = await runCli(['apply', '-f', bad, '--server', s.admin]);
    t.equal(rejected.code, 1);
    t.match(rejected.stderr, /^Error from server \(L7G_ERR_APPLY_INVALID\)/);
    t.match(rejected.stderr, /rule4/);
  });

  await t.test('a replica added and removed live through the API', async (t) => {
    const extra = await recordingBackend('ds-extra', ip(23), PORT);
    t.teardown(() => extra.close());
    const pod = `apiVersion: v1
kind: Pod
metadata: {name: deathstar-extra, namespace: default, labels: {org: empire, class: deathstar}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: ${PORT}}]}]}
status: {podIP: ${ip(23)}, podIPs: [{ip: ${ip(23)}}]}
`;
    const put = await adminRequest(s.admin, 'PUT', '/v1/pods/default/deathstar-extra', pod);
    t.equal(put.status, 201);
    for (let i = 0; i < 6; i++) t.equal(await status(s, 'POST', '/v1/request-landing'), 200);
    t.ok(extra.seen.length >= 1, 'the new replica gets traffic');
    t.equal((await adminRequest(s.admin, 'DELETE', '/v1/pods/default/deathstar-extra')).status, 200);
    const n = extra.seen.length;
    for (let i = 0; i < 6; i++) t.equal(await status(s, 'POST', '/v1/request-landing'), 200);
    t.equal(extra.seen.length, n, 'and none once it is deleted');
  });
});
