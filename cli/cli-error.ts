/**
 * What a command reports instead of a stack trace. main.ts prints every one the same way,
 * `l7guard <command>: <message>` on stderr (docs/cli.md#errors-and-exit-codes), then the hint line if
 * there is one, and exits with `exitCode`.
 */
export class CliError extends Error {
  readonly code: string = 'L7G_ERR_CLI';
  /** 1: the command could not do its work (a file, an address, the admin API); 2: a bad command line. */
  readonly exitCode: number = 1;
  /** One line printed after the message (what to try, where the flags are listed). */
  readonly hint: string | undefined;

  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.hint = opts.hint;
  }
}
