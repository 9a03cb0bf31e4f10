/**
 * The README's "Protect your own service" quickstart, run as written: the commands are read from
 * README.md itself (so the section cannot drift from what works), run from the repository root as
 * child processes — the backend and `l7guard serve` in the background, then curl, `observe`,
 * `apply` and `policy trace` — and every output the README shows is compared with the real one
 * (timestamps, client ports, latencies and the Date header aside). On top of that the outcomes are
 * asserted directly: allowed → the backend's answer, L7-denied → 403 Access denied, L3/L4-denied →
 * connection reset, and `policy trace` names the rule that decides.
 *
 * `npx l7guard` runs as `node bin/l7guard.js` (the README says they are the same). curl runs when
 * installed; otherwise node:http with the same source address stands in for it. The addresses and
 * ports are the example's fixed ones (127.0.0.10-31, 8080, 9901): a quickstart left running by hand
 * on this machine makes the test fail at start, saying so.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { canBind } from '../helpers/net.js';
import { untilTrue } from '../helpers/poll.js';
import { cliPath, repoRoot, runCli, serve, type Served } from '../helpers/serve.js';

interface Step {
  readonly command: string;
  /** The output the README shows under the command (undefined: none shown). */
  readonly expected: string[] | undefined;
  readonly background: boolean;
}

