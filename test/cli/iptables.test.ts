/**
 * `l7guard iptables cleanup|show` (docs/cli.md#iptables) as real child processes. The command line
 * checks need nothing; the rest runs `ip netns exec <ns> node bin/l7guard.js iptables …` inside
 * network namespaces this test creates (`l7g-<pid>-ipcli-…`, deleted at the end), after an
 * IptablesManager installed the chain there: cleanup leaves `iptables-save` exactly as before the
 * install, and exits 0 when nothing is there. Never against the host's tables.
 *
 * Outside CI (not root, no `ip netns`, no iptables) the namespace part says why and skips; in CI it fails.
 */
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { netnsSupport, runTag, which } from '../../demo/netns-topology.js';
import { IptablesManager, normalizeSave, type Redirect } from '../../proxy/interception/iptables.js';
import { cliPath, runCli } from '../helpers/serve.js';
import { IPTABLES_USAGE, runIptables } from '../../cli/iptables.js';
import { UsageError } from '../../cli/usage-error.js';

const J = '-m comment --comment "l7guard interception" -j L7GUARD';
const REDIRECTS: Redirect[] = [
  { ip: '10.96.0.10', port: 80, toPort: 15080, comment: 'default/deathstar:80' },
  { ip: '10.244.1.5', port: 8080, toPort: 15081, comment: 'default/deathstar-1 http' },
];

/** runIptables in this process: what it printed, its exit code, or the UsageError main turns into exit 2. */
async function inProcess(args: string[]): Promise<{ code: number; stdout: string; usage?: string }> {
  let stdout = '';
  const out = new PassThrough().setEncoding('utf8');
  out.on('data', (s: string) => (stdout += s));
  try {
    const code = await runIptables(args, out);
    return { code, stdout };
  } catch (err) {
    if (err instanceof UsageError) return { code: 2, stdout, usage: err.message };
    throw err;
  }
}

