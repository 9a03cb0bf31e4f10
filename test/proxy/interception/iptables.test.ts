/**
 * proxy/interception/iptables.ts: rendering (pure, table-driven), then the real thing inside network
 * namespaces this test creates (names `l7g-<pid>-ipt-…`, deleted at the end): apply installs exactly
 * the rendered chain and one jump per hook, first; the same set again runs no restore; a changed set
 * is one restore, never observed half-applied, and other agents' chains and rules (a planted
 * kube-proxy `KUBE-SERVICES`, Docker's `DOCKER`, a MASQUERADE, a filter rule) are untouched; a
 * connection to IP:PORT lands on the local listener at TOPORT, from a pod (PREROUTING) and from the
 * node itself (OUTPUT, minus the excluded uid); cleanup leaves `iptables-save` as it was before.
 * Every iptables command runs inside a namespace made here, never against the host's tables.
 *
 * Outside CI (not root, no `ip netns`, no iptables) the namespace part says why and skips; in CI it
 * fails. The `-nft`/`-legacy` variants are exercised when installed and usable, else skipped with why.
 */
import t from 'tap';
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { netnsSupport, NetnsTopology, runTag, which } from '../../../demo/netns-topology.js';
import {
  binaries,
  IptablesError,
  IptablesManager,
  normalizeSave,
  parseSave,
  planApply,
  planCleanup,
  renderRules,
  tokenize,
  type Backend,
  type Redirect,
} from '../../../proxy/interception/iptables.js';

const execFileP = promisify(execFile);

const DS: Redirect = { ip: '10.96.0.10', port: 80, toPort: 15080, comment: 'default/deathstar:80' };
const POD: Redirect = { ip: '10.244.1.5', port: 8080, toPort: 15081, comment: 'default/deathstar-1 http' };
const J = '-m comment --comment "l7guard interception" -j L7GUARD';

// ---------------------------------------------------------------------------------------------
// Rendering: no namespace needed.

