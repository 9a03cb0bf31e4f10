/**
 * What `serve` checks before it opens anything, and how it words a failure to start: every message
 * names the flag the operator has to change (`--admin 127.0.0.1:9901: the address is in use ...`).
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { parseHostPort } from '../proxy/admin/server.js';
import { planDataPlane } from '../proxy/data-plane.js';
import type { InterceptionOptions } from '../proxy/listen/original-destination.js';
import { CliError } from './cli-error.js';
import { UsageError } from './usage-error.js';

/** pino's levels; `--log-level` documents the first five. */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface AddressFlags {
  readonly listen?: readonly string[] | undefined;
  readonly admin?: string | undefined;
  readonly 'admin-readonly'?: string | undefined;
  readonly 'node-ip'?: readonly string[] | undefined;
  readonly 'listen-tls'?: readonly string[] | undefined;
  readonly redirect?: readonly string[] | undefined;
}

/** `--log-level`, or L7GUARD_LOG_LEVEL when the flag is absent, must be a level pino knows. */
export function checkLogLevel(flag: string | undefined): void {
  const [name, level] = flag !== undefined ? ['--log-level', flag] : ['L7GUARD_LOG_LEVEL', process.env['L7GUARD_LOG_LEVEL']];
  if (level === undefined || LOG_LEVELS.includes(level)) return;
  throw new UsageError(`${name} must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
}

/** Every address flag parses, before the policy loads or anything binds. */
export function checkAddresses(values: AddressFlags, listen: readonly string[], interception: InterceptionOptions): void {
  for (const [flag, spec] of [['--admin', values.admin], ['--admin-readonly', values['admin-readonly']]] as const) {
    if (spec === undefined || spec.startsWith('unix:')) continue;
    wrap(flag, () => parseHostPort(spec));
  }
  wrap('--listen', () => planDataPlane(listen, interception));
  for (const ip of values['node-ip'] ?? []) if (isIP(ip) === 0) throw new UsageError(`--node-ip must be an IP address, not ${JSON.stringify(ip)}`);
}

function wrap(flag: string, check: () => unknown): void {
  try {
    check();
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/**
 * `--flows FILE` opens (append, created if absent) now: a flow log that cannot be written must stop
 * the start, not lose every flow while serving.
 */
export function checkFlowsFile(file: string | undefined): void {
  if (file === undefined) return;
  try {
    closeSync(openSync(file, 'a'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? `the folder ${dirname(file)} does not exist`
      : e.code === 'EISDIR' ? 'it is a folder; give a file'
      : e.code === 'ENOTDIR' ? `${nonFolder(file)} is not a folder`
      : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? 'not writable (permission denied or read-only file system)'
      : e.message;
    throw new CliError(`--flows ${file}: ${why}`);
  }
}

/** The first ancestor of `file` that exists and is not a folder. */
function nonFolder(file: string): string {
  for (let p = dirname(file); p !== dirname(p); p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) return p;
    } catch {
      /* absent: keep going up */
    }
  }
  return dirname(file);
}

/**
 * A start failure in the operator's words. A bind error (from this process, or a worker's message
 * text) names the flag whose address it is: the message alone does not say whether 127.0.0.1:9901
 * was the admin API or a listener.
 */
export function explainStartFailure(message: string, values: AddressFlags, admin: string): string {
  const m = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b.*?((?:\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d+)|\/\S+)\s*$/.exec(message);
  if (m === null) return message;
  const [, code, where, port] = m as unknown as [string, string, string, string | undefined];
  const flag = flagFor(where, port, values, admin);
  if (flag === undefined) return message;
  const [name, spec] = flag;
  if (code === 'EADDRINUSE') {
    return name.startsWith('--admin')
      ? `${name} ${spec}: the admin address is already in use (another l7guard?); give ${name} another HOST:PORT or unix:PATH`
      : `${name} ${spec}: the address is already in use (another l7guard or proxy?)`;
  }
  if (code === 'EADDRNOTAVAIL') return `${name} ${spec}: no interface of this host has that address`;
  return port !== undefined && Number(port) < 1024
    ? `${name} ${spec}: binding port ${port} needs root or CAP_NET_BIND_SERVICE`
    : `${name} ${spec}: permission denied`;
}

function flagFor(where: string, port: string | undefined, values: AddressFlags, admin: string): [string, string] | undefined {
  const candidates: [string, string][] = [
    ['--admin', admin],
    ...(values['admin-readonly'] === undefined ? [] : [['--admin-readonly', values['admin-readonly']] as [string, string]]),
    ...(values.listen ?? []).map((s): [string, string] => ['--listen', s]),
    ...(values.redirect ?? []).map((s): [string, string] => ['--redirect', s]),
    ...(values['listen-tls'] ?? []).map((s): [string, string] => ['--listen-tls', s]),
  ];
  const listenPart = (spec: string) => spec.split('=')[0]!;
  if (port === undefined) return candidates.find(([, s]) => s === `unix:${where}`);
  const host = where.slice(0, where.length - port.length - 1).replace(/^\[|\]$/g, '');
  const exact = candidates.find(([, s]) => {
    const l = listenPart(s);
    return l === where || l === `${host}:${port}` || l === `[${host}]:${port}`;
  });
  return exact ?? candidates.find(([, s]) => listenPart(s).endsWith(`:${port}`));
}
