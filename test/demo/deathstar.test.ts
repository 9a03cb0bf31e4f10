import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { sendShipRequest, type ShipResult } from '../../demo/client.js';
import { infoBody, LANDED_BODY, PANIC_BODY } from '../../demo/deathstar.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'demo', 'deathstar-main.js');
const HOSTNAME = 'deathstar-5d7dd7c4d5-lpkxx';

interface Running {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
}

async function startDeathstar(t: Test): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, '--listen', '127.0.0.1:0', '--hostname', HOSTNAME], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  t.teardown(() => { child.kill('SIGKILL'); });
  const deadline = Date.now() + 5000;
  while (!/Serving deathstar at http:\/\/127\.0\.0\.1:(\d+)/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`deathstar did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(err)![1]);
  return { child, port, stdout: () => out, stderr: () => err };
}

function req(port: number, method: string, path: string): Promise<ShipResult> {
  return sendShipRequest({
    localAddress: '127.0.0.1', ip: '127.0.0.1', port, host: 'deathstar.default.svc.cluster.local', method, path, timeoutMs: 3000,
  });
}

function header(r: ShipResult, name: string): string | undefined {
  return r.kind === 'response' ? r.headers.find(([k]) => k.toLowerCase() === name)?.[1] : undefined;
}

function body(r: ShipResult): string {
  return r.kind === 'response' ? r.body.toString('utf8') : `<${r.kind}>`;
}

function status(r: ShipResult): number {
  return r.kind === 'response' ? r.status : -1;
}

t.test('the swagger table of quay.io/cilium/starwars (cilium/starwars-docker)', async (t) => {
  const d = await startDeathstar(t);
  const rows: { method: string; path: string; status: number; type: string; body: string; allow?: string }[] = [
    { method: 'POST', path: '/v1/request-landing', status: 200, type: 'text/plain', body: 'Ship landed\n' },
    { method: 'POST', path: '/v1/request-landing?x=1', status: 200, type: 'text/plain', body: 'Ship landed\n' },
    { method: 'GET', path: '/v1', status: 200, type: 'text/plain', body: infoBody(HOSTNAME) },
    { method: 'GET', path: '/v1/?q', status: 200, type: 'text/plain', body: infoBody(HOSTNAME) },
    { method: 'GET', path: '/v1/healthz', status: 404, type: 'application/json', body: '{"code":404,"message":"path /v1/healthz was not found"}' },
    { method: 'PUT', path: '/v1/cargobay', status: 404, type: 'application/json', body: '{"code":404,"message":"path /v1/cargobay was not found"}' },
    { method: 'GET', path: '/v1/xyz?a=b', status: 404, type: 'application/json', body: '{"code":404,"message":"path /v1/xyz was not found"}' },
    { method: 'GET', path: '/v1/request-landing', status: 405, type: 'application/json', body: '{"code":405,"message":"method GET is not allowed, but [POST] are"}', allow: 'POST' },
    { method: 'POST', path: '/v1/exhaust-port', status: 405, type: 'application/json', body: '{"code":405,"message":"method POST is not allowed, but [PUT] are"}', allow: 'PUT' },
  ];
  for (const row of rows) {
    const r = await req(d.port, row.method, row.path);
    t.equal(status(r), row.status, `${row.method} ${row.path} status`);
    t.equal(body(r), row.body, `${row.method} ${row.path} body`);
    t.equal(header(r, 'content-type'), row.type, `${row.method} ${row.path} content-type`);
    t.equal(header(r, 'content-length'), String(Buffer.byteLength(row.body)), `${row.method} ${row.path} content-length`);
    if (row.allow !== undefined) t.equal(header(r, 'allow'), row.allow, `${row.method} ${row.path} Allow`);
  }
  t.equal(LANDED_BODY, 'Ship landed\n');
  const info = infoBody(HOSTNAME);
  t.match(info, /^\{\n\t"name": "Death Star",\n\t"hostname": "deathstar-5d7dd7c4d5-lpkxx",\n/);
  t.match(info, /\t"api": \[\n\t\t"GET {3}\/v1",\n/);
  t.match(info, /\t\t"PUT {3}\/v1\/exhaust-port"\n\t\]\n\}\n$/);

  await new Promise((r) => setTimeout(r, 50));
  const logged = d.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(logged.length, rows.length, 'one stdout JSON line per request');
  t.same(Object.keys(logged[0]!).sort(), ['from', 'host', 'method', 'path']);
  t.match(logged[1], { method: 'POST', path: '/v1/request-landing?x=1', host: 'deathstar.default.svc.cluster.local', from: /^127\.0\.0\.1:\d+$/ });
  t.equal(d.child.exitCode, null, 'still running: nothing here makes it crash');
});

t.test('PUT /v1/exhaust-port: 503 with the exact backtrace, then the process dies ~2 s later', async (t) => {
  const d = await startDeathstar(t);
  const exited = once(d.child, 'exit');
  const before = Date.now();
  const r = await req(d.port, 'PUT', '/v1/exhaust-port');
  t.equal(status(r), 503);
  t.ok(r.kind === 'response' && r.body.equals(Buffer.from(
    'Panic: deathstar exploded\n\ngoroutine 1 [running]:\nmain.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)\n' +
    '        /code/src/github.com/empire/deathstar/\n        temp/main.go:9 +0x64\nmain.main()\n' +
    '        /code/src/github.com/empire/deathstar/\n        temp/main.go:5 +0x85\n')), 'exact panic body bytes');
  t.equal(body(r), PANIC_BODY);
  t.equal(header(r, 'content-type'), 'text/plain');
  // Still serving until the goroutine wakes up.
  t.equal(body(await req(d.port, 'POST', '/v1/request-landing')), 'Ship landed\n', 'serves during the 2 s fuse');
  const [code] = (await exited) as [number | null];
  const after = Date.now() - before;
  t.equal(code, 2, 'exit status of an unrecovered Go panic');
  t.ok(after >= 1900, `died ${after} ms after the request, not before the 2 s fuse`);
  t.match(d.stderr(), /^panic: deathstar exploded$/m);
  t.equal((await req(d.port, 'POST', '/v1/request-landing')).kind, 'refused', 'nothing listens any more');
});

t.test('bad arguments exit 1 with a message', async (t) => {
  const child = spawn(process.execPath, [MAIN, '--hostname', 'x'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 1);
  t.match(err, /--listen IP:PORT is required/);
});