t.test('renderRules is deterministic', async (t) => {
  const two = [
    '*nat',
    ':L7GUARD - [0:0]',
    '-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/deathstar:80" -j REDIRECT --to-ports 15080',
    '-A L7GUARD -d 10.244.1.5/32 -p tcp -m tcp --dport 8080 -m comment --comment "default/deathstar-1 http" -j REDIRECT --to-ports 15081',
    `-I PREROUTING 1 ${J}`,
    `-I OUTPUT 1 -m owner ! --uid-owner 1000 ${J}`,
    'COMMIT',
    '',
  ].join('\n');
  const cases: { name: string; redirects: Redirect[]; opts?: Parameters<typeof renderRules>[1]; want: string }[] = [
    { name: 'two redirects, empty table', redirects: [DS, POD], opts: { outputExcludeUid: 1000 }, want: two },
    { name: 'same set, other order, a duplicate', redirects: [POD, DS, { ...POD }], opts: { outputExcludeUid: 1000 }, want: two },
    {
      name: 'numeric IP order (10.9 < 10.10), then port',
      redirects: [
        { ip: '10.10.0.1', port: 80, toPort: 2, comment: 'b' },
        { ip: '10.9.0.1', port: 443, toPort: 3, comment: 'c' },
        { ip: '10.9.0.1', port: 80, toPort: 1, comment: 'a' },
      ],
      opts: { hooks: ['PREROUTING'] },
      want: [
        '*nat',
        ':L7GUARD - [0:0]',
        '-A L7GUARD -d 10.9.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment "a" -j REDIRECT --to-ports 1',
        '-A L7GUARD -d 10.9.0.1/32 -p tcp -m tcp --dport 443 -m comment --comment "c" -j REDIRECT --to-ports 3',
        '-A L7GUARD -d 10.10.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment "b" -j REDIRECT --to-ports 2',
        `-I PREROUTING 1 ${J}`,
        'COMMIT',
        '',
      ].join('\n'),
    },
    {
      name: 'empty set: the chain emptied, jumps kept; own chain name; no owner exclusion',
      redirects: [],
      opts: { chain: 'L7G-X' },
      want: ['*nat', ':L7G-X - [0:0]', '-I PREROUTING 1 -m comment --comment "l7guard interception" -j L7G-X', '-I OUTPUT 1 -m comment --comment "l7guard interception" -j L7G-X', 'COMMIT', ''].join('\n'),
    },
    {
      name: 'jumps already first and exact: not touched',
      redirects: [DS],
      opts: { outputExcludeUid: 7, current: `*nat\n:PREROUTING ACCEPT [3:180]\n:OUTPUT ACCEPT [0:0]\n:L7GUARD - [0:0]\n-A PREROUTING -m comment --comment "l7guard interception" -j L7GUARD\n-A PREROUTING -j KUBE-SERVICES\n-A OUTPUT -m owner ! --uid-owner 7 ${J}\nCOMMIT\n` },
      want: ['*nat', ':L7GUARD - [0:0]', '-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/deathstar:80" -j REDIRECT --to-ports 15080', 'COMMIT', ''].join('\n'),
    },
    {
      name: 'a jump not first (kube-proxy prepended), a duplicate, an old form, a hook no longer wanted',
      redirects: [DS],
      opts: {
        hooks: ['PREROUTING'],
        current: ['*nat', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':L7GUARD - [0:0]', '-A PREROUTING -j KUBE-SERVICES', `-A PREROUTING ${J}`, '-A PREROUTING -j L7GUARD', `-A OUTPUT ${J}`, 'COMMIT', ''].join('\n'),
      },
      want: [
        '*nat',
        ':L7GUARD - [0:0]',
        '-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/deathstar:80" -j REDIRECT --to-ports 15080',
        `-D PREROUTING ${J}`,
        '-D PREROUTING -j L7GUARD',
        `-D OUTPUT ${J}`,
        `-I PREROUTING 1 ${J}`,
        'COMMIT',
        '',
      ].join('\n'),
    },
  ];
  for (const c of cases) {
    const got = renderRules(c.redirects, c.opts);
    t.equal(got, c.want, c.name);
    t.equal(renderRules(c.redirects, c.opts), got, `${c.name}: twice the same`);
  }
  // The rendered chain compares equal to iptables-save's spelling (quotes only where needed).
  const saved = `*nat\n:L7GUARD - [0:0]\n-A PREROUTING ${J}\n-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment default/deathstar:80 -j REDIRECT --to-ports 15080\nCOMMIT\n`;
  t.equal(planApply([DS], { hooks: ['PREROUTING'], current: saved }).upToDate, true, 'installed as iptables-save prints it: up to date');
  t.equal(planApply([DS, POD], { hooks: ['PREROUTING'], current: saved }).upToDate, false, 'one more redirect: not up to date');
  t.equal(planApply([DS], { current: saved }).upToDate, false, 'OUTPUT jump missing: not up to date');
});

t.test('bad input is refused before anything runs', async (t) => {
  const bad: [string, Redirect[], RegExp][] = [
    ['IPv6', [{ ...DS, ip: 'fd00::10' }], /IPv4/],
    ['not an IP', [{ ...DS, ip: '10.96.0.256' }], /IPv4/],
    ['port 0', [{ ...DS, port: 0 }], /1–65535/],
    ['toPort 65536', [{ ...DS, toPort: 65536 }], /1–65535/],
    ['fractional port', [{ ...DS, port: 80.5 }], /1–65535/],
    ['same destination, two ports', [DS, { ...DS, toPort: 15099 }], /already redirected/],
    ['same destination, two comments', [DS, { ...DS, comment: 'other' }], /already redirected/],
    ['two destinations, one listener port', [DS, { ...POD, toPort: DS.toPort }], /already receives 10\.96\.0\.10:80/],
  ];
  for (const [name, redirects, msg] of bad) {
    t.throws(() => renderRules(redirects), { code: 'L7G_ERR_IPTABLES_INPUT', message: msg }, name);
  }
  // Comments are labels: never a reason to fail the whole set.
  const commentOf = (comment: string) => /--comment "([^"]*)" -j REDIRECT/.exec(renderRules([{ ...DS, comment }]))?.[1];
  t.equal(commentOf('a"b\\c\nd\u00e9'), 'a_b_c_d_', 'quote, backslash, newline, non-ASCII: each replaced by _');
  t.equal(commentOf(''), '-', 'an empty comment becomes -');
  t.equal(commentOf('x'.repeat(300)), 'x'.repeat(255), 'cut to 255 characters (xt_comment)');
  for (const chain of ['', 'PREROUTING', 'ACCEPT', 'with space', '-L7', 'X'.repeat(29), 'a;b']) {
    t.throws(() => renderRules([], { chain }), { code: 'L7G_ERR_IPTABLES_INPUT' }, `chain "${chain}"`);
  }
  t.throws(() => new IptablesManager({ chain: 'OUTPUT' }), { code: 'L7G_ERR_IPTABLES_INPUT' }, 'the manager checks the chain too');
  const m = new IptablesManager({ saveBin: '/nonexistent/iptables-save', onExec: () => t.fail('nothing may run') });
  await t.rejects(m.apply([{ ...DS, ip: '::1' }]), { code: 'L7G_ERR_IPTABLES_INPUT' }, 'apply rejects, running nothing');
});

