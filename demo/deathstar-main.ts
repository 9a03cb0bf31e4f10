/**
 * Child-process entry of the deathstar mimic:
 *
 *   node dist/demo/deathstar-main.js --listen IP:PORT --hostname NAME [--die-with-parent]
 *
 * stdout: one JSON line per received request, `{"method","path","host","from"}`, written synchronously
 *         before the request is answered, so a client that got its answer can rely on the line existing.
 * stderr: go-swagger's "Serving deathstar at ..." line once listening; the Go panic text before dying.
 * Exit:   2 about 2 s after a `PUT /v1/exhaust-port` (the real image crashes there); 1 on a listen error.
 */
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createDeathstar, PANIC_EXIT_CODE, PANIC_STDERR } from './deathstar.js';

function fail(msg: string): never {
  process.stderr.write(`deathstar: ${msg}\n`);
  process.exit(1);
}

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    hostname: { type: 'string' },
    'die-with-parent': { type: 'boolean', default: false },
  },
  strict: true,
});

const listen = values.listen ?? fail('--listen IP:PORT is required');
const colon = listen.lastIndexOf(':');
const host = colon > 0 ? listen.slice(0, colon).replace(/^\[|\]$/g, '') : fail(`bad --listen ${listen}`);
const port = Number(listen.slice(colon + 1));
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port in --listen ${listen}`);
const hostname = values.hostname ?? fail('--hostname NAME is required');

const server = createDeathstar({
  hostname,
  onRequest: (hit) => {
    writeSync(1, JSON.stringify({ method: hit.method, path: hit.path, host: hit.host, from: hit.from }) + '\n');
  },
  onExplode: () => {
    writeSync(2, PANIC_STDERR);
    process.exit(PANIC_EXIT_CODE);
  },
});

server.on('error', (err) => fail(`listen ${listen}: ${err.message}`));
server.listen(port, host, () => {
  const addr = server.address();
  const where = typeof addr === 'object' && addr !== null ? `${addr.address}:${addr.port}` : listen;
  process.stderr.write(`Serving deathstar at http://${where}\n`);
});

// Like a container whose runtime went away: when the demo dies, so do its pods.
if (values['die-with-parent']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
