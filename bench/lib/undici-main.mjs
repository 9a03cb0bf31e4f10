/**
 * The cost of Node itself: node:http server + one undici Pool per backend (`pool.stream`), round
 * robin, hop-by-hop headers stripped, no policy at all. Only meaningful where every request is
 * meant to be forwarded (allowed, bodies); the bench does not run it elsewhere.
 *
 *   node undici-main.mjs LISTEN_HOST PORT BACKEND1 BACKEND2   (backends as ip:port)
 */
import http from 'node:http';
import { Pool } from 'undici';

const [host, port, ...backends] = process.argv.slice(2);
const pools = backends.map((b) => new Pool(`http://${b}`, { connections: 256, pipelining: 1, keepAliveTimeout: 4_000 }));
let next = 0;
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

function strip(h) {
  const out = {};
  for (const k in h) if (!HOP.has(k)) out[k] = h[k];
  return out;
}

const server = http.createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0';
  pools[next++ % pools.length].stream(
    { path: req.url, method: req.method, headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    },
    (err) => {
      if (err === null) return;
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  );
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;
server.listen(Number(port), host, () => process.send?.({ type: 'listening' }));
process.on('disconnect', () => process.exit(0));