t.test('parsing iptables-save and planning cleanup', async (t) => {
  t.same(tokenize('-m comment --comment "a b \\"c\\"" -j X'), ['-m', 'comment', '--comment', 'a b "c"', '-j', 'X']);
  t.same(tokenize('--comment ""  -j X'), ['--comment', '', '-j', 'X'], 'an empty quoted string is a token');
  const dump = [
    '# Generated by iptables-save v1.8.9',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    '-A INPUT -j L7GUARD',
    'COMMIT',
    '*nat',
    ':PREROUTING ACCEPT [12:720]',
    ':OUTPUT ACCEPT [0:0]',
    ':L7GUARD - [0:0]',
    `-A PREROUTING ${J}`,
    '-A PREROUTING -j KUBE-SERVICES',
    `-A OUTPUT -m owner ! --uid-owner 1000 ${J}`,
    '-A L7GUARD -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment x -j REDIRECT --to-ports 15080',
    'COMMIT',
    '',
  ].join('\n');
  const nat = parseSave(dump);
  t.equal(nat.present, true);
  t.same([...nat.chains.keys()], ['PREROUTING', 'OUTPUT', 'L7GUARD'], 'only the nat table, in order');
  t.equal(nat.chains.get('L7GUARD')?.length, 1);
  const plan = planCleanup(dump);
  t.equal(plan.input, ['*nat', `-D PREROUTING ${J}`, `-D OUTPUT -m owner ! --uid-owner 1000 ${J}`, ':L7GUARD - [0:0]', '-X L7GUARD', 'COMMIT', ''].join('\n'), 'jumps deleted by their text, then the chain emptied and deleted; the filter table is not mentioned');
  t.same(plan.jumps, [`-A PREROUTING ${J}`, `-A OUTPUT -m owner ! --uid-owner 1000 ${J}`]);
  t.equal(plan.rules, 1);
  t.equal(planCleanup('*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n').input, undefined, 'nothing of ours: nothing to do');
  t.equal(planCleanup('').input, undefined, 'no nat table at all: nothing to do');
  t.throws(() => planCleanup('*nat\n:L7GUARD - [0:0]\n:KUBE-X - [0:0]\n-A KUBE-X -j L7GUARD\nCOMMIT\n'), { code: 'L7G_ERR_IPTABLES_IN_USE', message: /-A KUBE-X -j L7GUARD/ }, 'a user chain jumping to ours: refused, named');
  t.equal(normalizeSave('# x\n:A ACCEPT [5:300]\n\n-A A -j B\n'), ':A ACCEPT [0:0]\n-A A -j B', 'normalizeSave drops comments and counters');
  t.same(binaries('nft'), { save: 'iptables-nft-save', restore: 'iptables-nft-restore' });
  t.same(binaries('legacy'), { save: 'iptables-legacy-save', restore: 'iptables-legacy-restore' });
  t.same(binaries(undefined), { save: 'iptables-save', restore: 'iptables-restore' });
});

