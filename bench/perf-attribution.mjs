/**
 * Where a proxy's CPU goes, from a Linux `perf` profile of it: kernel against user time, and the
 * user samples attributed to the innermost function of l7guard's own code (dist/) on their stack,
 * so Node's and V8's work is charged to the code of ours that asked for it. `--cpu-prof` cannot
 * say this: it samples wall time, and a write that wakes a backend on the same CPU shows as time
 * spent in the write. Record a profile during a bench run, then:
 *
 *   NODE_OPTIONS=--perf-basic-prof node bench.mjs --duration 8 --scenarios allowed --targets l7guard &
 *   sleep 5; perf record -e task-clock -F 1999 -g -p "$(pgrep -f 'bin/l7guard.js serve')" -o perf.data -- sleep 5
 *   perf script -i perf.data -F ip,sym,dso > perf.txt
 *   node perf-attribution.mjs perf.txt [CPU µs per request, to print µs as well as %]
 */
import { readFileSync } from 'node:fs';

const [file, perReqArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node perf-attribution.mjs PERF_SCRIPT_OUTPUT [CPU_US_PER_REQUEST]\n');
  process.exit(2);
}
const perReq = Number(perReqArg ?? 0);
const OWN = /JS:\S*?(\S*) file:\/\/\/\S*?\/dist\/(\S+?):\d+:\d+/;

let user = 0;
let kernel = 0;
const byFile = new Map();
const byFunction = new Map();
const add = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);
for (const sample of readFileSync(file, 'utf8').split('\n\n')) {
  const frames = sample.split('\n').map((l) => l.trim()).filter(Boolean);
  if (frames.length === 0) continue;
  if (frames[0].includes('[kernel.kallsyms]')) {
    kernel++;
    continue;
  }
  user++;
  let own;
  for (const f of frames) if ((own = OWN.exec(f)) !== null) break;
  add(byFile, own ? own[2] : '(Node and V8, no code of ours on the stack)');
  add(byFunction, own ? `${own[2]} ${own[1]}` : '(Node and V8, no code of ours on the stack)');
}
const total = user + kernel;
const pct = (n) => `${((100 * n) / total).toFixed(1).padStart(5)}%${perReq ? ` ${((perReq * n) / total).toFixed(2).padStart(6)} µs` : ''}`;
console.log(`${total} samples: kernel ${pct(kernel)}, user ${pct(user)}`);
for (const [title, m, n] of [['user samples by file of ours', byFile, 25], ['user samples by function of ours', byFunction, 40]]) {
  console.log(`--- ${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(v)}  ${k}`);
}
