import { formatProblem, validatePaths } from '../policy/index.js';
import { UsageError } from './usage-error.js';
import { parseFlags, unknownSubcommand } from './flags.js';

const USAGE = `Usage: l7guard policy validate -f PATH [-f PATH ...]
       l7guard policy get [--server HOST:PORT|unix:PATH] [-o json]
       l7guard policy trace (-s LABELS | --src-pod NS/NAME) (-d LABELS | --dst-pod NS/NAME | --dst-service NS/NAME) --dport PORT [--http-*] [--server ADDR | -f PATH]
       l7guard policy replay --flows FILE -f PATH [-f PATH ...] [-o json] [--strict]

Checks every object as serve would load it, without serving. Prints one line per policy
(KIND NAMESPACE/NAME VALID True|False) followed by the reasons of invalid ones.
Exit code 0 only when everything is valid.
`;

export async function runPolicy(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'get' || sub === 'trace') {
    const { runPolicyGet, runPolicyTrace } = await import('./policy-inspect.js');
    return (sub === 'get' ? runPolicyGet : runPolicyTrace)(rest);
  }
  if (sub === 'replay') {
    const { runPolicyReplay } = await import('./policy-replay.js');
    return runPolicyReplay(rest);
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub === undefined) throw new UsageError('needs a subcommand: validate, get, trace or replay');
  if (sub !== 'validate') throw unknownSubcommand(sub, ['validate', 'get', 'trace', 'replay']);
  const { values } = parseFlags('policy validate', {
    args: rest,
    options: { file: { type: 'string', short: 'f', multiple: true }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const paths = values.file ?? [];
  if (paths.length === 0) throw new UsageError('policy validate needs at least one -f PATH');
  const report = await validatePaths(paths);
  return printReport(report);
}

type Report = Awaited<ReturnType<typeof validatePaths>>;

/** One row per policy, `kubectl get cnp`-style, then the reasons for each invalid one. */
function printReport(report: Report): number {
  const rows = report.policies.map((p) => [p.kind, `${p.namespace ?? '_'}/${p.name}`, p.valid ? 'True' : 'False', p.file]);
  const header = ['KIND', 'NAME', 'VALID', 'FILE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ');
  const out: string[] = [line(header), ...rows.map(line)];
  for (const p of report.policies) {
    if (p.valid) continue;
    out.push('', `${p.kind} ${p.namespace ?? '_'}/${p.name} (${p.file}):`);
    for (const r of p.reasons) out.push(`  - ${r}`);
  }
  if (report.fileErrors.length > 0) {
    out.push('', 'Errors outside any policy:');
    for (const e of report.fileErrors) out.push(`  - ${formatProblem(e)}`);
  }
  for (const w of report.warnings) out.push(`warning: ${w}`);
  process.stdout.write(out.join('\n') + '\n');
  return report.valid ? 0 : 1;
}
