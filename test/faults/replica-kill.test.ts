// "A replica killed under load costs at most the requests in flight on it." Steady load — 2,000
// requests over 50 keep-alive connections from tiefighter's address, allowed landings mixed with
// L7-denied PUT /v1/exhaust-port and GET /v1 — while one deathstar replica (a real child process,
// the demo's mimic) is SIGKILLed mid-run. Asserted: every request got its correct answer, or failed
// while it was in flight on the killed replica (the proxy's flow names that replica; at most one per
// connection); nothing sent after the kill was seen fails; no request was sent twice; and no denied
// request ever reached a replica (a PUT that did would also have made deathstar explode).
import t from 'tap';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loopbackBlock } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir, deathstarPolicy } from '../helpers/cluster.js';

const DEATHSTAR_MAIN = fileURLToPath(new URL('../../demo/deathstar-main.js', import.meta.url));
const HOST = 'deathstar.default.svc.cluster.local';
const PORT = 18701;
const TOTAL = 2000;
const CONNECTIONS = 50;
const KILL_AFTER = 600; // completed requests before the kill
const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };

const policy = deathstarPolicy(PORT, [{ method: 'POST', path: '/v1/request-landing(\\?id=[0-9]+)?' }]);

interface Hit { method: string; path: string }
interface Replica { proc: ChildProcess; hits: Hit[]; exited: Promise<unknown> }

async function replica(host: string, name: string): Promise<Replica> {
  const proc = spawn(process.execPath, [DEATHSTAR_MAIN, '--listen', `${host}:${PORT}`, '--hostname', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hits: Hit[] = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      hits.push(JSON.parse(buf.slice(0, nl)) as Hit);
      buf = buf.slice(nl + 1);
    }
  });
  const exited = once(proc, 'exit');
  let err = '';
  proc.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (s: string) => {
      err += s;
      if (err.includes('Serving deathstar at')) resolve();
    });
    proc.once('exit', () => reject(new Error(`deathstar ${name} exited: ${err}`)));
  });
  return { proc, hits, exited };
}

type Kind = 'land' | 'put' | 'get';
interface Outcome { id: number; kind: Kind; sentAt: number; doneAt: number; status: number; body: string }

function requestFor(id: number): { kind: Kind; bytes: string } {
  const kind: Kind = id % 5 === 3 ? 'put' : id % 5 === 4 ? 'get' : 'land';
  const line = kind === 'land' ? `POST /v1/request-landing?id=${id}` : kind === 'put' ? `PUT /v1/exhaust-port?id=${id}` : `GET /v1?id=${id}`;
  const body = kind === 'land' ? 'ship=tiefighter' : '';
  return { kind, bytes: `${line} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}` };
}

/** One keep-alive client connection from tiefighter; reconnects after the proxy closes it. */
class Conn {
  #sock: net.Socket | undefined;
  #buf = Buffer.alloc(0);
  #waiter: ((r: { status: number; body: string; close: boolean }) => void) | undefined;
  constructor(readonly host: string, readonly port: number) {}

