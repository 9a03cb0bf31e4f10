// A flag the command does not have, as a person sees it: the real CLI, exit 2, the error and one hint
// line naming the nearest flags and the command's --help — not the whole usage.
import t from 'tap';
import { runCli } from '../helpers/serve.js';

t.setTimeout(400_000);

const cases: [args: string[], stderr: string][] = [
  [['serve', '--listn', '127.0.0.1:80'], "l7guard serve: unknown flag --listn (did you mean --listen?)\nSee 'l7guard serve --help'.\n"],
  [['serve', '-f', 'x', '--log-levle', 'debug'], "l7guard serve: unknown flag --log-levle (did you mean --log-level?)\nSee 'l7guard serve --help'.\n"],
  [['serve', '--frobnicate'], "l7guard serve: unknown flag --frobnicate\nSee 'l7guard serve --help'.\n"],
  [['serve', '-f', 'x', '--listen'], "l7guard serve: --listen needs a value\nSee 'l7guard serve --help'.\n"],
  [['serve', '--kubernetes=yes'], "l7guard serve: --kubernetes takes no value\nSee 'l7guard serve --help'.\n"],
  [['observe', '--folow'], "l7guard observe: unknown flag --folow (did you mean --follow?)\nSee 'l7guard observe --help'.\n"],
  [['policy', 'trace', '--dprt', '80'], "l7guard policy: unknown flag --dprt (did you mean --dport?)\nSee 'l7guard policy trace --help'.\n"],
  [['apply', '-f', 'x.yaml', '--sever', 'a:1'], "l7guard apply: unknown flag --sever (did you mean --server?)\nSee 'l7guard apply --help'.\n"],
  [['demo', '--kep'], "l7guard demo: unknown flag --kep (did you mean --keep?)\nSee 'l7guard demo --help'.\n"],
  [['endpoint', 'list', 'extra'], 'l7guard endpoint: unexpected argument "extra"\nSee \'l7guard endpoint list --help\'.\n'],
  [['policy', 'trac'], "l7guard policy: unknown subcommand \"trac\" (did you mean trace?)\nSee 'l7guard policy --help'.\n"],
  [['serv'], "l7guard: unknown command \"serv\" (did you mean serve?)\nSee 'l7guard --help'.\n"],
];

t.test('unknown flags, subcommands and commands: the error, then one hint line; exit 2', { timeout: 300_000 }, async (t) => {
  for (const [args, stderr] of cases) {
    const r = await runCli(args, 60_000);
    t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 2, stdout: '', stderr }, `l7guard ${args.join(' ')}`);
  }
});

t.test('--help of each command the hints name prints its usage', async (t) => {
  for (const cmd of [['serve'], ['policy', 'trace'], ['endpoint', 'list'], ['apply']]) {
    const r = await runCli([...cmd, '--help'], 60_000);
    t.equal(r.code, 0, `l7guard ${cmd.join(' ')} --help`);
    t.match(r.stdout, /^Usage: l7guard /);
  }
});
