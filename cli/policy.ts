import { parseArgs } from 'node:util';
import { validatePaths } from '../policy/index.js';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: l7guard policy validate -f PATH [-f PATH ...]

Checks every object as serve would load it, without serving. Prints one line per policy
(KIND NAMESPACE/NAME VALID True|False) followed by the reasons of invalid ones.
Exit code 0 only when everything is valid.
`;

export async function runPolicy(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'validate') throw new UsageError(`unknown policy subcommand "${sub ?? ''}"\n\n${USAGE}`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { file: { type: 'string', short: 'f', multiple: true }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const paths = values.file ?? [];
  if (paths.length === 0) throw new UsageError(`policy validate needs at least one -f PATH\n\n${USAGE}`);
  const report = await validatePaths(paths);
  return printReport(report);
}

type Report = Awaited<ReturnType<typeof validatePaths>>;

function printReport(report: Report): number {
  void report;
  throw new Error('printReport: wire to the policy/ validation report');
}
