/** CPU time and memory of processes, from /proc (Linux). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in microseconds. */
export function cpuMicros(pid) {
  const { user, sys } = cpuSplitMicros(pid);
  return user + sys;
}

/** utime and stime of a process apart, in microseconds: where a proxy's CPU goes (its code or the kernel's). */
export function cpuSplitMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces: fields are counted after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1e6) / CLK_TCK, sys: (Number(f[12]) * 1e6) / CLK_TCK };
}

export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export const sum = (pids, f) => pids.reduce((a, p) => a + f(p), 0);

/** Pin a process and all its threads to the given CPU list (taskset from util-linux). */
export function pin(pid, cpus) {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export function canPin() {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return true;
}