t.test('command line', async (t) => {
  const help = await runCli(['--help']);
  t.match(help.stdout, /\n {2}iptables {9}the nat chain of l7guard's interception \(cleanup, show\)\n/, 'listed in l7guard --help');
  t.match(IPTABLES_USAGE, /^Usage: l7guard iptables cleanup \[--chain NAME\] \[--backend nft\|legacy\]\n {7}l7guard iptables show/);
  const bad = await runCli(['iptables', 'flush']);
  t.equal(bad.code, 2, 'a bad command line: exit 2');
  t.equal(bad.stderr, 'l7guard iptables: unknown subcommand "flush"\nSee \'l7guard iptables --help\'.\n', 'the reason, then where the usage is, on stderr');
  t.equal(bad.stdout, '');

  for (const args of [[], ['--help'], ['help'], ['-h'], ['cleanup', '-h'], ['show', '--help']]) {
    t.same(await inProcess(args), { code: 0, stdout: IPTABLES_USAGE }, `iptables ${args.join(' ')}: the usage`);
  }
  for (const [args, msg] of [
    [['cleanup', '--chain', 'two words'], /^--chain: chain name "two words"/],
    [['cleanup', '--chain', 'PREROUTING'], /^--chain: chain name "PREROUTING"/],
    [['show', '--backend', 'ebtables'], /^--backend must be nft or legacy/],
    [['cleanup', 'extra'], /^unexpected argument "extra"$/],
    [['cleanup', '--force'], /^unknown flag --force$/],
    [['show', '--chian', 'X'], /^unknown flag --chian \(did you mean --chain\?\)$/],
  ] as const) {
    const r = await inProcess([...args]);
    t.equal(r.code, 2, `${args.join(' ')}: a usage error (exit 2)`);
    t.match(r.usage, msg, `${args.join(' ')}: says why`);
    t.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
});

const tag = runTag('ipcli');
const support = netnsSupport(tag);

const PLANTED = [
  '*nat',
  ':KUBE-SERVICES - [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.244.9.9:6443',
  '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
  'COMMIT',
  '',
].join('\n');

if (!support.ok) {
  if (process.env.CI === 'true') t.fail(`iptables CLI namespace tests cannot run in CI: ${support.reason}`);
  else t.pass(`skipped: ${support.reason}`, { skip: support.reason });
} else {
  const { ip } = support.tools;
  const sync = (argv: string[], input?: string) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, timeout: 15_000 });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  /** `l7guard iptables ARGS` inside `ns`. */
  const cli = (ns: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const proc = spawn(ip, ['netns', 'exec', ns, process.execPath, cliPath, 'iptables', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      proc.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      proc.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const namespace = (t: Test, suffix: string) => {
    const ns = `${tag}-${suffix}`;
    const add = sync([ip, 'netns', 'add', ns]);
    if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
    t.teardown(() => void sync([ip, 'netns', 'del', ns]));
    return ns;
  };

  t.test('cleanup and show in a namespace', async (t) => {
    const ns = namespace(t, 'a');
    const exec = (argv: string[], input?: string) => sync([ip, 'netns', 'exec', ns, ...argv], input);
    const save = () => normalizeSave(exec(['iptables-save']).stdout);
    t.equal(exec(['iptables-restore', '--noflush'], PLANTED).code, 0, 'planted kube-proxy/Docker-like rules');
    const baseline = save();

    let r = await cli(ns, ['cleanup']);
    t.same(r, { code: 0, stdout: 'iptables cleanup: nothing to remove (no chain L7GUARD and no jump to it in the nat table)\n', stderr: '' }, 'nothing installed: exit 0, says so');
    t.equal(save(), baseline, 'and touched nothing');
    r = await cli(ns, ['show']);
    t.same(r, { code: 0, stdout: '# no chain L7GUARD in the nat table\n', stderr: '' }, 'show with nothing installed');

    const m = new IptablesManager({ prefix: [ip, 'netns', 'exec', ns], outputExcludeUid: 4242 });
    await m.apply(REDIRECTS);
    r = await cli(ns, ['show']);
    t.equal(r.code, 0);
    t.equal(
      r.stdout,
      [
        '# chain L7GUARD: 2 rules; jumped to from PREROUTING, OUTPUT',
        `-A PREROUTING ${J}`,
        `-A OUTPUT -m owner ! --uid-owner 4242 ${J}`,
        '-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/deathstar:80" -j REDIRECT --to-ports 15080',
        '-A L7GUARD -d 10.244.1.5/32 -p tcp -m tcp --dport 8080 -m comment --comment "default/deathstar-1 http" -j REDIRECT --to-ports 15081',
        '',
      ].join('\n'),
      'show: the jumps, then the chain, as iptables-save prints them',
    );

    r = await cli(ns, ['cleanup']);
    t.same(r, { code: 0, stdout: 'iptables cleanup: removed chain L7GUARD (2 rules) and 2 jumps to it (PREROUTING, OUTPUT) from the nat table\n', stderr: '' }, 'cleanup after a "crash": exit 0, says what it removed');
    t.equal(save(), baseline, 'iptables-save is exactly as before the first apply (minus comments and counters)');

    await t.test('--chain', async (t) => {
      const other = new IptablesManager({ prefix: [ip, 'netns', 'exec', ns], chain: 'L7G-TEST', hooks: ['PREROUTING'] });
      await other.apply(REDIRECTS.slice(0, 1));
      const c = await cli(ns, ['cleanup', '--chain', 'L7G-TEST']);
      t.same(c, { code: 0, stdout: 'iptables cleanup: removed chain L7G-TEST (1 rule) and 1 jump to it (PREROUTING) from the nat table\n', stderr: '' });
      t.equal(save(), baseline);
    });

    await t.test('exit 1 when the chain cannot be removed, changing nothing', async (t) => {
      await m.apply(REDIRECTS);
      t.equal(exec(['iptables', '-w', '-t', 'nat', '-N', 'KUBE-X']).code, 0);
      t.equal(exec(['iptables', '-w', '-t', 'nat', '-A', 'KUBE-X', '-j', 'L7GUARD']).code, 0, 'a chain of another agent jumps to ours');
      const before = save();
      const c = await cli(ns, ['cleanup']);
      t.equal(c.code, 1);
      t.equal(c.stderr, 'l7guard iptables: chain L7GUARD is still jumped to from chains l7guard does not own: -A KUBE-X -j L7GUARD\n');
      t.equal(c.stdout, '');
      t.equal(save(), before, 'nothing changed');
      t.equal(exec(['iptables', '-w', '-t', 'nat', '-F', 'KUBE-X']).code, 0);
      t.equal(exec(['iptables', '-w', '-t', 'nat', '-X', 'KUBE-X']).code, 0);
      t.equal((await cli(ns, ['cleanup'])).code, 0, 'once unreferenced, cleanup works');
      t.equal(save(), baseline);
    });

    await t.test('exit 1 when iptables is missing', async (t) => {
      const c = await cli(ns, ['cleanup'], { ...process.env, PATH: '/nonexistent' });
      t.same(c, { code: 1, stdout: '', stderr: 'l7guard iptables: iptables-save: not found (is iptables installed?)\n' });
    });
  });

  t.test('--backend: the nft and legacy tables are separate', async (t) => {
    const usable = (v: string) => which(`iptables-${v}-save`) !== undefined && which(`iptables-${v}-restore`) !== undefined;
    if (!usable('nft') || !usable('legacy')) {
      t.pass('skipped: iptables-nft-* or iptables-legacy-* not installed', { skip: true });
      return;
    }
    const ns = namespace(t, 'b');
    const probe = sync([ip, 'netns', 'exec', ns, 'iptables-legacy-save', '-t', 'nat']);
    if (probe.code !== 0) {
      t.pass(`skipped: iptables-legacy unusable here: ${probe.stderr.trim()}`, { skip: true });
      return;
    }
    await new IptablesManager({ prefix: [ip, 'netns', 'exec', ns], backend: 'legacy' }).apply(REDIRECTS);
    t.match((await cli(ns, ['cleanup', '--backend', 'nft'])).stdout, /nothing to remove/, 'nothing in the nft tables');
    const c = await cli(ns, ['cleanup', '--backend', 'legacy']);
    t.equal(c.code, 0, c.stderr);
    t.match(c.stdout, /^iptables cleanup: removed chain L7GUARD \(2 rules\) and 2 jumps to it \(PREROUTING, OUTPUT\)/);
    t.notMatch(sync([ip, 'netns', 'exec', ns, 'iptables-legacy-save', '-t', 'nat']).stdout, /L7GUARD/, 'nothing left');
  });
}
