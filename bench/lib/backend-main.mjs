/**
 * A bench backend: the demo's deathstar mimic (dist/demo/deathstar.js), counting what reaches it
 * instead of logging it, and never exploding (a forwarded `PUT /v1/exhaust-port` is counted as the
 * failure it is). The parent asks for counts over IPC: `{ type: 'stats' }` -> `{ type: 'stats', hits }`.
 *
 *   node backend-main.mjs HOST PORT NAME
 */
import { createDeathstar } from '../../dist/demo/deathstar.js';

const [host, port, name] = process.argv.slice(2);
/** "METHOD /path" -> count. */
const hits = Object.create(null);
const server = createDeathstar({
  hostname: name,
  onRequest(hit) {
    const key = `${hit.method} ${hit.path}`;
    hits[key] = (hits[key] ?? 0) + 1;
  },
  onExplode() {},
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.on('error', (err) => {
  process.stderr.write(`backend ${name}: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(port), host, () => process.send?.({ type: 'listening' }));
process.on('message', (m) => {
  if (m?.type === 'stats') process.send?.({ type: 'stats', hits: { ...hits } });
});
process.on('disconnect', () => process.exit(0));
