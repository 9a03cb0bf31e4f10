/**
 * `l7guard demo`, the real CLI as a child process, ended from outside in each way a person ends it:
 * its reader goes away (`l7guard demo | head -70`: EPIPE), SIGTERM, SIGHUP (a closed terminal),
 * SIGINT (Ctrl-C), an exception nobody caught. Each time every process it started (the proxy, the
 * deathstar replicas) must be gone, the Service address free, the work folder removed (kept with
 * --keep), and a second demo must run to OK.
 *
 * Each run happens in a network namespace of its own (`unshare --net`, entered with `nsenter`), so
 * the demo's 127.0.10.0/24 addresses on port 80 meet no other test's; the demo's temporary folders
 * go to a TMPDIR of this test's. Needs root (for the namespace); otherwise says why and skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { cliPath } from '../helpers/serve.js';

/** buildCluster's default block: the deathstar Service's clusterIP, where the proxy listens on :80. */
const SERVICE = '127.0.10.100';
const LINES_BEFORE_CLOSING = 70;

// Six demos and a seventh that runs to the end: more than the default two minutes on a busy machine.
t.setTimeout(420_000);

const why = process.getuid?.() !== 0 ? 'needs root for a private network namespace (unshare --net)'
  : spawnSync('unshare', ['--net', '--', 'true']).status !== 0 ? '`unshare --net` does not work here'
  : spawnSync('nsenter', ['--version']).status !== 0 ? '`nsenter` is not installed' : undefined;

/** A network namespace with `lo` up, held by a `sleep` that the teardown ends. */
async function netns(t: Test): Promise<string> {
  const holder = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec sleep 600'], { stdio: 'ignore' });
  t.teardown(() => void holder.kill('SIGKILL'));
  const deadline = Date.now() + 10_000;
  // unshare and sh exec: once the pid is `sleep`, lo is up.
  while (!existsSync(`/proc/${holder.pid}/comm`) || readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim() !== 'sleep') {
    if (Date.now() > deadline || holder.exitCode !== null) throw new Error('the namespace holder did not start');
    await sleep(20);
  }
  return `/proc/${holder.pid}/ns/net`;
}