// ---------------------------------------------------------------------------------------------
// In network namespaces.

const tag = runTag('ipt');
const support = netnsSupport(tag);

/** What other agents own: none of it may change. A filter rule too (the filter table is never mentioned). */
const PLANTED = [
  '*filter',
  '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
  'COMMIT',
  '*nat',
  ':KUBE-SERVICES - [0:0]',
  ':DOCKER - [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
  '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
  '-A DOCKER -i docker0 -j RETURN',
  '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j DNAT --to-destination 10.244.9.9:6443',
  'COMMIT',
  '',
].join('\n');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(argv: readonly string[], input?: string): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, timeout: 15_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error?.message ?? '') };
}

/** A bare namespace of our own; every iptables command of the test goes through `exec`. */
class Ns {
  constructor(readonly ip: string, readonly name: string) {}
  static create(ip: string, name: string): Ns {
    const r = run([ip, 'netns', 'add', name]);
    if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    return new Ns(ip, name);
  }
  get prefix(): string[] {
    return [this.ip, 'netns', 'exec', this.name];
  }
  exec(argv: readonly string[], input?: string): Run {
    return run([...this.prefix, ...argv], input);
  }
  destroy(): void {
    run([this.ip, 'netns', 'del', this.name]);
  }
}

const VARIANTS: { label: string; backend: Backend | undefined }[] = [
  { label: 'iptables', backend: undefined },
  { label: 'iptables-nft', backend: 'nft' },
  { label: 'iptables-legacy', backend: 'legacy' },
];

const A: Redirect[] = [DS, POD, { ip: '10.244.2.7', port: 9090, toPort: 15082, comment: 'monitoring/prometheus-0 web' }];
// B: POD dropped, DS to another port, one new.
const B: Redirect[] = [{ ...DS, toPort: 15090, comment: 'default/deathstar:80 v2' }, A[2]!, { ip: '10.96.5.5', port: 443, toPort: 15091, comment: 'kube-system/metrics-server:https' }];

const natLines = (save: string, chain: string) => save.split('\n').filter((l) => l.startsWith(`-A ${chain} `));

