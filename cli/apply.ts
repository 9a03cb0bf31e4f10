/**
 * `l7guard apply -f FILE` and `l7guard delete KIND NAME [-n NS]`: kubectl's verbs against a running
 * proxy's admin API. Exit 0 when every object went through, 1 when the server refused one (its reason
 * on stderr), 2 on a bad command line.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { applyText, DEFAULT_ADMIN, deleteObject, type ApplyLine } from '../proxy/admin/client.js';
import { UsageError } from './usage-error.js';

export const APPLY_USAGE = `Usage: l7guard apply -f FILE [-f FILE ...] [-n NS] [--server HOST:PORT|unix:PATH]

  Applies every object of each YAML/JSON file through the admin API (PUT /v1/{kind}/{ns}/{name}).
  -n, --namespace NS   namespace of objects without one (default "default")
      --server ADDR    the proxy's admin address (default ${DEFAULT_ADMIN})
`;

export const DELETE_USAGE = `Usage: l7guard delete KIND NAME [-n NS] [--server HOST:PORT|unix:PATH]

  Deletes an object applied through the admin API (DELETE /v1/{kind}/{ns}/{name}).
  KIND as kubectl names it: ciliumnetworkpolicies, cnp, pod, services, ...
`;

const common = {
  namespace: { type: 'string', short: 'n' },
  server: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[], usage: string, withFile: boolean) {
  try {
    return parseArgs({
      args: argv,
      options: withFile ? { ...common, file: { type: 'string', short: 'f', multiple: true } } : common,
      strict: true,
      allowPositionals: !withFile,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

function print(lines: readonly ApplyLine[]): number {
  for (const l of lines) (l.ok ? process.stdout : process.stderr).write(`${l.text}\n`);
  return lines.every((l) => l.ok) ? 0 : 1;
}

export async function runApply(argv: string[]): Promise<number> {
  const { values } = parse(argv, APPLY_USAGE, true);
  if (values.help) {
    process.stdout.write(APPLY_USAGE);
    return 0;
  }
  const files = (values as { file?: string[] }).file ?? [];
  if (files.length === 0) throw new UsageError(`apply needs -f FILE\n\n${APPLY_USAGE}`);
  const server = values.server ?? DEFAULT_ADMIN;
  let code = 0;
  for (const f of files) {
    const text = f === '-' ? await readStdin() : await readFile(f, 'utf8');
    code = Math.max(code, print(await applyText(server, text, f, values.namespace ?? 'default').catch(unreachable(server))));
  }
  return code;
}

export async function runDelete(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, DELETE_USAGE, false);
  if (values.help) {
    process.stdout.write(DELETE_USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`delete needs KIND NAME\n\n${DELETE_USAGE}`);
  const [kind, name] = positionals as [string, string];
  const server = values.server ?? DEFAULT_ADMIN;
  return print(await deleteObject(server, kind, name, values.namespace ?? 'default').then((l) => [l], unreachable(server)));
}

function unreachable(server: string) {
  return (err: Error): ApplyLine[] => [{ ok: false, text: `error: cannot reach the admin API at ${server}: ${err.message}`, revision: undefined }];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
