/**
 * runDemo end to end against test/demo/fake-proxy.ts (same command line as `l7guard serve`), real
 * deathstar processes and real sockets. Each test uses its own loopback /24 so the files can run in
 * parallel. Needs root or unprivileged user namespaces, like the demo itself.
 */
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runDemo } from '../../demo/run.js';

const FAKE = join(dirname(fileURLToPath(import.meta.url)), 'fake-proxy.js');

async function demo(block: string, fault?: string): Promise<{ code: number; out: string }> {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (s: string) => { text += s; });
  const env = fault === undefined ? [] : ['/usr/bin/env', `FAKE_PROXY_FAULT=${fault}`];
  const code = await runDemo({ out, block, proxyCommand: [...env, process.execPath, FAKE] });
  return { code, out: text };
}

t.test('the Star Wars demo, step by step, with a proxy that enforces the policies', async (t) => {
  const { code, out } = await demo('127.0.21.0/24');
  t.equal(code, 0, out);
  t.notMatch(out, /MISMATCH/);
  t.match(out, '❯ kubectl exec tiefighter -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing\nShip landed\n');
  t.match(out, '❯ kubectl exec xwing -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing\ncommand terminated with exit code');
  t.match(out, '❯ kubectl exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port\nPanic: deathstar exploded\n');
  t.match(out, '❯ kubectl exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port\nAccess denied');
  t.match(out, /crashed \(panic: deathstar exploded; exit code 2\); restarting it/);
  t.match(out, /deathstar-[a-z0-9]+-[a-z0-9]{5}\s+1\/1\s+Running\s+1\n/, 'restarted once');
  t.match(out, /default\/xwing:\d+ \(ID:\d+\) <> default\/deathstar-\S+:80 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)/);
  t.match(out, /default\/tiefighter:\d+ \(ID:\d+\) -> default\/deathstar-\S+:80 \(ID:\d+\) http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)/);
  t.match(out, '=== 5. Clean-up ===');
  t.match(out, /OK: every outcome matches Cilium's/);
});

t.test('a proxy that ignores policy is caught: mismatches, exit 1', async (t) => {
  const { code, out } = await demo('127.0.22.0/24', 'allow-all');
  t.equal(code, 1);
  t.match(out, 'MISMATCH: expected xwing to get no HTTP bytes and a closed connection (a drop), got HTTP 200 with body "Ship landed\\n"');
  t.match(out, 'MISMATCH: expected nothing to reach deathstar, got POST /v1/request-landing');
  t.match(out, 'MISMATCH: expected tiefighter to get HTTP 403 with body "Access denied\\r\\n", got HTTP 503');
  t.match(out, /MISMATCH: expected a flow "default\/xwing:… Policy denied DROPPED \(TCP Flags: SYN\)"/);
  t.notMatch(out, /OK: every outcome/);
});

t.test('a proxy that refuses its policy fails the demo with its stderr', async (t) => {
  const { code, out } = await demo('127.0.23.0/24', 'bad-policy');
  t.equal(code, 1);
  t.match(out, /FAILED: the proxy exited \(1\) before it was ready:\nl7guard serve: invalid policy \(fake\)/);
});