/** Every live process whose ancestry leads to `root` (read from /proc/PID/stat). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = statOf(Number(name));
    if (stat !== undefined && stat.state !== 'Z') parent.set(Number(name), stat.ppid);
  }
  return [...parent.keys()].filter((pid) => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  });
}

function statOf(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: state!, ppid: Number(ppid) };
}

const alive = (pid: number) => {
  const s = statOf(pid);
  return s !== undefined && s.state !== 'Z';
};

interface DemoRun {
  readonly child: ChildProcess;
  /** The transcript so far. */
  out(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(t: Test, net: string, tmp: string, args: string[] = [], nodeArgs: string[] = []): DemoRun {
  const child = spawn('nsenter', [`--net=${net}`, '--', process.execPath, ...nodeArgs, cliPath, 'demo', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: tmp },
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stdout!.on('error', () => undefined);
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, out: () => out, stderr: () => err, exited };
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Can the namespace's 127.0.10.100:80 be bound now (what the next demo's proxy needs)? */
function serviceAddressFree(net: string): boolean {
  const probe = `require('net').createServer().once('error',()=>process.exit(1)).listen(80,'${SERVICE}',function(){this.close();})`;
  return spawnSync('nsenter', [`--net=${net}`, '--', process.execPath, '-e', probe], { timeout: 20_000 }).status === 0;
}

/**
 * Starts the demo, waits until its proxy and replicas run, ends it with `end`, and checks that it
 * left nothing behind. Returns the exit status and the processes it had started.
 */
async function endedDemo(t: Test, end: (run: DemoRun) => void, opts: { args?: string[]; nodeArgs?: string[]; bug?: boolean } = {}) {
  const net = await netns(t);
  const tmp = mkdtempSync(join(tmpdir(), 'l7guard-demo-end-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const run = startDemo(t, net, tmp, opts.args, opts.nodeArgs);
  await until('the proxy to start', () => run.out().includes('# started the proxy:'), 60_000);
  const started = descendants(run.child.pid!);
  t.ok(started.length >= 3, `the demo runs its proxy and two replicas (${started.length} processes)`);
  t.equal(readdirSync(tmp).length, 1, 'and has its work folder');
  end(run);
  const status = await Promise.race([run.exited, sleep(30_000).then(() => undefined)]);
  t.ok(status !== undefined, 'the demo exits');
  await until('every process the demo started to end', () => started.every((p) => !alive(p)), 10_000).catch(() => undefined);
  t.same(started.filter(alive), [], 'no process the demo started is left');
  t.ok(serviceAddressFree(net), `${SERVICE}:80 is free again`);
  if (opts.bug !== true) t.notMatch(run.stderr(), /\n\s+at /, 'no stack trace');
  return { status: status!, tmp, net, run };
}

t.test('the demo ends with everything it started', { skip: why, timeout: 300_000 }, async (t) => {
  t.test('its reader goes away (l7guard demo | head -70): EPIPE', async (t) => {
    const { status, tmp, net } = await endedDemo(t, (run) => {
      // Read like head -70: the first 70 lines, then close the pipe.
      void until('70 lines', () => run.out().split('\n').length > LINES_BEFORE_CLOSING, 60_000).then(() => run.child.stdout!.destroy());
    });
    t.same(status, { code: 141, signal: null }, 'exit 141 (128 + SIGPIPE), as a shell reports a pipeline cut short');
    t.same(readdirSync(tmp), [], 'the work folder is removed');
    // The next demo binds what the last one used, and runs to the end.
    const again = startDemo(t, net, tmp);
    const second = await again.exited;
    t.equal(second.code, 0, 'a second demo runs to the end');
    t.match(again.out(), /\nOK: every outcome matches Cilium's/);
    t.same(readdirSync(tmp), [], 'the second demo removed its folder too');
  });

  for (const [signal, code] of [['SIGTERM', 143], ['SIGHUP', 129], ['SIGINT', 130]] as const) {
    t.test(signal, async (t) => {
      const { status, tmp, run } = await endedDemo(t, (r) => r.child.kill(signal));
      t.same(status, { code, signal: null }, `exit ${code} (128 + ${signal})`);
      t.match(run.out(), `\n# ${signal}: cleaning up\n`, 'says so');
      t.same(readdirSync(tmp), [], 'the work folder is removed');
    });
  }

  t.test('--keep: processes end, the folder stays and is named', async (t) => {
    const { status, tmp, run } = await endedDemo(t, (r) => r.child.kill('SIGTERM'), { args: ['--keep'] });
    t.equal(status.code, 143);
    const kept = readdirSync(tmp);
    t.equal(kept.length, 1, 'the work folder is kept');
    t.match(run.out(), `# kept the work folder: ${join(tmp, kept[0]!)}\n`);
    t.ok(existsSync(join(tmp, kept[0]!, 'cluster', 'cluster.yaml')), 'with what the demo wrote');
  });

  t.test('an exception nobody caught', async (t) => {
    // A module loaded into the demo's own process throws from an event handler when told to.
    const dir = mkdtempSync(join(tmpdir(), 'l7guard-demo-throw-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const thrower = join(dir, 'throw-on-usr2.mjs');
    writeFileSync(thrower, "process.on('SIGUSR2', () => { throw new Error('injected failure'); });\n");
    const { status, tmp, run } = await endedDemo(t, (r) => r.child.kill('SIGUSR2'), { nodeArgs: ['--import', thrower], bug: true });
    t.equal(status.code, 1, 'exit 1');
    t.match(run.stderr(), /^l7guard demo: internal error \(a bug; cleaning up\): Error: injected failure\n/, 'says what failed');
    t.same(readdirSync(tmp), [], 'the work folder is removed');
  });
});
