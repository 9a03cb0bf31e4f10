import { CliError } from './cli-error.js';

/**
 * A command line that cannot be run as given: exit 2 with the message and a hint line, no stack.
 * `help` is the command whose `--help` lists the flags (`policy trace`); absent, main names the command
 * it ran.
 */
export class UsageError extends CliError {
  override readonly code = 'L7G_ERR_USAGE';
  override readonly exitCode = 2;
  readonly help: string | undefined;

  constructor(message: string, opts: { hint?: string; help?: string } = {}) {
    super(message, { hint: opts.hint });
    this.help = opts.help;
  }
}
