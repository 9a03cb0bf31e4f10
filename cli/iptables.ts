/**
 * `l7guard iptables cleanup|show`: the nat chain l7guard's interception installs
 * (proxy/interception/iptables.ts). `cleanup` removes what a crashed or killed instance left behind —
 * every jump to the chain from the built-in nat chains, then the chain — in one iptables-restore
 * transaction, touching nothing else; `show` prints what is installed.
 */
import { DEFAULT_CHAIN, IptablesError, IptablesManager, type Backend } from '../proxy/interception/iptables.js';
import { UsageError } from './usage-error.js';
import { CliError } from './cli-error.js';
import { parseFlags, unknownSubcommand } from './flags.js';

export const IPTABLES_USAGE = `Usage: l7guard iptables cleanup [--chain NAME] [--backend nft|legacy]
       l7guard iptables show [--chain NAME] [--backend nft|legacy]

  cleanup   remove what an l7guard instance installed in the nat table (after a crash, say): every
            jump to the chain from PREROUTING, INPUT, OUTPUT and POSTROUTING, then the chain itself,
            in one iptables-restore --noflush transaction; no other chain or rule is touched
  show      print the jumps to the chain and the chain's rules, as iptables-save lines

  --chain NAME            the chain (default ${DEFAULT_CHAIN})
  --backend nft|legacy    use iptables-nft-save/-restore or iptables-legacy-save/-restore (default:
                          iptables-save/-restore, the system's alternative); run once per backend in use

Needs root (CAP_NET_ADMIN). cleanup exits 0 when it removed something and when nothing was there,
1 when iptables fails.
`;

function parse(argv: string[]): { sub: 'cleanup' | 'show' | 'help'; manager?: IptablesManager } {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return { sub: 'help' };
  if (sub !== 'cleanup' && sub !== 'show') throw unknownSubcommand(sub, ['cleanup', 'show']);
  const { values } = parseFlags(`iptables ${sub}`, {
    args: rest,
    options: { chain: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  });
  if (values.help === true) return { sub: 'help' };
  if (values.backend !== undefined && values.backend !== 'nft' && values.backend !== 'legacy') {
    throw new UsageError(`--backend must be nft or legacy, not ${JSON.stringify(values.backend)}`);
  }
  try {
    // outputExcludeUid is irrelevant to cleanup and show; null keeps the manager from reading it.
    return { sub, manager: new IptablesManager({ chain: values.chain, backend: values.backend as Backend | undefined, outputExcludeUid: null }) };
  } catch (err) {
    if (err instanceof IptablesError) throw new UsageError(`--chain: ${err.message}`);
    throw err;
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export async function runIptables(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { sub, manager } = parse(argv);
  if (sub === 'help' || manager === undefined) {
    out.write(IPTABLES_USAGE);
    return 0;
  }
  const chain = manager.chain;
  try {
    if (sub === 'cleanup') {
      const r = await manager.cleanup();
      if (!r.removed) {
        out.write(`iptables cleanup: nothing to remove (no chain ${chain} and no jump to it in the nat table)\n`);
        return 0;
      }
      const hooks = [...new Set(r.jumps.map((j) => j.split(' ')[1]))].join(', ');
      const what = [
        r.chainExisted ? `chain ${chain} (${plural(r.rules, 'rule')})` : undefined,
        r.jumps.length > 0 ? `${plural(r.jumps.length, 'jump')} to it (${hooks})` : undefined,
      ].filter((s) => s !== undefined);
      out.write(`iptables cleanup: removed ${what.join(' and ')} from the nat table\n`);
      return 0;
    }
    const s = await manager.show();
    if (!s.exists && s.jumps.length === 0) {
      out.write(`# no chain ${chain} in the nat table\n`);
      return 0;
    }
    const from = [...new Set(s.jumps.map((j) => j.split(' ')[1]))];
    out.write(`# chain ${chain}: ${plural(s.rules.length, 'rule')}; jumped to from ${from.length === 0 ? 'nowhere' : from.join(', ')}\n`);
    for (const line of [...s.jumps, ...s.rules]) out.write(`${line}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof IptablesError)) throw err;
    throw new CliError(err.message);
  }
}
