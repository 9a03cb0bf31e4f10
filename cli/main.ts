import { runServe } from './serve.js';
import { runPolicy } from './policy.js';
import { UsageError } from './usage-error.js';
import { version } from './version.js';
import { didYouMean } from './flags.js';
import { reportError } from './report-error.js';

const USAGE = `Usage: l7guard <command> [options]

Commands:
  serve            enforce CiliumNetworkPolicy L7 rules as an HTTP proxy
  demo             run Cilium's Star Wars demo locally, end to end
  policy validate  check policy files without serving (like kubectl apply --dry-run)
  policy get       the loaded policy rules and revision of a running proxy (like cilium-dbg policy get)
  policy trace     which rule allows or denies a source, destination, port and request (like cilium policy trace)
  policy replay    judge a flow log's recorded decisions again with candidate policies; the changed verdicts
  observe          show flows like hubble observe (from the admin API or a --flows file)
  apply            apply objects to a running proxy through its admin API (like kubectl apply -f)
  delete           delete an object applied through the admin API (like kubectl delete)
  endpoint list    the proxy's endpoints with policy enforcement and identity (like cilium endpoint list)
  endpoint config  an endpoint's options: PolicyAuditMode=Enabled|Disabled (like cilium endpoint config)
  identity list    the security identities and their labels (like cilium identity list)
  certs            make a local CA and TLS certificates (init, issue)
  iptables         the nat chain of l7guard's interception (cleanup, show)
  version          print the version

Run "l7guard <command> --help" for a command's options.
`;

const COMMANDS = ['serve', 'demo', 'policy', 'observe', 'apply', 'delete', 'endpoint', 'identity', 'certs', 'iptables', 'version', 'help'];

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  // A reader that went away (`l7guard observe | head`) ends the command quietly; the demo stops its
  // processes first, so it handles this itself (demo/demo-runner.ts).
  if (cmd !== 'demo') process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  try {
    switch (cmd) {
      case 'serve':
        process.exitCode = await runServe(rest);
        return;
      case 'demo': {
        const { runDemoCommand } = await import('./demo.js');
        process.exitCode = await runDemoCommand(rest);
        return;
      }
      case 'policy':
        process.exitCode = await runPolicy(rest);
        return;
      case 'observe': {
        const { runObserve } = await import('./observe.js');
        process.exitCode = await runObserve(rest);
        return;
      }
      case 'apply':
      case 'delete': {
        const { runApply, runDelete } = await import('./apply.js');
        process.exitCode = await (cmd === 'apply' ? runApply : runDelete)(rest);
        return;
      }
      case 'certs': {
        const { runCerts } = await import('./certs.js');
        process.exitCode = await runCerts(rest);
        return;
      }
      case 'iptables': {
        const { runIptables } = await import('./iptables.js');
        process.exitCode = await runIptables(rest);
        return;
      }
      case 'endpoint':
      case 'identity': {
        const { runEndpoint, runIdentity } = await import('./operator.js');
        process.exitCode = await (cmd === 'endpoint' ? runEndpoint : runIdentity)(rest);
        return;
      }
      case 'version':
      case '--version':
        process.stdout.write(`l7guard ${version()}\n`);
        return;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return;
      default:
        throw new UsageError(`unknown command "${cmd}"${didYouMean(cmd, COMMANDS)}`);
    }
  } catch (err) {
    const known = cmd !== undefined && COMMANDS.includes(cmd) ? cmd : undefined;
    const { text, exitCode } = reportError(known, err);
    process.stderr.write(text);
    process.exitCode = exitCode;
  }
}
