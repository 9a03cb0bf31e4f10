/**
 * How every command's failure reaches the terminal: `l7guard <command>: <message>` on stderr, a hint
 * line when there is one, and the exit code (1: could not do it, 2: bad command line). A system error
 * (a missing file, a refused connection) is one line too; only an error nobody anticipated — a bug —
 * keeps its stack, since that is what a report of it needs.
 */
import { CliError } from './cli-error.js';
import { seeHelp } from './flags.js';
import { UsageError } from './usage-error.js';

/** What to print for `err` raised by `command` (undefined: no command was recognised), and the exit code. */
export function reportError(command: string | undefined, err: unknown): { text: string; exitCode: number } {
  const prefix = command === undefined ? 'l7guard' : `l7guard ${command}`;
  if (err instanceof UsageError) {
    const hint = err.hint ?? (command === undefined ? "See 'l7guard --help'." : seeHelp(err.help ?? command));
    return { text: `${prefix}: ${err.message}\n${hint}\n`, exitCode: err.exitCode };
  }
  if (err instanceof CliError) return { text: `${prefix}: ${err.message}\n${err.hint === undefined ? '' : `${err.hint}\n`}`, exitCode: err.exitCode };
  const sys = systemErrorText(err);
  if (sys !== undefined) return { text: `${prefix}: ${sys}\n`, exitCode: 1 };
  const e = err instanceof Error ? err : new Error(String(err));
  return { text: `${prefix}: internal error (a bug; please report it with these lines): ${e.stack ?? e.message}\n`, exitCode: 1 };
}

/** A Node system error (ENOENT, ECONNREFUSED, EPIPE ...) in one line, or undefined when `err` is not one. */
export function systemErrorText(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (!(err instanceof Error) || typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  const path = e.path ?? (e.address !== undefined ? (e.port !== undefined ? `${e.address}:${e.port}` : e.address) : undefined);
  const what = SYSTEM_ERRORS[e.code];
  if (path === undefined || what === undefined) return e.message;
  return `${path}: ${what}`;
}

/** What went wrong, without the address or path it happened at (the caller names that). */
export function systemReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (typeof code === 'string' ? SYSTEM_ERRORS[code] : undefined) ?? (err as Error).message;
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EROFS: 'read-only file system',
  EADDRINUSE: 'the address is already in use',
  EADDRNOTAVAIL: 'no interface of this host has that address',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
};