  async #connect(): Promise<net.Socket> {
    const sock = net.connect({ host: this.host, port: this.port, localAddress: ips.tiefighter });
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#parse();
    });
    sock.on('close', () => {
      if (this.#sock === sock) this.#sock = undefined;
      const w = this.#waiter;
      this.#waiter = undefined;
      w?.({ status: 0, body: '', close: true });
    });
    await once(sock, 'connect');
    return sock;
  }

  #parse(): void {
    const text = this.#buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const cl = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end + 2));
    const len = cl === null ? 0 : Number(cl[1]);
    if (this.#buf.length < end + 4 + len) return;
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    const body = text.slice(end + 4, end + 4 + len);
    const close = /\r\nconnection: *close/i.test(text.slice(0, end + 2));
    this.#buf = this.#buf.subarray(end + 4 + len);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ status, body, close });
  }

  async send(bytes: string): Promise<{ status: number; body: string }> {
    this.#sock ??= await this.#connect();
    this.#buf = Buffer.alloc(0);
    const sock = this.#sock;
    const answer = new Promise<{ status: number; body: string; close: boolean }>((resolve) => (this.#waiter = resolve));
    sock.write(bytes);
    const r = await answer;
    if (r.close) {
      if (this.#sock === sock) this.#sock = undefined;
      sock.destroy();
    }
    return r;
  }

  close(): void {
    this.#sock?.destroy();
  }
}

t.test('a replica SIGKILLed under load costs at most the requests in flight on it', async (t) => {
  const victim = await replica(ips.deathstar[0], 'deathstar-8c4c77fb7-b9qmw');
  const survivor = await replica(ips.deathstar[1], 'deathstar-8c4c77fb7-vhj8x');
  t.teardown(() => { victim.proc.kill('SIGKILL'); survivor.proc.kill('SIGKILL'); });
  const dir = clusterDir(starWarsCluster(ips, PORT), { '10-policy.yaml': policy });
  const flowsFile = join(dir, 'flows.ndjson');
  const s = await serve(['-f', dir, '--listen', `${ip(1)}:0`, '--admin', `${ip(1)}:0`, '--flows', flowsFile]);
  t.teardown(() => s.stop());

  const outcomes: Outcome[] = [];
  let next = 0;
  let killAt = Infinity;
  let exitSeenAt = Infinity;
  let inFlightAtKill = 0;
  let inFlight = 0;
  const conns = Array.from({ length: CONNECTIONS }, () => new Conn(s.host, s.port));
  const worker = async (c: Conn): Promise<void> => {
    for (;;) {
      const id = next++;
      if (id >= TOTAL) return;
      const { kind, bytes } = requestFor(id);
      const sentAt = performance.now();
      inFlight++;
      const r = await c.send(bytes);
      inFlight--;
      outcomes.push({ id, kind, sentAt, doneAt: performance.now(), status: r.status, body: r.body });
      if (outcomes.length === KILL_AFTER) {
        killAt = performance.now();
        inFlightAtKill = inFlight;
        victim.proc.kill('SIGKILL');
        void victim.exited.then(() => (exitSeenAt = performance.now()));
      }
    }
  };
  await Promise.all(conns.map(worker));
  conns.forEach((c) => c.close());
  await victim.exited;

  t.equal(outcomes.length, TOTAL, 'every request got an outcome');
  t.ok(Number.isFinite(killAt) && Number.isFinite(exitSeenAt), 'the replica was killed mid-run');
  const correct = (o: Outcome): boolean =>
    o.kind === 'land' ? o.status === 200 && o.body === 'Ship landed\n' : o.status === 403 && o.body === 'Access denied\r\n';
  const failed = outcomes.filter((o) => !correct(o));
  t.ok(failed.every((o) => o.kind === 'land'), 'a denied request never failed: it never touches a replica');
  t.ok(failed.every((o) => o.sentAt < exitSeenAt && o.doneAt >= killAt), 'every failure was a request in flight when the replica died');
  t.equal(failed.filter((o) => o.sentAt >= exitSeenAt).length, 0, 'zero failures among requests sent after the kill was seen');
  // Until the proxy reads the dying replica's resets, a request may still be written to it: those
  // sent between the kill and its exit count as in flight on it too (the check above bounds them).
  const sentWhileDying = outcomes.filter((o) => o.kind === 'land' && o.sentAt >= killAt && o.sentAt < exitSeenAt).length;
  t.ok(
    failed.length <= inFlightAtKill + sentWhileDying,
    `${failed.length} failed ≤ ${inFlightAtKill} in flight at the kill + ${sentWhileDying} sent before its exit was seen (≤ ${CONNECTIONS} connections)`,
  );
  t.ok(failed.every((o) => o.status === 502 || o.status === 503 || o.status === 0), 'failures are 502/503 or a close, never a wrong answer');
  t.ok(outcomes.filter((o) => o.sentAt >= exitSeenAt).length > 100, 'and plenty of load ran after it');

  // The proxy's own record: each failure was an upstream error on the killed replica (a response
  // flow is a reply: its source is the pod).
  const flows = readFileSync(flowsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { flow?: { verdict?: string; IP?: { source?: string }; l7?: { http?: { url?: string } } } });
  const errorOn = new Map<number, string>();
  for (const f of flows) {
    const url = f.flow?.l7?.http?.url;
    const m = url === undefined ? null : /[?&]id=(\d+)/.exec(url);
    if (f.flow?.verdict === 'ERROR' && m !== null) errorOn.set(Number(m[1]), f.flow.IP?.source ?? '');
  }
  for (const o of failed.filter((x) => x.status !== 0)) {
    t.equal(errorOn.get(o.id), ips.deathstar[0], `request ${o.id} (${o.status}) failed on the killed replica`);
  }

  const hits = [...victim.hits, ...survivor.hits];
  t.equal(hits.filter((h) => h.method !== 'POST').length, 0, 'no denied request (PUT exhaust-port, GET /v1) reached a replica');
  t.equal(survivor.proc.exitCode, null, 'the surviving deathstar did not explode');
  const ids = hits.map((h) => Number(/id=(\d+)/.exec(h.path)?.[1]));
  t.equal(new Set(ids).size, ids.length, 'no request reached a replica twice');
  const landed = outcomes.filter((o) => o.kind === 'land' && correct(o)).length;
  t.ok(hits.length >= landed && hits.length <= landed + failed.length, 'every landing answered 200 really reached a replica');
  t.equal(s.proc.exitCode, null, 'the proxy is still running');
});
