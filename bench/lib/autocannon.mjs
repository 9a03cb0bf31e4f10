/**
 * `--autocannon`: the scenarios one source address can drive, loaded by autocannon instead of our
 * own load worker — what users run. autocannon cannot bind a source address, so its requests come
 * from 127.0.0.1, tiefighter's Pod IP in the bench's cluster state: `allowed` (POST
 * /v1/request-landing) and `denied` (PUT /v1/exhaust-port, 403). The command line is built here
 * and printed per run, so docs/benchmarks.md quotes exactly what ran.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pin } from './proc.mjs';

/** The scenarios autocannon can drive: method and path, all from 127.0.0.1 (tiefighter). */
export const AUTOCANNON_SCENARIOS = {
  allowed: { method: 'POST', path: '/v1/request-landing' },
  denied: { method: 'PUT', path: '/v1/exhaust-port' },
};

const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

/** autocannon's arguments for one scenario against HOST:PORT (`--json`: one result object on stdout). */
export function autocannonArgs(scenario, { host, port, authority, connections, durationS }) {
  const s = AUTOCANNON_SCENARIOS[scenario];
  return ['-c', String(connections), '-d', String(durationS), '-m', s.method, '-H', `Host=${authority}`, '-H', 'Content-Length=0', '--json', `http://${host}:${port}${s.path}`];
}

/** Runs autocannon as a child process (pinned with the load generator when `cpu` is set); resolves to its JSON result. */
export function runAutocannon(args, { cpu } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (cpu !== undefined) pin(child.pid, cpu);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (err += s));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`autocannon printed no JSON result: ${out.slice(-500)} ${err.slice(-500)}`));
      }
    });
  });
}
