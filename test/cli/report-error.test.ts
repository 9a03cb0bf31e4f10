// One error style across commands: what could not be done is `l7guard <command>: <what>` on stderr,
// exit 1, a hint line at most, never a stack trace. The real CLI, as child processes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../helpers/serve.js';

t.setTimeout(400_000);

const dir = mkdtempSync(join(tmpdir(), 'l7guard-errors-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const missing = join(dir, 'missing.yaml');
// Port 1 on loopback: nothing listens there, the connection is refused at once.
const DOWN = '127.0.0.1:1';
const REFUSED_HINT = "Is l7guard serve running? --server names its --admin address (default 127.0.0.1:9901).\n";

const cases: [args: string[], stderr: string][] = [
  [['apply', '-f', missing], `l7guard apply: -f ${missing}: no such file or directory\n`],
  [['apply', '-f', dir], `l7guard apply: -f ${dir}: the folder has no .yaml, .yml or .json file\n`],
  [['observe', '--input-file', missing], `l7guard observe: --input-file ${missing}: no such file or directory\n`],
  [['observe', '--server', DOWN], `l7guard observe: cannot reach the admin API at ${DOWN}: connection refused\n${REFUSED_HINT}`],
  [['policy', 'get', '--server', DOWN], `l7guard policy: cannot reach the admin API at ${DOWN}: connection refused\n${REFUSED_HINT}`],
  [['endpoint', 'list', '--server', `unix:${join(dir, 'admin.sock')}`], `l7guard endpoint: cannot reach the admin API at unix:${join(dir, 'admin.sock')}: no such file or directory\n${REFUSED_HINT}`],
  [['delete', 'cnp', 'rule1', '--server', DOWN], `l7guard delete: cannot reach the admin API at ${DOWN}: connection refused\n${REFUSED_HINT}`],
  [['certs', 'issue', 'web', '--dns', 'web', '--dir', dir], `l7guard certs: ${join(dir, 'ca.crt')} not found (run "l7guard certs init --dir ${dir}" first)\n`],
  [['serve', '-f', missing, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], `l7guard serve: policy load failed with 1 problem(s):\n  ${missing}: cannot read: ENOENT: no such file or directory, stat '${missing}'\n`],
];

t.test('what could not be done: l7guard <command>: …, exit 1, no stack', { timeout: 300_000 }, async (t) => {
  for (const [args, stderr] of cases) {
    const r = await runCli(args, 60_000);
    t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 1, stdout: '', stderr }, `l7guard ${args.join(' ')}`);
  }
});
