import { runDemo } from '../demo/run.js';
import { runNetnsDemo } from '../demo/run-netns.js';
import { parseFlags } from './flags.js';

const USAGE = `Usage: l7guard demo [--keep] [--netns]

Runs Cilium's Star Wars demo on loopback addresses: two deathstar replicas, tiefighter and xwing,
l7guard on port 80, the L3/L4 policy, then the L7 policy. Exits non-zero if any outcome differs
from Cilium's. Needs root or an unprivileged user namespace (it re-executes itself under unshare).

  --netns   the same steps over real interception: pods as Linux network namespaces, an iptables
            REDIRECT in the node namespace to l7guard's --redirect listener, curl run inside the
            ships' namespaces; everything deleted at the end. Needs root, iproute2, iptables, curl.
`;

export async function runDemoCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('demo', {
    args: argv,
    options: { keep: { type: 'boolean' }, netns: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.netns) return runNetnsDemo({ out: process.stdout, keep: values.keep ?? false });
  return runDemo({ out: process.stdout, keep: values.keep ?? false });
}