/** The commands of the README section, in order, with the output shown under each. */
function quickstartSteps(readme: string): Step[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Protect your own service'));
  if (section === undefined) throw new Error('README.md has no "## Protect your own service" section');
  const steps: { command: string; expected: string[] | undefined; background: boolean }[] = [];
  for (const m of section.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```/gm)) {
    const indent = (m[1] as string).length;
    const lines = (m[3] as string).split('\n').map((l) => l.slice(indent)).filter((l, i, a) => i < a.length - 1 || l !== '');
    if (m[2] === 'sh') {
      for (const l of lines) {
        if (l.trim() === '' || l.startsWith('#')) continue;
        const background = /\s&$/.test(l);
        steps.push({ command: background ? l.replace(/\s*&$/, '') : l, expected: undefined, background });
      }
      continue;
    }
    for (const l of lines) {
      if (l.startsWith('$ ')) steps.push({ command: l.slice(2), expected: [], background: false });
      else steps.at(-1)?.expected?.push(l);
    }
  }
  return steps;
}

/** Words of a command line: whitespace-separated, with '…' and "…" quoting (all the README uses). */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? (m[3] as string));
}

/** What varies between runs: timestamps, client ports, latencies, the Date header. */
function normalize(text: string): string[] {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/^date: .*$/gm, 'date: <date>')
    .replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: /gm, '<time>: ')
    .replace(/([\w-]+\/[\w.-]+):\d+ \(ID:/g, '$1:<port> (ID:')
    .replace(/ (\d{3}) \d+ms \(/g, ' $1 <n>ms (')
    .replace(/\n+$/, '')
    .split('\n');
}

/** The README shows `…` for lines it leaves out: the shown lines must then appear in order. */
function matchesShown(actual: string[], shown: string[]): boolean {
  if (!shown.includes('…')) return actual.join('\n') === shown.join('\n');
  let i = 0;
  for (const line of shown) {
    if (line === '…') continue;
    while (i < actual.length && actual[i] !== line) i++;
    if (i === actual.length) return false;
    i++;
  }
  return true;
}

const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs a shell command to completion: stdout then stderr, as a terminal shows curl's. */
function sh(command: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', command], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: stdout + stderr });
    });
  });
}

/** curl's `-sS [-i] --interface IP [-X METHOD] URL` with node:http, for hosts without curl. */
function curlLike(command: string): Promise<{ code: number | null; out: string }> {
  const w = words(command);
  const opt = (name: string) => (w.includes(name) ? w[w.indexOf(name) + 1] : undefined);
  const url = new URL(w.find((x) => x.startsWith('http://')) as string);
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: opt('-X') ?? 'GET', localAddress: opt('--interface'), agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1').on('data', (c: string) => (body += c)).on('end', () => {
        let head = '';
        if (w.includes('-i')) {
          head = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\n`;
          for (let i = 0; i < res.rawHeaders.length; i += 2) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\n`;
          head += '\n';
        }
        resolve({ code: 0, out: head + body });
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ code: 56, out: e.code === 'ECONNRESET' ? 'curl: (56) Recv failure: Connection reset by peer\n' : `curl: ${e.message}\n` }));
    req.end();
  });
}

async function run(command: string): Promise<{ code: number | null; out: string }> {
  if (command.startsWith('npx l7guard ')) {
    const r = await runCli(words(command).slice(2));
    return { code: r.code, out: r.stdout + r.stderr };
  }
  if (command.startsWith('curl ')) return hasCurl ? sh(command) : curlLike(command);
  throw new Error(`the quickstart test does not know how to run: ${command}`);
}

/** A TCP connect to ip:port succeeds. */
function answers(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path: '/', agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
  });
}

const ADDRESSES = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.21', '127.0.0.31'];

const unbindable = (await Promise.all(ADDRESSES.map(async (ip) => ((await canBind(ip)) ? [] : [ip])))).flat();
const skip = unbindable.length === 0 ? false : `cannot bind ${unbindable.join(', ')}: this host does not route 127.0.0.0/8 to lo (add loopback aliases, see README)`;

t.test('README quickstart: allow, 403, drop, observe, apply, policy trace', { timeout: 90_000, skip }, async (t) => {
  process.chdir(repoRoot);
  const steps = quickstartSteps(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
  const kinds = steps.map((s) => (s.background ? 'bg:' : '') + words(s.command).slice(0, s.command.startsWith('npx') ? 3 : 1).join(' '));
  t.same(kinds, [
    'bg:node', 'bg:npx l7guard serve', 'curl', 'curl', 'curl', 'npx l7guard observe', 'npx l7guard apply', 'curl',
    'npx l7guard policy', 'npx l7guard policy',
  ], 'the README quickstart: backend, serve, three curls, observe, apply, curl, two traces');

  const children: ChildProcess[] = [];
  let served: Served | undefined;
  t.teardown(async () => {
    await served?.stop();
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  });

  const outputs: string[] = [];
  for (const step of steps) {
    if (step.background && step.command.startsWith('npx l7guard serve')) {
      served = await serve(words(step.command).slice(3)).catch((e: Error) => {
        throw new Error(`${e.message}\n(is a quickstart from the README still running on this machine?)`);
      });
      t.equal(served.admin, '127.0.0.10:9901', 'serve: admin API where the README says');
      continue;
    }
    if (step.background) {
      const p = spawn('sh', ['-c', `exec ${step.command}`], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(p);
      await untilTrue(async () => (await answers('127.0.0.11', 8080)) && (await answers('127.0.0.12', 8080)), 'the backend on both pod IPs');
      t.pass(`backend answers on 127.0.0.11:8080 and 127.0.0.12:8080: ${step.command.slice(0, 40)}…`);
      continue;
    }
    const r = await run(step.command);
    outputs.push(r.out);
    if (step.expected !== undefined) {
      const actual = normalize(r.out);
      const shown = normalize(step.expected.join('\n'));
      t.ok(matchesShown(actual, shown), `output as the README shows it: ${step.command}`, { found: actual.join('\n'), wanted: shown.join('\n') });
    }
  }

  // The outcomes themselves, whatever the README says.
  const [allowed, l7denied, dropped, observed, applied, afterApply, traceAllowed, traceDropped] = outputs as [string, string, string, string, string, string, string, string];
  t.match(allowed, /^127\.0\.0\.1[12] answered GET \/products\/42\n$/, 'client GET /products/42: forwarded to a web pod');
  t.match(l7denied, /^HTTP\/1\.1 403 Forbidden\r\n/, 'client POST /orders before apply: 403');
  t.match(l7denied, /\r\n\r\nAccess denied\r\n$/, '... with cilium-envoy\'s body');
  t.match(dropped, /Connection reset by peer/, 'intruder: connection reset, no HTTP answer');
  t.notMatch(dropped, /HTTP\/1\.1/, 'intruder: not one HTTP byte');
  t.match(observed, /shop\/client:\d+ \(ID:\d+\) -> shop\/web-\d:8080 \(ID:\d+\) http-request DROPPED \(HTTP\/1\.1 POST http:\/\/127\.0\.0\.10:8080\/orders\)/, 'observe: the L7 drop');
  t.match(observed, /shop\/intruder:\d+ \(ID:\d+\) <> shop\/web-\d:8080 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)/, 'observe: the L3/L4 drop');
  t.equal(applied.trim(), 'ciliumnetworkpolicy.cilium.io/web-orders created', 'apply: kubectl\'s line');
  t.match(afterApply, /^127\.0\.0\.1[12] answered POST \/orders\n$/, 'client POST /orders after apply: forwarded');
  t.match(traceAllowed, /\nFinal verdict: ALLOWED \(POST \/orders matches an HTTP rule\) by .*CiliumNetworkPolicy shop\/web-orders rule 0 \(spec\.ingress\[0\]\)/, 'trace names web-orders, the rule that allows POST /orders');
  t.match(traceDropped, /\nFinal verdict: DENIED at L3\/L4 \(Policy denied, INGRESS\): no rule selected this peer\n/, 'trace: the intruder is dropped at L3/L4');
  t.ok(cliPath.endsWith(join('bin', 'l7guard.js')), 'npx l7guard ran as bin/l7guard.js');
});