if (!support.ok) {
  if (process.env.CI === 'true') t.fail(`iptables namespace tests cannot run in CI: ${support.reason}`);
  else t.pass(`skipped: ${support.reason}`, { skip: support.reason });
} else {
  const { ip } = support.tools;

  for (const v of VARIANTS) {
    t.test(`apply and cleanup with ${v.label}`, async (t) => {
      const bins = binaries(v.backend);
      const missing = [bins.save, bins.restore].filter((b) => which(b) === undefined);
      if (missing.length > 0) {
        if (v.backend === undefined && process.env.CI === 'true') t.fail(`${missing.join(', ')} not installed`);
        else t.pass(`skipped: ${missing.join(', ')} not installed`, { skip: true });
        return;
      }
      const ns = Ns.create(ip, `${tag}-${v.label.replace('iptables', 'x')}`);
      t.teardown(() => ns.destroy());
      const probe = ns.exec([bins.save, '-t', 'nat']);
      if (probe.code !== 0) {
        if (v.backend === undefined && process.env.CI === 'true') t.fail(`${bins.save} unusable: ${probe.stderr}`);
        else t.pass(`skipped: ${bins.save} unusable here: ${probe.stderr.trim()}`, { skip: true });
        return;
      }
      const saveAll = () => {
        const r = ns.exec([bins.save]);
        if (r.code !== 0) throw new Error(`${bins.save}: ${r.stderr}`);
        return r.stdout;
      };
      const planted = ns.exec([bins.restore, '--noflush'], PLANTED);
      t.equal(planted.code, 0, `planted kube-proxy/Docker-like rules: ${planted.stderr}`);
      const baseline = normalizeSave(saveAll());
      const foreign = (s: string) => normalizeSave(s).split('\n').filter((l) => !/L7GUARD/.test(l)).join('\n');

      const execs: { argv: readonly string[]; input: string | undefined }[] = [];
      const m = new IptablesManager({ backend: v.backend, prefix: ns.prefix, outputExcludeUid: 4242, onExec: (argv, input) => execs.push({ argv, input }) });
      const restores = () => execs.filter((e) => e.argv.includes(bins.restore));

      await t.test('apply installs exactly the rules, and one jump per hook, first', async (t) => {
        const current = await m.save();
        execs.length = 0;
        const r = await m.apply(A);
        t.same(r, { changed: true, rules: 3, jumpsAdded: ['PREROUTING', 'OUTPUT'], jumpsRemoved: [] });
        t.equal(restores().length, 1, 'one restore');
        const restore = restores()[0]!;
        t.same(restore.argv, [...ns.prefix, bins.restore, '--noflush', '--wait=5'], 'iptables-restore --noflush --wait=5 (the xtables lock)');
        t.equal(restore.input, renderRules(A, { outputExcludeUid: 4242, current }), 'its input is renderRules of the state it read');
        const save = saveAll();
        t.same(natLines(save, 'L7GUARD'), planApply(A).rules, 'the chain holds exactly the rendered rules, as rendered');
        const pre = natLines(save, 'PREROUTING');
        const out = natLines(save, 'OUTPUT');
        t.equal(pre[0], `-A PREROUTING ${J}`, 'PREROUTING jumps to L7GUARD first');
        t.equal(out[0], `-A OUTPUT -m owner ! --uid-owner 4242 ${J}`, 'OUTPUT jumps to L7GUARD first, except uid 4242');
        t.equal(pre.filter((l) => l.endsWith('-j L7GUARD')).length, 1, 'one PREROUTING jump');
        t.equal(out.filter((l) => l.endsWith('-j L7GUARD')).length, 1, 'one OUTPUT jump');
        t.equal(foreign(save), baseline, 'every other chain, rule and table is as planted');
      });

      await t.test('apply with the same set changes nothing and runs no restore', async (t) => {
        const before = normalizeSave(saveAll());
        const n = restores().length;
        const r = await m.apply([...A].reverse());
        t.same(r, { changed: false, rules: 3, jumpsAdded: [], jumpsRemoved: [] });
        t.equal(restores().length, n, 'no iptables-restore');
        t.equal(normalizeSave(saveAll()), before, 'iptables-save unchanged');
      });

      await t.test('a changed set replaces the chain in one restore, foreign rules untouched', async (t) => {
        const n = restores().length;
        const r = await m.apply(B);
        t.same(r, { changed: true, rules: 3, jumpsAdded: [], jumpsRemoved: [] }, 'jumps left alone');
        t.equal(restores().length, n + 1, 'one restore');
        const input = restores().at(-1)!.input!;
        t.match(input, /^\*nat\n:L7GUARD - \[0:0\]\n(-A L7GUARD [^\n]+\n){3}COMMIT\n$/, 'declares (so flushes) L7GUARD and refills it, nothing else');
        const save = saveAll();
        t.same(natLines(save, 'L7GUARD'), planApply(B).rules, 'the chain is exactly B');
        t.equal(foreign(save), baseline, 'foreign chains and rules untouched');
      });

      await t.test('never observed half-applied while sets alternate', async (t) => {
        const want = [planApply(A).rules, planApply(B).rules].map((r) => r.join('\n'));
        let done = false;
        const seen: string[] = [];
        const sampler = (async () => {
          while (!done) {
            const { stdout } = await execFileP(ns.prefix[0]!, [...ns.prefix.slice(1), bins.save, '-t', 'nat']);
            seen.push(natLines(stdout, 'L7GUARD').join('\n') + `\n#jumps ${natLines(stdout, 'PREROUTING').filter((l) => l.endsWith('-j L7GUARD')).length}`);
          }
        })();
        for (let i = 0; i < 8; i++) await m.apply(i % 2 === 0 ? A : B);
        done = true;
        await sampler;
        t.ok(seen.length > 0, `${seen.length} snapshots taken during 8 applies`);
        const odd = seen.filter((s) => !want.some((w) => s === `${w}\n#jumps 1`));
        t.same(odd, [], 'every snapshot is all of A or all of B, jumped to once');
      });

      await t.test('kube-proxy prepending its jump, and a duplicate of ours: reconciled in one restore', async (t) => {
        const kube = ['-I', 'PREROUTING', '1', '-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'KUBE-SERVICES'];
        const ipt = v.backend === undefined ? 'iptables' : `iptables-${v.backend}`;
        t.equal(ns.exec([ipt, '-w', '-t', 'nat', ...kube]).code, 0, 'kube-proxy restarted and prepended');
        t.equal(ns.exec([ipt, '-w', '-t', 'nat', '-A', 'OUTPUT', '-j', 'L7GUARD']).code, 0, 'a stray jump of an old instance');
        const n = restores().length;
        const r = await m.apply(B);
        t.equal(restores().length, n + 1, 'one restore');
        t.same(r.jumpsAdded, ['PREROUTING', 'OUTPUT']);
        t.same(r.jumpsRemoved, [`-A PREROUTING ${J}`, `-A OUTPUT -m owner ! --uid-owner 4242 ${J}`, '-A OUTPUT -j L7GUARD']);
        const save = saveAll();
        const pre = natLines(save, 'PREROUTING');
        t.equal(pre[0], `-A PREROUTING ${J}`, 'ours first again');
        t.equal(pre[1], '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', "kube-proxy's prepended jump kept, second");
        t.equal(natLines(save, 'OUTPUT').filter((l) => /-j L7GUARD$/.test(l)).length, 1, 'one OUTPUT jump');
        t.equal(ns.exec([ipt, '-w', '-t', 'nat', '-D', 'PREROUTING', ...kube.slice(3)]).code, 0, '(test: the prepended jump removed again)');
      });

      await t.test('another agent writing between our save and restore: the restore fails whole, one retry', async (t) => {
        const ipt = v.backend === undefined ? 'iptables' : `iptables-${v.backend}`;
        t.equal(ns.exec([ipt, '-w', '-t', 'nat', '-I', 'PREROUTING', '1', '-j', 'KUBE-SERVICES']).code, 0, 'our PREROUTING jump is no longer first');
        let raced = false;
        const racing = new IptablesManager({
          backend: v.backend,
          prefix: ns.prefix,
          outputExcludeUid: 4242,
          onExec: (argv, input) => {
            execs.push({ argv, input });
            if (raced || !argv.includes(bins.restore)) return;
            raced = true;
            // Between our iptables-save and iptables-restore, someone deletes the jump our input deletes too.
            const del = ns.exec([ipt, '-w', '-t', 'nat', '-D', 'PREROUTING', ...tokenize(J)]);
            t.equal(del.code, 0, 'the racing agent removed our jump');
          },
        });
        const from = execs.length;
        const r = await racing.apply(B);
        const kinds = execs.slice(from).map((e) => (e.argv.includes(bins.restore) ? 'restore' : 'save'));
        t.same(kinds, ['save', 'restore', 'save', 'restore'], 'save, failed restore, save (changed under us), restore');
        t.same(r.jumpsAdded, ['PREROUTING'], 'the retry only had to insert the jump');
        const pre = natLines(saveAll(), 'PREROUTING');
        t.equal(pre[0], `-A PREROUTING ${J}`, 'ours first');
        t.equal(pre.filter((l) => l.endsWith('-j L7GUARD')).length, 1, 'once');
        t.same(natLines(saveAll(), 'L7GUARD'), planApply(B).rules, 'the chain is B');
        t.equal(ns.exec([ipt, '-w', '-t', 'nat', '-D', 'PREROUTING', '-j', 'KUBE-SERVICES']).code, 0, '(test: the extra jump removed again)');
      });

      await t.test('calls are serialised', async (t) => {
        const from = execs.length;
        const results = await Promise.all([m.apply(A), m.apply(B), m.cleanup(), m.apply(A)]);
        t.same(results.map((r) => ('changed' in r ? r.changed : r.removed)), [true, true, true, true]);
        const kinds = execs.slice(from).map((e) => (e.argv.includes(bins.restore) ? 'restore' : 'save'));
        t.same(kinds, ['save', 'restore', 'save', 'restore', 'save', 'restore', 'save', 'restore'], 'each call ran its save and restore before the next began');
        t.same(natLines(saveAll(), 'L7GUARD'), planApply(A).rules, 'the last call won');
      });

      await t.test('cleanup leaves iptables-save exactly as before the first apply', async (t) => {
        const r = await m.cleanup();
        t.same(r, { removed: true, chain: 'L7GUARD', chainExisted: true, rules: 3, jumps: [`-A PREROUTING ${J}`, `-A OUTPUT -m owner ! --uid-owner 4242 ${J}`] });
        t.equal(normalizeSave(saveAll()), baseline, 'all tables as planted, nothing of ours left');
        const n = restores().length;
        t.same(await m.cleanup(), { removed: false, chain: 'L7GUARD', chainExisted: false, rules: 0, jumps: [] }, 'again: nothing to remove, success');
        t.equal(restores().length, n, 'and no restore ran');
        t.equal(normalizeSave(saveAll()), baseline);
      });

      await t.test('failures are typed and carry stderr', async (t) => {
        const gone = new IptablesManager({ backend: v.backend, prefix: [ip, 'netns', 'exec', `${tag}-does-not-exist`] });
        const err = await gone.apply(A).catch((e: unknown) => e);
        t.type(err, IptablesError);
        t.equal((err as IptablesError).code, 'L7G_ERR_IPTABLES');
        t.match((err as IptablesError).stderr, /does-not-exist/, 'stderr of the failed command');
        t.match((err as IptablesError).details.argv, [ip, 'netns', 'exec']);
        const notFound = await new IptablesManager({ prefix: ns.prefix, saveBin: 'iptables-save-nonexistent' }).cleanup().catch((e: unknown) => e);
        t.match(notFound, { code: 'L7G_ERR_IPTABLES' });
        // A restore that fails (its -D finds nothing: the jump was removed behind our back) changes nothing.
        await m.apply(A);
        const before = normalizeSave(saveAll());
        const input = `*nat\n-D PREROUTING -j NOT-THERE\n:L7GUARD - [0:0]\nCOMMIT\n`;
        const failed = ns.exec([bins.restore, '--noflush'], input);
        t.not(failed.code, 0, 'a restore with a failing line fails');
        t.equal(normalizeSave(saveAll()), before, '... and changed nothing (L7GUARD not flushed): one transaction');
        await m.cleanup();
        t.equal(normalizeSave(saveAll()), baseline);
      });
    });
  }

  t.test('traffic: IP:PORT lands on the local listener at TOPORT', async (t) => {
    const topo = await NetnsTopology.create(support.tools, `${tag}-tr`, [
      { role: 'c', name: 'client' },
      { role: 's', name: 'server' },
    ]);
    const m = new IptablesManager({ prefix: [ip, 'netns', 'exec', topo.node], outputExcludeUid: 4242 });
    t.teardown(async () => {
      await m.cleanup().catch(() => undefined);
      await topo.destroy();
    });
    const c = topo.pod('c');
    const s = topo.pod('s');
    const clusterIP = '10.96.0.10';
    // The node routes the Service range somewhere, as a real node's default route does (here: to the
    // server pod, which does not forward): without a route, connect() fails before nat OUTPUT is reached.
    const route = await topo.exec(topo.node, [ip, 'route', 'add', '10.96.0.0/12', 'via', s.ip]);
    t.equal(route.code, 0, `node: ip route add 10.96.0.0/12 via ${s.ip} ${route.stderr}`);
    const listeners = await Promise.all([startServers(topo, topo.node, 'l7guard', [15080, 15081]), startServers(topo, s.netns, 'backend', [8080])]);
    t.ok(listeners, 'the node listens on 15080 and 15081, the server pod on 8080');
    const connect = async (netns: string, dstIP: string, port: number, opts: { uid?: number; timeoutMs?: number } = {}) => {
      const r = await topo.exec(netns, [process.execPath, '-e', CLIENT, dstIP, String(port), String(opts.uid ?? ''), String(opts.timeoutMs ?? 3000)]);
      return r.stdout.trim() || `ERR exit ${String(r.code)} ${r.stderr}`;
    };

    t.equal(await connect(c.netns, s.ip, 8080), `backend 8080 ${c.ip} ${s.ip}`, 'before: the pod reaches the server pod directly');

    await m.apply([
      { ip: clusterIP, port: 80, toPort: 15080, comment: 'default/deathstar:80' },
      { ip: s.ip, port: 8080, toPort: 15081, comment: 'default/server http' },
    ]);
    t.equal(await connect(c.netns, clusterIP, 80), `l7guard 15080 ${c.ip} ${c.gateway}`, 'pod -> clusterIP:80 lands on the node at 15080 (PREROUTING)');
    t.equal(await connect(c.netns, s.ip, 8080), `l7guard 15081 ${c.ip} ${c.gateway}`, 'pod -> podIP:8080 lands on the node at 15081 (PREROUTING)');
    t.equal(await connect(c.netns, s.ip, 8081), `ERR ECONNREFUSED`, 'another port of that pod is not redirected (the pod refuses)');
    // OUTPUT: REDIRECT makes the destination 127.0.0.1; the source stays the one the first route lookup
    // chose (the node's address towards the original destination), so the proxy sees a node address.
    t.equal(await connect(topo.node, s.ip, 8080), `l7guard 15081 ${s.gateway} 127.0.0.1`, 'node process -> podIP:8080 lands on 127.0.0.1:15081 (OUTPUT)');
    t.equal(await connect(topo.node, clusterIP, 80), `l7guard 15080 ${s.gateway} 127.0.0.1`, 'node process -> clusterIP:80 lands on 127.0.0.1:15080 (OUTPUT)');
    t.equal(await connect(topo.node, s.ip, 8080, { uid: 4242 }), `backend 8080 ${s.gateway} ${s.ip}`, "the excluded uid (the proxy's own upstream connection) is not redirected");

    await m.cleanup();
    t.equal(await connect(c.netns, s.ip, 8080), `backend 8080 ${c.ip} ${s.ip}`, 'after cleanup: direct again');
    t.equal(await connect(topo.node, s.ip, 8080), `backend 8080 ${s.gateway} ${s.ip}`, 'after cleanup: from the node too');
    t.match(await connect(c.netns, clusterIP, 80, { timeoutMs: 500 }), /^ERR /, 'after cleanup: the clusterIP leads nowhere (no kube-proxy here)');
    await topo.destroy();
    t.same(topo.leftovers(), [], 'every namespace this test made is gone');
  });
}

/** A TCP server per port answering "<name> <port> <remote address> <local address>\n" and closing. */
const SERVERS = `
const net = require('node:net');
const [name, ...ports] = process.argv.slice(1);
let up = 0;
for (const p of ports) {
  net.createServer((s) => s.end(name + ' ' + p + ' ' + s.remoteAddress + ' ' + s.localAddress + '\\n'))
    .listen(Number(p), '0.0.0.0', () => { if (++up === ports.length) process.stdout.write('ready\\n'); });
}
`;

/** Connects (as uid if given), prints what the server said, or "ERR <code>". */
const CLIENT = `
const net = require('node:net');
const [ip, port, uid, timeout] = process.argv.slice(1);
if (uid !== '') process.setuid(Number(uid));
const s = net.connect({ host: ip, port: Number(port) });
s.setTimeout(Number(timeout));
let buf = '';
s.setEncoding('utf8');
s.on('data', (d) => (buf += d));
s.on('end', () => { process.stdout.write(buf); process.exit(0); });
s.on('timeout', () => { process.stdout.write('ERR timeout\\n'); process.exit(0); });
s.on('error', (e) => { process.stdout.write('ERR ' + e.code + '\\n'); process.exit(0); });
`;

function startServers(topo: NetnsTopology, netns: string, name: string, ports: number[]): Promise<ChildProcess> {
  const child = topo.spawn(netns, [process.execPath, '-e', SERVERS, name, ...ports.map(String)]);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('ready\n')) resolve(child);
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('exit', (code) => reject(new Error(`servers ${name} in ${netns} exited ${String(code)}: ${err}`)));
  });
}
