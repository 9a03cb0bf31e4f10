/**
 * `l7guard policy replay --flows FILE -f PATH...`: every decision a flow log recorded, judged again
 * by a candidate (cluster state and policies read as `serve -f` reads them), and the differences.
 * Exit 0: no verdict changes; 1: some do; 2: an error (usage, unreadable or malformed flow log,
 * a candidate that does not load). A CI job can gate a policy change on it.
 */
import { access, constants } from 'node:fs/promises';
import { formatProblem, loadPolicyState, locateInFiles, PolicyLoadError, type PolicyState, type RuleRef } from '../policy/index.js';
import { Replayer, type Replayed } from '../policy/replay.js';
import { FlowReplay, type ReplayGroup, type ReplayReport } from '../observe/replay.js';
import { streamFlows, type FlowLineError } from '../observe/read-flows.js';
import { ruleText } from './policy-inspect.js';
import { tabwrite } from './tabwriter.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './flags.js';
import { UsageError } from './usage-error.js';

export const REPLAY_USAGE = `Usage: l7guard policy replay --flows FILE -f PATH [-f PATH ...] [-o json] [--strict]

Judges every decision recorded in a flow log (serve --flows FILE, or hubble observe -o jsonpb) again
with a candidate — the cluster state and policies in the -f paths, read as serve -f reads them — and
prints the differences grouped by source, destination, method and path: newly denied, newly allowed,
undecidable (the decision needs what flows do not record, such as a header value), and how many
stayed the same.
      --flows FILE          the flow log (JSON lines)
  -f, --file PATH           the candidate's files and folders (repeatable)
      --cluster-name NAME, --allow-localhost always|policy, --node-ip IP, --node-name NAME
                            as serve
  -o json                   the report as JSON
      --strict              undecidable decisions count as changes (exit 1)

Exit status: 0 no verdict changes, 1 some changed, 2 error.
`;

/** Lines of a malformed flow log shown before "and N more". */
const SHOWN_ERRORS = 5;

/** Every failure of replay exits 2, so a CI gate tells "cannot judge" from "verdicts changed" (1). */
class ReplayError extends CliError {
  override readonly code = 'L7G_ERR_REPLAY';
  override readonly exitCode = 2;
}

