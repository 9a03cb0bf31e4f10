/**
 * `l7guard apply -f FILE` and `l7guard delete KIND NAME [-n NS]`: kubectl's verbs against a running
 * proxy's admin API. Exit 0 when every object went through, 1 when the server refused one (its reason
 * on stderr), 2 on a bad command line.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { applyText, DEFAULT_ADMIN, deleteObject, type ApplyLine } from '../proxy/admin/client.js';
import { unreachable } from './admin-get.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './flags.js';
import { systemErrorText } from './report-error.js';
import { UsageError } from './usage-error.js';

export const APPLY_USAGE = `Usage: l7guard apply -f FILE [-f FILE ...] [-n NS] [--server HOST:PORT|unix:PATH]

  Applies every object of each YAML/JSON file through the admin API (PUT /v1/{kind}/{ns}/{name}).
  FILE may be a folder (its .yaml, .yml and .json files, not recursive) or - (standard input).
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

function parse(argv: string[], command: 'apply' | 'delete') {
  const withFile = command === 'apply';
  return parseFlags(command, {
    args: argv,
    options: withFile ? { ...common, file: { type: 'string', short: 'f', multiple: true } } : common,
    allowPositionals: !withFile,
  });
}

function print(lines: readonly ApplyLine[]): number {
  for (const l of lines) (l.ok ? process.stdout : process.stderr).write(`${l.text}\n`);
  return lines.every((l) => l.ok) ? 0 : 1;
}

export async function runApply(argv: string[]): Promise<number> {
  const { values } = parse(argv, 'apply');
  if (values.help) {
    process.stdout.write(APPLY_USAGE);
    return 0;
  }
  const files = (values as { file?: string[] }).file ?? [];
  if (files.length === 0) throw new UsageError('apply needs -f FILE');
  const server = values.server ?? DEFAULT_ADMIN;
  // Every file is read before the first object is sent: a typo in the second -f changes nothing.
  const inputs: { file: string; text: string }[] = [];
  for (const f of files) inputs.push(...(f === '-' ? [{ file: f, text: await readStdin() }] : await readInputs(f)));
  let code = 0;
  for (const { file, text } of inputs) {
    const lines = await applyText(server, text, file, values.namespace ?? 'default').catch((err: unknown) => {
      throw unreachable(server, err);
    });
    code = Math.max(code, print(lines));
  }
  return code;
}

export async function runDelete(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, 'delete');
  if (values.help) {
    process.stdout.write(DELETE_USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`delete needs KIND NAME, not ${positionals.length} argument${positionals.length === 1 ? '' : 's'}`);
  const [kind, name] = positionals as [string, string];
  const server = values.server ?? DEFAULT_ADMIN;
  const line = await deleteObject(server, kind, name, values.namespace ?? 'default').catch((err: unknown) => {
    throw unreachable(server, err);
  });
  return print([line]);
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** A file, or a folder's manifests in name order (kubectl apply -f DIR, not recursive). */
async function readInputs(path: string): Promise<{ file: string; text: string }[]> {
  try {
    if (!(await stat(path)).isDirectory()) return [{ file: path, text: await readFile(path, 'utf8') }];
    const names = (await readdir(path)).filter((n) => MANIFEST_EXTENSIONS.has(extname(n).toLowerCase())).sort();
    if (names.length === 0) throw new CliError(`-f ${path}: the folder has no .yaml, .yml or .json file`);
    return await Promise.all(names.map(async (n) => ({ file: join(path, n), text: await readFile(join(path, n), 'utf8') })));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`-f ${systemErrorText(err) ?? `${path}: ${(err as Error).message}`}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
