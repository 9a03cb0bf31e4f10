// `l7guard observe` as a real child process: against a flow log (--input-file) with golden compact
// text for the Star Wars demo's commands, and against a running proxy's admin port.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toFlows } from '../../observe/flow.js';
import { serializeFlow } from '../../observe/flow-sink.js';
import { runCli, serve } from '../helpers/serve.js';
import { loopbackBlock, rawExchange, hasCompleteResponse } from '../helpers/net.js';
import { recordingBackend } from '../helpers/backend.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';
import { scenarios, uuidSeq, type ScenarioName } from '../observe/recorded-scenarios.js';

const dir = mkdtempSync(join(tmpdir(), 'l7guard-observe-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'flows.ndjson');
const uuid = uuidSeq();
writeFileSync(file, (Object.keys(scenarios) as ScenarioName[]).flatMap((n) => toFlows(scenarios[n], { uuid })).map((r) => serializeFlow(r) + '\n').join(''));

const EXHAUST = 'Jul 26 06:57:12.949: default/tiefighter:33338 (ID:22234) -> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)\n';
const XWING_VERDICT = 'Jul 26 06:57:34.526: default/xwing:56934 (ID:42250) <> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)\n';
const XWING_DROP = 'Jul 26 06:57:34.526: default/xwing:56934 (ID:42250) <> default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476) Policy denied DROPPED (TCP Flags: SYN)\n';

t.test('--input-file: the Star Wars demo commands, golden compact text', async (t) => {
  const seedCmd = await runCli(['observe', '--input-file', file, '--pod', 'deathstar', '--verdict', 'DROPPED']);
  t.equal(seedCmd.code, 0, seedCmd.stderr);
  t.equal(seedCmd.stdout, EXHAUST + XWING_VERDICT + XWING_DROP, 'hubble observe --pod deathstar --verdict DROPPED');
  const drop = await runCli(['observe', '--input-file', file, '--type', 'drop']);
  t.equal(drop.stdout, XWING_DROP, '--type drop');
  const ids = await runCli(['observe', '--input-file', file, '--identity', '42250', '--identity', '22234', '--last', '1']);
  t.equal(ids.stdout, XWING_DROP, '--identity repeated, --last 1');
  const json = await runCli(['observe', '--input-file', file, '--http-status', '403', '-o', 'jsonpb']);
  const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { flow: { l7: { http: { code: number } } }; node_name: string });
  t.same(lines.map((l) => [l.flow.l7.http.code, l.node_name]), [[403, 'k8s-w1']], '-o jsonpb: GetFlowsResponse lines');
  const table = await runCli(['observe', '--input-file', file, '--type', 'drop', '-o', 'table']);
  t.equal(table.stdout,
    'TIMESTAMP            SOURCE                          DESTINATION                                      TYPE  VERDICT  SUMMARY\n' +
    'Jul 26 06:57:34.526  default/xwing:56934 (ID:42250)  default/deathstar-8c4c77fb7-vhj8x:80 (ID:27476)  drop  DROPPED  TCP Flags: SYN\n',
    '-o table');
  const bad = await runCli(['observe', '--input-file', file, '--verdict', 'NOPE']);
  t.equal(bad.code, 2, 'invalid filter is a usage error');
  t.match(bad.stderr, /invalid --verdict/);
});

/** A proxy for the Star Wars cluster with two deathstar backends, and tiefighter's landing request through it. */
async function starWarsProxy(t: Test) {
  const ip = loopbackBlock();
  const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };
  const backends = [await recordingBackend('a', ips.deathstar[0], 18080), await recordingBackend('b', ips.deathstar[1], 18080)];
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const s = await serve(['-f', clusterDir(starWarsCluster(ips, 18080)), '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`]);
  t.teardown(() => s.stop());
  const land = () => rawExchange({ from: ips.tiefighter, to: s.host, port: s.port, data: `POST /v1/request-landing HTTP/1.1\r\nHost: deathstar\r\n\r\n`, until: hasCompleteResponse });
  return { s, land };
}

t.test('--server: the ring of a running proxy, and --follow', { timeout: 90_000 }, async (t) => {
  const { s, land } = await starWarsProxy(t);
  await land();
  const r = await runCli(['observe', '--server', s.admin, '--from-pod', 'tiefighter']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\w{3} [ \d]\d [\d:.]+: default\/tiefighter:\d+ \(ID:\d+\) -> default\/deathstar-8c4c77fb7-\w+:18080 \(ID:\d+\) http-request FORWARDED \(HTTP\/1\.1 POST http:\/\/deathstar\/v1\/request-landing\)\n$/);
  // --follow: start, make one exchange, see its two flows, stop.
  const { spawn } = await import('node:child_process');
  const { cliPath } = await import('../helpers/serve.js');
  const p = spawn(process.execPath, [cliPath, 'observe', '--server', s.admin, '-f', '--http-method', 'POST'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void p.kill('SIGKILL'));
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  await new Promise((r) => setTimeout(r, 500));
  t.equal(out, '', 'follow without --last prints nothing old');
  // The follow stream may open later than this under load: land until flows show up (bounded).
  for (let i = 0; i < 40 && out.split('\n').length <= 2; i++) {
    await land();
    await new Promise((r) => setTimeout(r, 250));
  }
  p.kill('SIGTERM');
  t.match(out, /http-request FORWARDED .*\n.*http-response FORWARDED \(HTTP\/1\.1 200 \d+ms \(POST /);
});

t.test('--follow ends cleanly: exit 0 on Ctrl-C or SIGTERM, one line and exit 1 when the proxy goes away', { timeout: 240_000 }, async (t) => {
  const { spawn } = await import('node:child_process');
  const { cliPath } = await import('../helpers/serve.js');
  const { s, land } = await starWarsProxy(t);

  /** `observe -f` once it is live: a landing made now shows up in its output. */
  const follow = async () => {
    const p = spawn(process.execPath, [cliPath, 'observe', '--server', s.admin, '-f'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => void p.kill('SIGKILL'));
    const io = { out: '', err: '' };
    p.stdout.setEncoding('utf8').on('data', (c: string) => (io.out += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (io.err += c));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    for (let i = 0; i < 120 && !io.out.includes('http-response FORWARDED'); i++) {
      await land();
      await new Promise((r) => setTimeout(r, 250));
    }
    t.match(io.out, /http-response FORWARDED/, 'following');
    return { p, io, exited };
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const f = await follow();
    f.p.kill(signal);
    t.equal(await f.exited, 0, `${signal}: exit 0`);
    t.equal(f.io.err, '', `${signal}: nothing on stderr`);
  }

  const f = await follow();
  await s.stop();
  t.equal(await f.exited, 1, 'the proxy went away: exit 1');
  t.equal(f.io.err, `l7guard observe: the proxy at ${s.admin} ended the flow stream (it stopped or restarted)\n`);
});
