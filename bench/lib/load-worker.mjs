/**
 * Closed-loop keep-alive load generator (one worker thread, in the style of httpxy's
 * bench/_load-worker.ts). Each connection binds its own source address (`localAddress`) — that is
 * how a request gets its Cilium identity — and cycles through its request kinds, one request in
 * flight at a time. Every answer is classified (landed on a backend, 403 Access denied, or a drop:
 * the connection closed before any byte), so a target that does less is seen doing less.
 *
 * workerData: { mode: 'load', endpoints: [{host, port}], kinds: [{buf, expect}], conns: [{localAddress, cycle}] }
 *             { mode: 'idle', endpoints, kinds, count, localAddress, batch }
 * messages in: 'record' (start counting), 'stop' (report and exit)
 * messages out: { type: 'result', ... } | { type: 'idle-ready', open, failed }
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { classify, DROP, parseResponse } from './http-response.mjs';

const { mode, endpoints, kinds } = workerData;
const TIMEOUT_MS = 10_000;
const MAX_SAMPLES = 4_000_000;

let recording = false;
let stopping = false;
const latencies = new Float64Array(MAX_SAMPLES);
let samples = 0;
const counts = {
  completed: 0, // answered as expected, or dropped as expected
  ok2xx: 0,
  non2xxExpected: 0,
  non2xxUnexpected: 0,
  wrongBody: 0, // a 2xx that is not the backend's answer, or a 2xx where a deny was expected
  dropsExpected: 0,
  errors: 0, // drops, resets and timeouts where an answer was expected
  byOutcome: {},
};

function account(kind, outcome, ms) {
  if (!recording) return;
  counts.byOutcome[outcome] = (counts.byOutcome[outcome] ?? 0) + 1;
  const ok = outcome === kind.expect;
  if (outcome === DROP) {
    if (ok) counts.dropsExpected++;
    else counts.errors++;
  } else if (outcome === 'landed') {
    if (ok) counts.ok2xx++;
    else counts.wrongBody++;
  } else if (outcome === 'denied') {
    if (ok) counts.non2xxExpected++;
    else counts.non2xxUnexpected++;
  } else if (outcome === 'timeout') {
    counts.errors++;
  } else {
    const status = Number(outcome.slice(6));
    if (status >= 200 && status < 300) counts.wrongBody++;
    else counts.non2xxUnexpected++;
  }
  if (ok) {
    counts.completed++;
    if (samples < MAX_SAMPLES) latencies[samples++] = ms;
  }
}

class Conn {
  constructor(endpoint, localAddress, cycle) {
    this.endpoint = endpoint;
    this.localAddress = localAddress;
    this.cycle = cycle;
    this.i = 0;
    this.kind = undefined;
    this.t0 = 0;
    this.acc = null;
    this.socket = null;
    this.connect();
  }

  connect() {
    if (stopping) return;
    const s = net.connect({ host: this.endpoint.host, port: this.endpoint.port, localAddress: this.localAddress });
    s.setNoDelay(true);
    s.on('data', (chunk) => this.onData(s, chunk));
    s.on('error', () => {});
    s.on('close', () => this.onClose(s));
    this.socket = s;
    this.send();
  }

  send() {
    this.kind = kinds[this.cycle[this.i++ % this.cycle.length]];
    this.acc = null;
    this.t0 = performance.now();
    this.socket.write(this.kind.buf);
  }

  onData(s, chunk) {
    if (s !== this.socket) return;
    this.acc = this.acc === null ? chunk : Buffer.concat([this.acc, chunk]);
    const r = parseResponse(this.acc);
    if (r === null) return;
    account(this.kind, classify(this.acc, r), performance.now() - this.t0);
    if (r.close || r.end < this.acc.length) {
      // Either the server said so, or it sent more than one answer: start afresh.
      this.socket = null;
      s.destroy();
      this.connect();
      return;
    }
    this.send();
  }

  onClose(s) {
    if (s !== this.socket) return;
    this.socket = null;
    if (stopping) return;
    if (this.acc === null) account(this.kind, DROP, performance.now() - this.t0);
    else {
      // A close-delimited body, or a response cut short.
      const r = parseResponse(this.acc);
      account(this.kind, r === null ? `other:${this.acc.length > 12 ? (this.acc[9] - 48) * 100 + (this.acc[10] - 48) * 10 + (this.acc[11] - 48) : 0}` : classify(this.acc, r), performance.now() - this.t0);
    }
    this.connect();
  }

  checkTimeout(now) {
    if (this.socket !== null && now - this.t0 > TIMEOUT_MS) {
      account(this.kind, 'timeout', now - this.t0);
      const s = this.socket;
      this.socket = null;
      s.destroy();
      this.connect();
    }
  }

  stop() {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }
}

function runLoad() {
  const conns = workerData.conns.map((c, i) => new Conn(endpoints[i % endpoints.length], c.localAddress, c.cycle));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const c of conns) c.checkTimeout(now);
  }, 1000);
  let t0 = 0;
  parentPort.on('message', (m) => {
    if (m === 'record') {
      recording = true;
      t0 = performance.now();
    } else if (m === 'stop') {
      const elapsedMs = performance.now() - t0;
      recording = false;
      stopping = true;
      clearInterval(timer);
      for (const c of conns) c.stop();
      const lat = latencies.slice(0, samples);
      parentPort.postMessage({ type: 'result', elapsedMs, counts, latencies: lat }, [lat.buffer]);
      setImmediate(() => process.exit(0));
    }
  });
}

/** Opens `count` keep-alive connections, one answered request each, then holds them idle. */
async function runIdle() {
  const { count, localAddress, batch } = workerData;
  const kind = kinds[0];
  const sockets = [];
  let failed = 0;
  const one = (endpoint) =>
    new Promise((resolve) => {
      const s = net.connect({ host: endpoint.host, port: endpoint.port, localAddress });
      let acc = null;
      const t = setTimeout(() => done(false), TIMEOUT_MS);
      let settled = false;
      const done = (ok) => {
        if (settled) return;
        settled = true;
        clearTimeout(t);
        s.removeAllListeners('data');
        if (ok) sockets.push(s);
        else {
          failed++;
          s.destroy();
        }
        resolve();
      };
      s.on('error', () => {});
      s.on('close', () => done(false));
      s.on('data', (chunk) => {
        acc = acc === null ? chunk : Buffer.concat([acc, chunk]);
        const r = parseResponse(acc);
        if (r !== null) done(classify(acc, r) === kind.expect && !r.close);
      });
      s.write(kind.buf);
    });
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    await Promise.all(Array.from({ length: n }, (_, j) => one(endpoints[(i + j) % endpoints.length])));
  }
  let open = 0;
  for (const s of sockets) if (!s.destroyed) open++;
  parentPort.postMessage({ type: 'idle-ready', open, failed });
  parentPort.on('message', (m) => {
    if (m === 'stop') {
      let still = 0;
      for (const s of sockets) {
        if (!s.destroyed) still++;
        s.destroy();
      }
      parentPort.postMessage({ type: 'idle-result', stillOpen: still });
      setImmediate(() => process.exit(0));
    }
  });
}

if (mode === 'idle') void runIdle();
else runLoad();
