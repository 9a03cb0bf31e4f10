// `serve` refuses what it cannot honour before it serves, in one line that names the flag: the real
// CLI as a child process, its exit code and stderr, and no "listening" log line when it refused.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, repoRoot } from '../helpers/serve.js';

t.setTimeout(400_000);

const EXAMPLE = join(repoRoot, 'examples', 'quickstart');
const dir = mkdtempSync(join(tmpdir(), 'l7guard-serve-checks-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const serveCli = (args: string[]) => runCli(['serve', '-f', EXAMPLE, '--admin', '127.0.0.1:0', ...args], 60_000);

t.test('bad values are usage errors (exit 2) that say what is accepted; nothing starts', { timeout: 300_000 }, async (t) => {
  const cases: [string[], string][] = [
    [['--listen', '127.0.0.1:0', '--log-level', 'verbose'], 'l7guard serve: --log-level must be one of trace, debug, info, warn, error, fatal, silent, not "verbose"\n'],
    [['--listen', 'nonsense'], 'l7guard serve: --listen: invalid address "nonsense": expected HOST:PORT\n'],
    [['--listen', '127.0.0.1:99999'], 'l7guard serve: --listen: invalid address "127.0.0.1:99999": expected HOST:PORT\n'],
    [['--listen', '127.0.0.1:0', '--admin-readonly', 'bogus'], 'l7guard serve: --admin-readonly: invalid address "bogus": expected HOST:PORT\n'],
    [['--listen', '127.0.0.1:0', '--node-ip', 'notanip'], 'l7guard serve: --node-ip must be an IP address, not "notanip"\n'],
    [['--listen', '127.0.0.1:0', '--drain-timeout', 'soon'], 'l7guard serve: --drain-timeout must be a duration (30, 30s, 500ms), not "soon"\n'],
  ];
  for (const [args, line] of cases) {
    const r = await serveCli(args);
    t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 2, stdout: '', stderr: `${line}See 'l7guard serve --help'.\n` }, args.join(' '));
  }
});

t.test('--flows that cannot be written stops the start (exit 1), instead of losing every flow', { timeout: 300_000 }, async (t) => {
  const cases: [string, RegExp][] = [
    [join(dir, 'no-such-folder', 'flows.jsonl'), /^l7guard serve: --flows \S+no-such-folder\/flows\.jsonl: the folder \S+no-such-folder does not exist\n$/],
    [dir, /^l7guard serve: --flows \S+: it is a folder; give a file\n$/],
    // sysfs refuses new files even to root.
    ['/sys/l7guard-flows.jsonl', /^l7guard serve: --flows \/sys\/l7guard-flows\.jsonl: not writable \(permission denied or read-only file system\)\n$/],
  ];
  for (const [file, msg] of cases) {
    const r = await serveCli(['--listen', '127.0.0.1:0', '--flows', file]);
    t.equal(r.code, 1, file);
    t.match(r.stderr, msg);
    t.notMatch(r.stderr, /"msg":"listening"/, 'never listened');
  }
});

t.test('an address in use names its flag: the admin port says it is the admin port', { timeout: 300_000 }, async (t) => {
  const taken = net.createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.teardown(() => taken.close());
  const addr = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`;

  const admin = await runCli(['serve', '-f', EXAMPLE, '--listen', '127.0.0.1:0', '--admin', addr], 60_000);
  t.equal(admin.code, 1);
  t.equal(admin.stderr, `l7guard serve: --admin ${addr}: the admin address is already in use (another l7guard?); give --admin another HOST:PORT or unix:PATH\n`);

  const data = await runCli(['serve', '-f', EXAMPLE, '--listen', addr, '--admin', '127.0.0.1:0'], 60_000);
  t.equal(data.code, 1);
  t.equal(data.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n'),
    `l7guard serve: --listen ${addr}: the address is already in use (another l7guard or proxy?)\n`, 'the data-plane port names --listen');

  const workers = await runCli(['serve', '-f', EXAMPLE, '--listen', addr, '--admin', '127.0.0.1:0', '--workers', '2'], 60_000);
  t.equal(workers.code, 1);
  t.match(workers.stderr, `l7guard serve: --listen ${addr}: the address is already in use`, 'also when a worker failed to bind');
});
