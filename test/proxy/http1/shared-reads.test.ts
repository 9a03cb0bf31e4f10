// Every socket of `l7guard serve` (clients and pods) reads into one shared buffer
// (proxy/http1/shared-reads.ts). Bytes kept past a read (a partial head, pipelined requests, body
// bytes under backpressure, a partial chunk-size line of a response) must be copied before the next
// read of any socket overwrites them. Many clients at once, each sending pipelined requests in
// random pieces, to pods that echo the body back in pieces: every body must come back byte-exact,
// in order, and reach the pod byte-exact.
import t from 'tap';
import net from 'node:net';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { guarded, HOST } from '../../security/harness.js';
import { deathstarPolicy } from '../../../fixtures/star-wars.js';
import { ServerConnection } from '../../../proxy/http1/server-connection.js';

const PORT = 18131;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads `count` responses off a socket: status and body (content-length or chunked). */
function readResponses(sock: net.Socket, count: number): Promise<{ status: number; body: Buffer }[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: { status: number; body: Buffer }[] = [];
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const status = Number(head.slice(9, 12));
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        let body: Buffer;
        let used: number;
        if (cl !== null) {
          const n = Number(cl[1]);
          if (buf.length < end + 4 + n) return;
          body = buf.subarray(end + 4, end + 4 + n);
          used = end + 4 + n;
        } else {
          // chunked
          const parts: Buffer[] = [];
          let p = end + 4;
          for (;;) {
            const lf = buf.indexOf('\r\n', p);
            if (lf < 0) return;
            const size = parseInt(buf.toString('latin1', p, lf), 16);
            if (buf.length < lf + 2 + size + 2) return;
            if (size === 0) {
              used = lf + 4;
              break;
            }
            parts.push(buf.subarray(lf + 2, lf + 2 + size));
            p = lf + 2 + size + 2;
          }
          body = Buffer.concat(parts);
        }
        out.push({ status, body: Buffer.from(body) });
        buf = buf.subarray(used);
        if (out.length === count) {
          resolve(out);
          return;
        }
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed after ${out.length} of ${count} responses`)));
  });
}

t.test('bodies survive the shared read buffer: concurrent clients, pipelined, split, echoed in pieces', async (t) => {
  const g = await guarded(t, {
    port: PORT,
    policy: deathstarPolicy(PORT, [{ method: 'POST', path: '/echo/.*' }], 'echo'),
    respond: (r, res) => {
      // Echo in pieces: chunked (no length) or with a length, each piece a separate write after a pause,
      // so the proxy reads responses in parts, partial chunk-size lines included.
      const chunked = r.body.length % 2 === 0;
      res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-length': r.body.length });
      const pieces: Buffer[] = [];
      for (let p = 0; p < r.body.length; ) {
        const n = Math.min(r.body.length - p, 1 + randomInt(70_000));
        pieces.push(r.body.subarray(p, p + n));
        p += n;
      }
      const next = (): void => {
        const piece = pieces.shift();
        if (piece === undefined) {
          res.end();
          return;
        }
        res.write(piece);
        setTimeout(next, randomInt(3));
      };
      next();
    },
  });
  const CLIENTS = 24;
  const PER_CLIENT = 5;
  const sent = new Map<string, number>();
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const bodies = Array.from({ length: PER_CLIENT }, (_, i) => randomBytes([0, 1, 37, 1000, 20_000, 200_000][(c + i) % 6]!));
      for (const b of bodies) sent.set(sha(b), (sent.get(sha(b)) ?? 0) + 1);
      const wire = Buffer.concat(
        bodies.map((b, i) =>
          Buffer.concat([Buffer.from(`POST /echo/${c}/${i} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${b.length}\r\n\r\n`, 'latin1'), b]),
        ),
      );
      const sock = net.connect({ host: g.s.host, port: g.s.port, localAddress: g.ips.tiefighter });
      await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
      const answers = readResponses(sock, PER_CLIENT);
      // The pipelined stream in random pieces (a head cut anywhere, bodies split across reads).
      for (let p = 0; p < wire.length; ) {
        const n = Math.min(wire.length - p, 1 + randomInt(30_000));
        sock.write(wire.subarray(p, p + n));
        p += n;
        if (randomInt(3) === 0) await sleep(randomInt(3));
      }
      const got = await answers;
      sock.destroy();
      got.forEach((r, i) => {
        if (r.status !== 200) failures.push(`client ${c} request ${i}: status ${r.status}`);
        else if (!r.body.equals(bodies[i]!)) failures.push(`client ${c} request ${i}: echoed body differs (${r.body.length} of ${bodies[i]!.length} bytes)`);
      });
    }),
  );
  t.same(failures, [], `${CLIENTS * PER_CLIENT} echoes byte-exact and in order`);
  const reached = new Map<string, number>();
  for (const r of g.journal) reached.set(sha(r.body), (reached.get(sha(r.body)) ?? 0) + 1);
  t.same(reached, sent, 'every body reached a pod byte-exact, once');
});

t.test('a client that does not read while its response arrives still gets it byte-exact', async (t) => {
  // The proxy's writes to this client queue in memory instead of reaching the kernel: what they
  // hold must be bytes of their own, not views of the read buffer the pod's next read overwrites.
  const g = await guarded(t, {
    port: PORT + 1,
    policy: deathstarPolicy(PORT + 1, [{ method: 'POST', path: '/echo/.*' }], 'echo'),
    respond: (r, res) => {
      res.writeHead(200, { 'content-length': r.body.length });
      res.end(r.body);
    },
  });
  const body = randomBytes(12 * 1024 * 1024);
  const sock = net.connect({ host: g.s.host, port: g.s.port, localAddress: g.ips.tiefighter });
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const answer = readResponses(sock, 1);
  sock.pause();
  sock.write(`POST /echo/slow HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n`);
  sock.write(body);
  await sleep(500);
  // Meanwhile other connections read into the same buffer.
  const other = net.connect({ host: g.s.host, port: g.s.port, localAddress: g.ips.tiefighter });
  await new Promise<void>((resolve, reject) => other.once('connect', resolve).once('error', reject));
  const filler = randomBytes(60_000);
  const others = readResponses(other, 20);
  for (let i = 0; i < 20; i++) other.write(Buffer.concat([Buffer.from(`POST /echo/other HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${filler.length}\r\n\r\n`), filler]));
  const fillers = await others;
  other.destroy();
  t.ok(fillers.every((f) => f.body.equals(filler)), 'the other connection\'s echoes are byte-exact');
  sock.resume();
  const [r] = await answer;
  sock.destroy();
  t.equal(r?.status, 200);
  t.ok(r?.body.equals(body), `the ${body.length}-byte echo is byte-exact`);
});

t.test('an accepted socket moved to shared reads still counts as the server\'s connection', async (t) => {
  const seen: Buffer[] = [];
  const server = net.createServer((socket) => {
    const adopted = ServerConnection.adoptSharedReads(socket);
    t.not(adopted, socket, 'a fresh plain TCP socket is re-wrapped');
    adopted.on('error', () => undefined);
    // Without a ServerConnection the socket is detached: reads reach its own stream as copies.
    (adopted as net.Socket & { [k: symbol]: unknown })[Object.getOwnPropertySymbols(adopted).find((s) => s.description === 'l7guard.connection') ?? Symbol('none')] = undefined;
    adopted.on('data', (c: Buffer) => {
      seen.push(c);
      adopted.end('bye');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ host: '127.0.0.1', port });
  client.end('hello');
  const reply = await new Promise<string>((resolve) => {
    let s = '';
    client.on('data', (c) => (s += c.toString()));
    client.on('close', () => resolve(s));
  });
  t.equal(reply, 'bye', 'the moved socket writes');
  t.equal(Buffer.concat(seen).toString(), 'hello', 'and reads');
  const count = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  t.equal(count, 0, 'closing it counted the server connection down');
  await new Promise<void>((r) => server.close(() => r()));
});
