/**
 * A KubeApiServer in its own process, driven over stdin, for end-to-end tests and benchmarks that
 * run the client under test elsewhere:
 *
 *   node dist/test/helpers/kube-api-server-main.js --port 0 [--host H] [--token TOKEN=USER ...]
 *     [--role RBAC.yaml] [--tls-cert F --tls-key F] [--expired-as event|status]
 *     [--bookmark-interval-ms N] [-f OBJECTS.yaml ...]
 *
 * Prints {"url": "..."} on stdout once listening (after applying the -f files). Then reads one JSON
 * command a line on stdin and answers each with one JSON line, {"ok": true, "resourceVersion": "N", ...}
 * or {"ok": false, "error": "..."}:
 *   {"op":"apply","object":{...}}  {"op":"apply","yaml":"..."}  {"op":"delete","kind":"Pod","namespace":"default","name":"x"}
 *   {"op":"compact"}  {"op":"pause"}  {"op":"resume"}  {"op":"bookmark"}  {"op":"closeWatches"}  {"op":"watchCount"}
 * Exits when stdin ends or on SIGTERM / SIGINT.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { KubeApiServer, type KubeApiServerOptions, type KubeObject } from './kube-api-server.js';

interface Command {
  op?: string;
  object?: KubeObject;
  yaml?: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

function options(): { server: KubeApiServerOptions; files: string[] } {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string', default: '0' },
      token: { type: 'string', multiple: true, default: [] },
      role: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'expired-as': { type: 'string' },
      'bookmark-interval-ms': { type: 'string' },
      filename: { type: 'string', short: 'f', multiple: true, default: [] },
    },
  });
  const tokens = values.token.map((t) => {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`--token ${t}: expected TOKEN=USER`);
    return [t.slice(0, eq), t.slice(eq + 1)] as const;
  });
  const expiredAs = values['expired-as'];
  if (expiredAs !== undefined && expiredAs !== 'event' && expiredAs !== 'status') throw new Error('--expired-as: event or status');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const server: KubeApiServerOptions = {
    port: Number(values.port),
    ...(values.host !== undefined && { host: values.host }),
    ...(tokens.length > 0 && { tokens: Object.fromEntries(tokens) }),
    ...(values.role !== undefined && { role: KubeApiServer.roleFromManifest(readFileSync(values.role, 'utf8')) }),
    ...(values['tls-cert'] !== undefined && { tls: { cert: readFileSync(values['tls-cert'], 'utf8'), key: readFileSync(values['tls-key']!, 'utf8') } }),
    ...(expiredAs !== undefined && { expiredAs }),
    ...(values['bookmark-interval-ms'] !== undefined && { bookmarkIntervalMs: Number(values['bookmark-interval-ms']) }),
  };
  return { server, files: values.filename };
}

/** Runs one command; what it returns is added to the {"ok": true} answer. */
function run(server: KubeApiServer, cmd: Command): Record<string, unknown> {
  switch (cmd.op) {
    case 'apply':
      if (cmd.object !== undefined) server.apply(cmd.object);
      else if (cmd.yaml !== undefined) server.apply(cmd.yaml);
      else throw new Error('apply needs "object" or "yaml"');
      return {};
    case 'delete':
      if (cmd.kind === undefined || cmd.name === undefined) throw new Error('delete needs "kind" and "name"');
      return { deleted: server.delete(cmd.kind, cmd.namespace, cmd.name) !== undefined };
    case 'compact': server.compact(); return {};
    case 'pause': server.pause(); return {};
    case 'resume': server.resume(); return {};
    case 'bookmark': server.bookmark(); return {};
    case 'closeWatches': server.closeWatches(); return {};
    case 'watchCount': return { watchCount: server.watchCount() };
    default: throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

function answer(server: KubeApiServer, line: string): string {
  try {
    const extra = run(server, JSON.parse(line) as Command);
    return JSON.stringify({ ok: true, resourceVersion: server.resourceVersion, ...extra });
  } catch (err) {
    return JSON.stringify({ ok: false, error: (err as Error).message });
  }
}

async function main(): Promise<void> {
  const { server: opts, files } = options();
  const server = await KubeApiServer.start(opts);
  for (const f of files) server.apply(readFileSync(f, 'utf8'));
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(JSON.stringify({ url: server.url }) + '\n');
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== '') process.stdout.write(answer(server, line) + '\n');
  });
  lines.on('close', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`kube-api-server: ${(err as Error).message}\n`);
  process.exit(2);
});
