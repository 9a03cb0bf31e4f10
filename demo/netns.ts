/**
 * Binding `<loopback ip>:80` needs root (or CAP_NET_BIND_SERVICE, or ip_unprivileged_port_start <= 80).
 * A normal user gets the same power inside a fresh user + network namespace, where it is root of an
 * empty network stack: `unshare --user --map-root-user --net`, then `ip link set lo up` (a new netns
 * has `lo` down). The demo re-executes itself there; its children inherit the namespace, and no
 * address or port of the host is touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { which } from './netns-topology.js';
import { endExitCode, onDemoEnd, type DemoEnd } from './on-end.js';

/** Set in the re-executed demo, so it does not try again. */
export const IN_NETNS_ENV = 'L7GUARD_DEMO_IN_NETNS';

export type NetPlan =
  | { readonly kind: 'direct'; readonly why: string }
  | { readonly kind: 'unshare'; readonly unshare: string; readonly ip: string }
  | { readonly kind: 'impossible'; readonly reason: string };

/** Can this process bind `ip:port` right now? */
export function canBind(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

export const NEEDS =
  'l7guard demo binds port 80 on 127.0.10.0/24 addresses. Run it as root (e.g. sudo), or allow unprivileged ' +
  'user namespaces so it can use its own network namespace (`unshare --user --map-root-user --net` must work: ' +
  'sysctl kernel.unprivileged_userns_clone=1, and on Ubuntu 23.10+ kernel.apparmor_restrict_unprivileged_userns=0), ' +
  'with util-linux `unshare` and iproute2 `ip` installed; or let unprivileged processes bind port 80 ' +
  '(sysctl net.ipv4.ip_unprivileged_port_start=80).';

/** Decides how the demo gets to bind `probeIp:80`. */
export async function planNetwork(probeIp: string, isolate: 'auto' | 'never'): Promise<NetPlan> {
  if (process.env[IN_NETNS_ENV] === '1') return { kind: 'direct', why: 'inside its own user + network namespace' };
  if (process.getuid?.() === 0) return { kind: 'direct', why: 'running as root' };
  if (await canBind(probeIp, 80)) return { kind: 'direct', why: `${probeIp}:80 is bindable without root` };
  if (isolate === 'never') return { kind: 'impossible', reason: `not root and cannot bind ${probeIp}:80. ${NEEDS}` };
  const unshare = which('unshare');
  const ip = which('ip');
  if (unshare === undefined || ip === undefined) {
    return { kind: 'impossible', reason: `not root, and ${unshare === undefined ? '`unshare`' : '`ip`'} is not installed. ${NEEDS}` };
  }
  const probe = spawnSync(unshare, ['--user', '--map-root-user', '--net', '--', ip, 'link', 'set', 'lo', 'up'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.error?.message || `exit ${String(probe.status)}`).trim();
    return { kind: 'impossible', reason: `not root, and \`unshare --user --map-root-user --net\` failed: ${why}. ${NEEDS}` };
  }
  return { kind: 'unshare', unshare, ip };
}

/**
 * Runs `node <script>` inside a new user + network namespace with `lo` up, copying its stdout into
 * `out`; resolves with its exit code. `env` is added to the child's environment.
 */
export function runInNetns(
  plan: { unshare: string; ip: string },
  script: string,
  out: NodeJS.WritableStream,
  env: Record<string, string>,
): Promise<number> {
  // "$0" is ip, "$@" the node command line: no path is interpolated into the shell text.
  const child = spawn(plan.unshare, [
    '--user', '--map-root-user', '--net', '--',
    '/bin/sh', '-c', '"$0" link set lo up && exec "$@"', plan.ip, process.execPath, script,
  ], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env, [IN_NETNS_ENV]: '1' } });
  child.stdout.pipe(out, { end: false });
  // unshare (no --fork) and sh both exec, so child.pid ends up being the demo's node process, which
  // cleans up however it is ended (demo-runner.ts). However this process is ended, it passes that
  // on and waits: a signal as that signal (a second Ctrl-C from the terminal is absorbed there), a
  // closed reader or an exception as SIGTERM, after which the child's output is read and dropped so
  // its clean-up never blocks on a full pipe.
  let ended: DemoEnd | undefined;
  const release = onDemoEnd(out, (end) => {
    ended = end;
    if (end.kind !== 'signal') {
      child.stdout.unpipe(out);
      child.stdout.resume();
    }
    if (end.kind === 'exception') process.stderr.write(`l7guard demo: internal error (a bug; cleaning up): ${(end.error as Error)?.stack ?? String(end.error)}\n`);
    child.kill(end.kind === 'signal' ? end.signal : 'SIGTERM');
  });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      release();
      out.write(`l7guard demo: cannot run ${plan.unshare}: ${err.message}\n`);
      resolve(2);
    });
    child.once('close', (code, signal) => {
      release();
      if (ended !== undefined && ended.kind !== 'signal') resolve(endExitCode(ended));
      else resolve(code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0)));
    });
  });
}
