/**
 * The floor of a Node forwarder: node:net both ways, one upstream connection per client connection
 * (round robin at connect), the request head rewritten with one added field and the response passed
 * through as read. It parses only what framing needs (the end of each head and its Content-Length),
 * checks nothing, and enforces no policy: what any HTTP proxy written in Node pays before doing its
 * job. Its CPU per request against HAProxy's says how much of l7guard's cost is Node's and how much
 * is l7guard's own (docs/benchmarks.md). Mode `stream` reads with 'data' events; `onread` reads
 * into one reused buffer (Node's `onread` option), as l7guard does.
 *
 *   node node-floor-main.mjs MODE LISTEN_HOST PORT BACKEND1 BACKEND2   (backends as ip:port)
 */
import net from 'node:net';

const [mode, host, port, ...backends] = process.argv.slice(2);
const SHARED = Buffer.allocUnsafe(64 * 1024);
const CRLF2 = Buffer.from('\r\n\r\n');
let next = 0;

/** Content-Length of a head (latin1 string), 0 when absent. */
function contentLength(head) {
  const i = head.toLowerCase().indexOf('\r\ncontent-length:');
  return i < 0 ? 0 : parseInt(head.slice(i + 17, head.indexOf('\r\n', i + 17)), 10);
}

/**
 * A stream of HTTP/1.1 messages (requests or responses) read in pieces: `onHead(head)` returns the
 * bytes to forward for that head; body bytes are forwarded as they are. Keeps a partial head only.
 */
function framer(forward, onHead) {
  let pending = null;
  let body = 0;
  return (buf) => {
    if (pending !== null) {
      buf = Buffer.concat([pending, buf]);
      pending = null;
    }
    let p = 0;
    while (p < buf.length) {
      if (body > 0) {
        const n = Math.min(body, buf.length - p);
        forward(buf.subarray(p, p + n));
        body -= n;
        p += n;
        continue;
      }
      const end = buf.indexOf(CRLF2, p);
      if (end < 0) {
        pending = Buffer.from(buf.subarray(p));
        return;
      }
      const head = buf.latin1Slice(p, end + 4);
      forward(onHead(head));
      body = contentLength(head);
      p = end + 4;
    }
  };
}

const server = net.createServer({ noDelay: true }, (client) => {
  const [bhost, bport] = backends[next++ % backends.length].split(':');
  const copy = mode === 'onread' ? (b) => Buffer.from(b) : (b) => b;
  const toClient = framer((b) => client.write(typeof b === 'string' ? b : copy(b)), (head) => head);
  const upstream = net.connect({
    host: bhost, port: Number(bport), noDelay: true,
    ...(mode === 'onread' ? { onread: { buffer: SHARED, callback: (n, b) => { toClient(b.subarray(0, n)); return true; } } } : {}),
  });
  const toUpstream = framer((b) => upstream.write(typeof b === 'string' ? b : copy(b)), (head) => `${head.slice(0, -2)}x-forwarded-for: ${client.remoteAddress}\r\n\r\n`);
  if (mode !== 'onread') upstream.on('data', toClient);
  client.on('data', toUpstream);
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  client.on('close', () => upstream.destroy());
});
server.listen(Number(port), host, () => process.send?.({ type: 'listening' }));
process.on('disconnect', () => process.exit(0));