export async function runPolicyReplay(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const { values } = parseFlags('policy replay', {
    args: argv,
    options: {
      flows: { type: 'string' }, file: { type: 'string', short: 'f', multiple: true },
      'cluster-name': { type: 'string' }, 'allow-localhost': { type: 'string' }, 'node-ip': { type: 'string', multiple: true }, 'node-name': { type: 'string' },
      output: { type: 'string', short: 'o' }, strict: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help === true) {
    out.write(REPLAY_USAGE);
    return 0;
  }
  if (values.flows === undefined) throw new UsageError(`policy replay needs --flows FILE`);
  if (values.file === undefined || values.file.length === 0) throw new UsageError(`policy replay needs at least one -f PATH (the candidate)`);
  if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o must be json');
  const allowLocalhost = values['allow-localhost'] ?? 'always';
  if (allowLocalhost !== 'always' && allowLocalhost !== 'policy') throw new UsageError('--allow-localhost must be always or policy');

  const flowsFile = values.flows;
  try {
    await access(flowsFile, constants.R_OK);
  } catch (e) {
    throw new ReplayError(`cannot read the flow log ${flowsFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let state: PolicyState;
  try {
    state = await loadPolicyState(values.file, {
      clusterName: values['cluster-name'] ?? 'default', nodeIPs: values['node-ip'] ?? [], allowLocalhost, nodeName: values['node-name'], revision: 1,
    });
  } catch (e) {
    if (!(e instanceof PolicyLoadError)) throw e;
    throw new ReplayError(`the candidate does not load:\n${(await locateInFiles(e.problems)).map((p) => `  ${formatProblem(p)}`).join('\n')}`);
  }

  const replay = new FlowReplay(new Replayer(state));
  const bad: FlowLineError[] = [];
  try {
    for await (const res of streamFlows(flowsFile, (e) => bad.push(e))) replay.add(res);
  } catch (e) {
    throw new ReplayError(`cannot read the flow log ${flowsFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (bad.length > 0) {
    const shown = bad.slice(0, SHOWN_ERRORS).map((b) => `  line ${b.line}: ${b.message}`);
    if (bad.length > SHOWN_ERRORS) shown.push(`  and ${bad.length - SHOWN_ERRORS} more`);
    throw new ReplayError(`${flowsFile} is not a flow log (one GetFlowsResponse JSON object per line):\n${shown.join('\n')}`);
  }
  const report = replay.finish();
  // An empty or wrong log would otherwise pass a CI gate without a word.
  if (report.decisions === 0) err.write(`warning: ${flowsFile} holds no recorded policy decision (L7 request or policy-verdict flow)\n`);
  out.write(values.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderReplay(report, flowsFile));
  const changed = report.newlyDenied + report.newlyAllowed + (values.strict === true ? report.undecidable : 0);
  return changed > 0 ? 1 : 0;
}

const rules = (by: readonly RuleRef[]) => by.map(ruleText).join(', ');

/** The candidate's verdict in a sentence. */
export function candidateText(c: Replayed): string {
  switch (c.verdict) {
    case 'ALLOWED':
      return c.by.length > 0 ? `allowed by ${rules(c.by)}` : 'allowed (no policy enforces either direction)';
    case 'DENIED':
      if (c.layer === 'L7') return `denied at L7 (403, ${c.direction}): matches no HTTP rule of ${rules(c.by)}`;
      return c.by.length > 0 ? `denied at L3/L4 (${c.reason}, ${c.direction}) by ${rules(c.by)}` : `denied at L3/L4 (${c.reason}, ${c.direction}): no rule selected this peer`;
    case 'UNDECIDABLE':
      return c.headers.length > 0 ? `${c.why}: ${c.headers.join(', ')}` : c.why;
  }
}

const SECTIONS = [
  ['newly-denied', 'Newly denied'],
  ['newly-allowed', 'Newly allowed'],
  ['undecidable', 'Undecidable'],
] as const;

function table(groups: readonly ReplayGroup[]): string {
  // Names come from the flow log: a tab or newline in one must not break the table.
  const row = (cells: readonly (string | number)[]) => cells.map((c) => String(c).replace(/[\t\r\n]/g, ' ')).join('\t') + '\n';
  let text = row(['SOURCE', 'DESTINATION', 'PORT', 'METHOD', 'PATH', 'FLOWS', 'RECORDED', 'CANDIDATE']);
  for (const g of groups) text += row([g.source, g.destination, g.port, g.method || '-', g.path || '-', g.flows, g.recorded, candidateText(g.candidate)]);
  return tabwrite(text, { minwidth: 0, padding: 2 });
}

export function renderReplay(r: ReplayReport, file: string): string {
  const lines = [
    `Replayed ${r.decisions} recorded decisions from ${file}: ${r.newlyDenied} newly denied, ${r.newlyAllowed} newly allowed, ${r.undecidable} undecidable, ${r.unchanged} unchanged`,
  ];
  if (r.recordedRevisions.length > 0) lines.push(`Recorded under policy revision${r.recordedRevisions.length > 1 ? 's' : ''} ${r.recordedRevisions.join(', ')}`);
  let text = lines.join('\n') + '\n';
  for (const [change, title] of SECTIONS) {
    const groups = r.groups.filter((g) => g.change === change);
    text += groups.length === 0 ? `\n${title}: none\n` : `\n${title} (${groups.reduce((n, g) => n + g.flows, 0)}):\n${table(groups)}`;
  }
  const s = r.skipped;
  const skipped = [
    s.responses > 0 ? `${s.responses} responses` : '',
    s.staged > 0 ? `${s.staged} of staged policies` : '',
    s.dropNotifications > 0 ? `${s.dropNotifications} drop notifications (their policy-verdict flows are replayed)` : '',
    s.other > 0 ? `${s.other} other (not a policy decision)` : '',
  ].filter((x) => x !== '');
  if (skipped.length > 0) text += `\nSkipped flows: ${skipped.join(', ')}\n`;
  return text;
}
