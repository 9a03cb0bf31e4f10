/**
 * What a Node user writes by hand: node:http + http-proxy 1.18 with a keep-alive agent, and the
 * Star Wars policy as three `if`s. Connections from anyone but tiefighter are destroyed on accept
 * (HAProxy's `tcp-request connection reject`); tiefighter gets 403 `Access denied` for anything
 * but `POST /v1/request-landing`; the rest is forwarded round robin to the two deathstars.
 *
 *   node http-proxy-main.mjs LISTEN_HOST PORT TIEFIGHTER_IP BACKEND1 BACKEND2   (backends as ip:port)
 */
import http from 'node:http';
import httpProxy from 'http-proxy';

const [host, port, tiefighter, ...backends] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if (res.headersSent) res.destroy();
  else res.writeHead(502).end();
});
const targets = backends.map((b) => `http://${b}`);
let next = 0;
const DENIED = Buffer.from('Access denied');

const server = http.createServer((req, res) => {
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  if (req.method !== 'POST' || path !== '/v1/request-landing') {
    res.writeHead(403, { 'content-type': 'text/plain', 'content-length': DENIED.length });
    res.end(DENIED);
    return;
  }
  proxy.web(req, res, { target: targets[next++ % targets.length] });
});
server.on('connection', (socket) => {
  if (socket.remoteAddress !== tiefighter) socket.destroy();
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;
server.listen(Number(port), host, () => process.send?.({ type: 'listening' }));
process.on('disconnect', () => process.exit(0));
